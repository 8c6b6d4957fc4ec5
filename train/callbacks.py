"""Named callbacks: what happens around each step besides the step itself (logging, progress, evaluation,
checkpoints), as OLMo-core's train/callbacks. Each is called on every rank; collective work (eval,
checkpoint) runs on all ranks, file and terminal output only on rank 0.

Order matters and is fixed by the trainer: the metrics line, the progress line, evaluation, then the
checkpoint, so when checkpoint N exists, metrics.jsonl already holds step N's train and eval records.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from train.loop import Trainer


class Callback:
    """Hooks with do-nothing defaults; `name` identifies the callback in logs and lets tests replace one."""

    name = "callback"

    def on_start(self, trainer: Trainer) -> None:
        """After the model, optimizer and data are ready (and a checkpoint is loaded, if any)."""

    def on_step(self, trainer: Trainer, step: int, metrics: dict[str, Any]) -> None:
        """After optimizer step `step` (1-based); `metrics` is this step's metrics.jsonl record."""

    def on_end(self, trainer: Trainer, step: int) -> None:
        """After the last step of this process's run (max_steps or trainer.stop_at)."""


class MetricsFile(Callback):
    """Appends one JSON line per logged step (every log_every and max_steps) and per evaluation to `<run>/metrics.jsonl` (rank 0).

    On resume from step k (and on a recovery rollback to k) the file is first cut back to the records with
    step ≤ k, so it reads as one run; `recovery` and `restart` events are kept whatever their step (they are
    the run's history, and recovery.json still applies them)."""

    name = "metrics"
    EVENTS = ("recovery", "restart")

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def cut_back(self, step: int) -> None:
        """Drop train and eval records after `step` (rank 0)."""
        if not self.path.exists():
            return
        keep = [
            line
            for line in self.path.read_text().splitlines()
            if line.strip() and (json.loads(line)["step"] <= step or json.loads(line)["kind"] in self.EVENTS)
        ]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        tmp.rename(self.path)

    def train_losses(self, step: int) -> dict[int, float]:
        """Logged train losses up to `step`: the spike detector's history after a resume."""
        return {
            r["step"]: r["loss"]
            for r in self.records()
            if r["kind"] == "train" and r["step"] <= step and r.get("loss") is not None
        }

    def on_start(self, trainer: Trainer) -> None:
        if trainer.dist.is_main:
            self.cut_back(trainer.step)

    def write(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if trainer.dist.is_main:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def on_step(self, trainer: Trainer, step: int, metrics: dict[str, Any]) -> None:
        every = trainer.cfg.trainer.log_every
        if step % every == 0 or step == trainer.cfg.trainer.max_steps or metrics["kind"] == "skipped":
            self.write(trainer, metrics)


class ProgressLine(Callback):
    """One rich line per logged step on rank 0: step, loss, lr, grad norm, tokens/s, MFU, ETA."""

    name = "progress"

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def on_step(self, trainer: Trainer, step: int, m: dict[str, Any]) -> None:
        if not trainer.dist.is_main or not (
            step % trainer.cfg.trainer.log_every == 0 or step == trainer.last_step
        ):
            return  # unlike the metrics file, the terminal also shows the step a stop_at run ends on
        if m.get("skipped"):
            self.console.print(f"[yellow]step {step} skipped[/] (spike recovery: see logbook.md)")
            return
        mfu = "-" if m["mfu"] is None else f"{100 * m['mfu']:.1f}%"
        eta = (trainer.last_step - step) * m["step_time"]
        self.console.print(
            f"[bold]step {step}/{trainer.cfg.trainer.max_steps}[/] loss [cyan]{m['loss']:.4f}[/] "
            f"lr {m['lr']:.2e} gnorm {m['grad_norm']:.3f} {m['tokens_per_s']:,.0f} tok/s mfu {mfu} "
            f"eta {eta:,.0f}s",
            highlight=False,
        )


class Evaluator(Callback):
    """Held-out loss and perplexity per source every `trainer.eval_every` steps and after max_steps, and the
    accuracy of each configured downstream task (train/downstream.py) in the same record."""

    name = "eval"

    def __init__(self, metrics: MetricsFile, console: Console | None = None) -> None:
        self.metrics = metrics
        self.console = console or Console(stderr=True)

    def due(self, trainer: Trainer, step: int) -> bool:
        """A function of the step alone (not of trainer.stop_at), so a run stopped and resumed logs the same
        evaluations as one that never stopped."""
        every = trainer.cfg.trainer.eval_every
        return (every > 0 and step % every == 0) or step == trainer.cfg.trainer.max_steps

    def on_step(self, trainer: Trainer, step: int, metrics: dict[str, Any]) -> None:
        if not self.due(trainer, step) or (len(trainer.eval_ids) == 0 and not trainer.downstream):
            return
        # without a held-out split, downstream accuracy gets its own kind (eval records always hold eval_loss)
        kind = "eval" if len(trainer.eval_ids) else "downstream"
        record: dict[str, Any] = {"kind": kind, "step": step, "examples_seen": metrics["examples_seen"]}
        line = f"[green]eval step {step}[/]"
        if len(trainer.eval_ids):
            loss, by_source = trainer.evaluate()
            record |= {"eval_loss": loss, "eval_ppl": math.exp(loss), "eval_by_source": by_source}
            parts = " ".join(
                f"{s} {v['loss']:.3f}" if v["loss"] is not None else f"{s} -" for s, v in by_source.items()
            )
            line += f" loss {loss:.4f} ppl {math.exp(loss):.2f} | {parts}"
        if trainer.downstream:
            record["downstream"] = trainer.evaluate_downstream()
            line += " | " + " ".join(f"{k} acc {v['acc']:.3f}" for k, v in record["downstream"].items())
        self.metrics.write(trainer, record)
        if trainer.dist.is_main:
            self.console.print(line, highlight=False)


class CheckpointSaver(Callback):
    """Checkpoints every `trainer.checkpoint_every` steps, after the last step and at `trainer.stop_at`."""

    name = "checkpoint"

    def on_step(self, trainer: Trainer, step: int, metrics: dict[str, Any]) -> None:
        every = trainer.cfg.trainer.checkpoint_every
        if (every > 0 and step % every == 0) or step == trainer.last_step:
            trainer.save_checkpoint(step)
