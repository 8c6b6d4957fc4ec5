"""Loss-spike and NaN recovery, as in OPT-175B's logbook: detect, roll back to the last good checkpoint, skip
the offending batch, optionally lower the learning rate, and write down what happened.

Torch-free (the trainer does the rolling back, `train/loop.py`), so `dolma-kit trace` can read which steps were
skipped without importing torch.

The run's recovery state lives in `RUN/recovery.json`: the skipped steps and every event. It is a run-level
file, not part of a checkpoint, because a decision to skip a batch concerns the future: a run resumed from any
checkpoint (after a crash, or an older one) skips the same steps and applies the same LR factors at the same
points, so its data order and numbers stay a function of (config, seed, recovery.json). A skipped step keeps
its place in the schedule (its LR slot and examples count pass by) but its batch is never trained on; trace
and memorization leave its instances out.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dolma_kit.config import ConfigError

RECOVERY_FILE = "recovery.json"
LOGBOOK_FILE = "logbook.md"


@dataclass(kw_only=True)
class RecoveryConfig:
    """When a step counts as a spike, and what recovering from it does."""

    enabled: bool = True
    """Check every step before the optimizer applies it."""
    spike_factor: float = 3.0
    """A step whose loss exceeds this × the running median of the last `window` accepted losses is a spike
    (0 disables spike detection; non-finite losses and grad norms are always caught while enabled)."""
    window: int = 50
    """Accepted steps in the running median."""
    min_history: int = 20
    """Spike detection starts once this many steps are in the window (early losses fall fast)."""
    lr_factor: float = 1.0
    """Multiply the learning rate by this after each rollback (OPT lowered it when restarting; 1 keeps it)."""
    max_rollbacks: int = 5
    """Give up (stop the run with an error) after this many rollbacks in one process."""

    def __post_init__(self) -> None:
        if self.spike_factor < 0 or self.window < 1 or self.min_history < 1 or self.max_rollbacks < 0:
            raise ConfigError("recovery: spike_factor ≥ 0, window ≥ 1, min_history ≥ 1, max_rollbacks ≥ 0")
        if not 0 < self.lr_factor <= 1:
            raise ConfigError(f"recovery.lr_factor must be in (0, 1], got {self.lr_factor}")


@dataclass(kw_only=True)
class DebugConfig:
    """Fault injection for tests and drills: poisoned steps and a kill inside a checkpoint write. Not part of
    the config identity: a resumed run may change or drop these."""

    poison_steps: list[int] = field(default_factory=list)
    """Steps whose loss (and so gradient) is poisoned, as a bad batch or an unstable update would."""
    poison: str = "scale"
    """scale: multiply the step's loss by `poison_scale`; nan: make it NaN."""
    poison_scale: float = 1e4
    kill_in_checkpoint: int | None = None
    """SIGKILL this process inside the write of this step's checkpoint (after the shards, before the
    completion marker), once per run folder (a `.debug-killed-step<N>` file remembers it)."""

    def __post_init__(self) -> None:
        if self.poison not in ("scale", "nan"):
            raise ConfigError(f"debug.poison must be scale or nan, got {self.poison!r}")


class SpikeDetector:
    """Running median of the last `window` accepted losses; says why a step must not be applied, or None.
    Only the window is kept (a long run checks every step), as (step, loss) pairs in step order."""

    def __init__(self, cfg: RecoveryConfig) -> None:
        self.cfg = cfg
        self.history: list[tuple[int, float]] = []

    def check(self, loss: float, grad_norm: float) -> str | None:
        if not self.cfg.enabled:
            return None
        if not math.isfinite(loss):
            return f"non-finite loss ({loss})"
        if not math.isfinite(grad_norm):
            return f"non-finite grad norm ({grad_norm})"
        if self.cfg.spike_factor > 0 and len(self.history) >= self.cfg.min_history:
            median = statistics.median(v for _, v in self.history)
            if loss > self.cfg.spike_factor * median:
                return f"loss spike: {loss:.4g} > {self.cfg.spike_factor:g} × running median {median:.4g}"
        return None

    def record(self, step: int, loss: float) -> None:
        self.history.append((step, loss))
        del self.history[: -self.cfg.window]

    def reset(self, losses: dict[int, float]) -> None:
        """Start from logged losses: only for checkpoints without the detector's state (metrics.jsonl holds
        every log_every-th loss, so this window is thinner than the one an uninterrupted run had)."""
        self.history = sorted(losses.items())[-self.cfg.window :]

    def state(self) -> list[list[float]]:
        """The window as JSON-ready [step, loss] pairs: saved in every checkpoint's train_state.json."""
        return [[s, v] for s, v in self.history]

    def load_state(self, pairs: list[list[float]]) -> None:
        """Restore the window saved by `state()` (a resume or a rollback to that checkpoint)."""
        self.history = [(int(s), float(v)) for s, v in pairs][-self.cfg.window :]

    def truncate(self, step: int) -> None:
        """Forget losses after `step` (a rollback to it)."""
        self.history = [(s, v) for s, v in self.history if s <= step]


@dataclass
class RecoveryState:
    """Skipped steps and events of a run (`RUN/recovery.json`)."""

    skipped: set[int] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, run_dir: str | Path) -> RecoveryState:
        path = Path(run_dir) / RECOVERY_FILE
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text())
        return cls(set(raw["skipped_steps"]), list(raw["events"]))

    def save(self, run_dir: str | Path) -> None:
        path = Path(run_dir) / RECOVERY_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"skipped_steps": sorted(self.skipped), "events": self.events}, indent=1))
        tmp.rename(path)

    def lr_scale(self, step: int) -> float:
        """The LR factor in force at `step`: the product of the factors of rollbacks to a step before it."""
        scale = 1.0
        for e in self.events:
            if e.get("rolled_back_to", math.inf) < step:
                scale *= e.get("lr_factor", 1.0)
        return scale


def append_logbook(run_dir: str | Path, title: str, lines: list[str]) -> None:
    """One human-readable entry in `RUN/logbook.md` (OPT kept one by hand; here the trainer writes it)."""
    from datetime import datetime, timezone

    path = Path(run_dir) / LOGBOOK_FILE
    head = "" if path.exists() else "# Run logbook\n\nEvents the trainer handled on its own, oldest first.\n"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = "".join(f"- {line}\n" for line in lines)
    with open(path, "a") as fh:
        fh.write(f"{head}\n## {stamp}: {title}\n\n{body}")
