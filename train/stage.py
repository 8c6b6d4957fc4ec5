"""`train` as a stage of `dolma-kit run`: the trainer's own `TrainConfig`, built by the trainer's loader.

The stage's keys are `config:` (a training config file, optional) and the trainer's sections, merged over it;
the loader checks every key and type. torch is imported only when the stage runs (`train.loop`): building the
stage's config needs the config dataclasses only.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dolma_kit import storage
from dolma_kit.config import RUN_CONFIG_NAME, ConfigError, Where, load_yaml, merge, plain
from dolma_kit.stages import Context, Outcome, Stage

SECTIONS = ("model", "data", "trainer", "optim")


@dataclass(kw_only=True)
class TrainStage:
    """What the stage runs: the resolved training config and the folder it may clean up."""

    train: Any
    """`train.config.TrainConfig`."""
    work_dir: str
    """The pipeline's local folder: the only place where the pipeline deletes a run folder it did not make."""
    config_file: str = ""
    """The training config file the stage's sections were merged over ("" for none)."""
    force: bool = False


def _build(raw: dict[str, Any], context: Context, where: Where) -> TrainStage:
    """Default run folder: `<local_dir>/train/<config stem>` (checkpoints and the data memmaps are local files)."""
    from train.config import load_config

    for key in raw:
        if key not in ("config", *SECTIONS):
            known = ", ".join(("config", *SECTIONS))
            raise where.of(key).error(f"unknown key '{key}' for `train`; known: {known}")
    base: dict[str, Any] = {}
    stem = "run"
    if raw.get("config"):
        file = Path(str(raw["config"]))
        if not file.is_file():
            raise where.child("config").of(raw["config"]).error(f"training config {file} not found")
        base = load_yaml(str(file), "training config") or {}
        stem = file.stem
    merged = merge(base, {k: v for k, v in raw.items() if k != "config"})
    trainer = merged.setdefault("trainer", {})
    if "run_dir" not in trainer:
        trainer["run_dir"] = storage.join(context.local_dir(where.child("trainer.run_dir")), "train", stem)
    try:
        config = load_config(None, [], **merged)
    except ConfigError as exc:
        raise where.error(str(exc)) from None
    home = context.local or config.trainer.run_dir  # remote work_dir, run_dir given: only its own
    return TrainStage(train=config, work_dir=home, config_file=str(raw.get("config") or ""))


def _reset(stage: TrainStage) -> None:
    """A run folder the pipeline did not start (or one made with other options) is removed, inside the work
    dir only; elsewhere the pipeline stops rather than delete a run it does not own."""
    run_dir = Path(stage.train.trainer.run_dir)
    if not run_dir.exists():
        return
    if Path(stage.work_dir).resolve() not in run_dir.resolve().parents:
        raise ConfigError(
            f"{run_dir} holds a run this pipeline did not make; remove it or set trainer.run_dir elsewhere "
            "(the pipeline only deletes run folders inside its local_dir)"
        )
    shutil.rmtree(run_dir)


def _run(stage: TrainStage) -> Path:
    """Not forced, an existing run folder is this pipeline's own killed run: the trainer resumes it from its
    last checkpoint."""
    from train.loop import train

    if stage.force:
        _reset(stage)
    train(stage.train)
    return Path(stage.train.trainer.run_dir)


def train_metrics(run_dir: Path) -> dict[str, Any]:
    """First and last logged loss, last held-out loss, steps and tokens, from the run's metrics.jsonl."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    train_rows = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    out: dict[str, Any] = {"run_dir": str(run_dir)}
    if train_rows:
        out.update(
            steps=train_rows[-1]["step"],
            tokens_seen=train_rows[-1].get("tokens_seen"),
            first_loss=round(train_rows[0]["loss"], 4),
            last_loss=round(train_rows[-1]["loss"], 4),
        )
    if evals:
        out["eval_loss"] = round(evals[-1]["eval_loss"], 4)
    return out


def _note(extra: dict[str, Any], counts: dict[str, Any] | None) -> str:
    if "last_loss" not in extra:
        return ""
    note = f"{extra['steps']} steps, loss {extra['first_loss']:.3f} → {extra['last_loss']:.3f}"
    return note + (f", held-out {extra['eval_loss']:.3f}" if "eval_loss" in extra else "")


STAGE = Stage(
    name="train",
    config=None,
    build=_build,
    keys=lambda: {"config", *SECTIONS},
    run=_run,
    outcome=lambda stage, run_dir: Outcome(None, train_metrics(run_dir)),
    render=lambda stage, run_dir: [],
    proofs=lambda s: [str(Path(s.train.trainer.run_dir) / n) for n in ("metrics.jsonl", RUN_CONFIG_NAME)],
    options=lambda s: {"config": s.config_file, **plain(s.train.to_dict())},
    volatile=frozenset(
        {"trainer.device", "trainer.compile", "trainer.cpu_threads", "trainer.activation_checkpointing"}
    ),
    reset=_reset,
    note=_note,
)
