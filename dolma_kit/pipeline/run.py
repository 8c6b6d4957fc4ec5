"""Running a loaded pipeline: what each stage's status is, the plan, the run (markers as it goes), the summary.

See `pipeline.load` for the file and its resume rule; this module decides and does.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from dolma_kit import storage
from dolma_kit.config import ConfigError
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import MARKER_SUFFIX
from dolma_kit.pipeline.child import in_child, run_in_child
from dolma_kit.pipeline.load import Pipeline, Step
from dolma_kit.stages import find_stage


@dataclass(frozen=True, slots=True)
class Status:
    """What a run does with a stage: `state` says why (done, pending, resume, changed, outputs changed,
    forced, before --from)."""

    state: str
    run: bool
    force: bool


# --------------------------------------------------------------------------------------------- status


def proof_digest(stage: Step) -> str | None:
    """Digest of the stage's proof files; None when one is missing or the stage's inputs cannot be listed."""
    try:
        paths = stage.stage.proofs(stage.config)
    except (OSError, ValueError, DolmaKitError):
        return None
    h = hashlib.sha256()
    for path in paths:
        if not storage.exists(path):
            return None
        h.update(path.encode() + b"\0" + storage.read_text(path).encode() + b"\0")
    return h.hexdigest()[:16]


def stage_status(pipe: Pipeline, stage: Step) -> Status:
    """Done, or what running it means (see the module docstring)."""
    done = storage.read_json_object(pipe.marker(stage, "done"))
    if done is not None:
        if done.get("digest") != stage.digest:
            return Status("changed", True, True)
        if done.get("proofs") != proof_digest(stage):
            return Status("outputs changed", True, True)
        return Status("done", False, False)
    running = storage.read_json_object(pipe.marker(stage, "running"))
    if running is not None:
        if running.get("digest") != stage.digest:
            return Status("changed", True, True)
        return Status("resume", True, bool(running.get("forced")))
    # never started here: what its output folders hold is another run's (cleared first, see `reset_stage`)
    return Status("pending", True, False)


def plan(pipe: Pipeline, *, force: bool = False, start: str | None = None) -> list[tuple[Step, Status]]:
    """Each stage with what this run will do with it. A stage after one that runs forced runs forced too."""
    names = [s.name for s in pipe.stages]
    if start is not None and start not in names:
        raise ConfigError(f"--from {start}: no such stage in {pipe.path} (stages: {', '.join(names)})")
    out: list[tuple[Step, Status]] = []
    started = start is None
    for stage in pipe.stages:
        started = started or stage.name == start
        status = stage_status(pipe, stage)
        if not started:
            if status.state != "done":
                raise ConfigError(
                    f"--from {start}: the earlier stage '{stage.name}' is {status.state}, not done; "
                    "run without --from first"
                )
            status = Status("done (before --from)", False, False)
        elif force or start is not None:
            status = Status("forced", True, True)
        out.append((stage, status))
    return out


def plan_table(pipe: Pipeline, planned: list[tuple[Step, Status]]) -> Table:
    table = Table(title=f"{pipe.path}: work_dir {pipe.work_dir}", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("stage")
    table.add_column("command")
    table.add_column("options (as resolved)", overflow="fold")
    table.add_column("status")
    for i, (stage, status) in enumerate(planned, 1):
        lines = [f"{k} = {_short(v)}" for k, v in stage.given.items()]
        style = "green" if not status.run else ("yellow" if status.force else "cyan")
        label = status.state if not status.run else f"{status.state} → run" + (" (force)" * status.force)
        table.add_row(str(i), stage.name, stage.stage.name, "\n".join(lines), f"[{style}]{label}[/]")
    return table


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:197] + "…"


# --------------------------------------------------------------------------------------------- running


def reset_stage(stage: Step) -> None:
    """Before a stage's first start in this work dir: clear shard markers another run left in its output
    folders (they would make it skip shards made from other inputs or options). Run forced instead, a kill
    would leave the next attempt forced too, and a first run that was killed would start over."""
    if stage.stage.reset is not None:
        stage.stage.reset(stage.config)
        return
    try:
        paths = stage.stage.proofs(stage.config)
    except (OSError, ValueError, DolmaKitError):
        return  # inputs not listable: the stage itself will say why
    for path in paths:
        if path.endswith(MARKER_SUFFIX):
            storage.remove(path)


def _balanced(counts: dict[str, Any] | None) -> bool | None:
    if counts is None:
        return None
    return counts["documents_in"] == counts["kept"] + counts["removed"] + counts["rejected"]


def run_pipeline(pipe: Pipeline, planned: list[tuple[Step, Status]], console: Console) -> dict[str, Any]:
    """Run the planned stages in order; write markers as they go and `pipeline_summary.json` at the end."""
    rows: list[dict[str, Any]] = []
    for i, (stage, status) in enumerate(planned, 1):
        done_path, running_path = pipe.marker(stage, "done"), pipe.marker(stage, "running")
        if not status.run:
            done = storage.read_json_object(done_path) or {}
            rows.append(_row(stage, "skipped (done)", done.get("counts"), done.get("extra", {}), 0.0))
            continue
        console.rule(f"[bold]{i}/{len(planned)} {stage.name}[/] ({stage.stage.name}, {status.state})")
        if status.state == "pending":
            reset_stage(stage)
        storage.write_text(running_path, json.dumps({"digest": stage.digest, "forced": status.force}) + "\n")
        storage.remove(done_path)
        start = time.perf_counter()
        if in_child(stage.config):  # its memory goes back when it ends (`pipeline.child`)
            outcome = run_in_child(stage.stage.name, stage.config, console, force=status.force)
        else:
            outcome = stage.stage.execute(stage.config, console, force=status.force)
        seconds = time.perf_counter() - start
        if _balanced(outcome.counts) is False:
            raise ConfigError(
                f"stage '{stage.name}': documents in != kept + removed + rejected: {outcome.counts}"
            )
        marker = {
            "name": stage.name,
            "command": stage.stage.name,
            "digest": stage.digest,
            "proofs": proof_digest(stage),
            "counts": outcome.counts,
            "extra": outcome.extra,
            "seconds": round(seconds, 3),
            "options": stage.options,
        }
        storage.write_text(done_path, json.dumps(marker, indent=1, default=str) + "\n")
        storage.remove(running_path)
        rows.append(_row(stage, "ran" if status.state == "pending" else f"ran ({status.state})",
                         outcome.counts, outcome.extra, seconds))  # fmt: skip
    reports = [r["extra"]["html"] for r in rows if r["command"] == "stats" and "html" in r["extra"]]
    summary = {
        "pipeline": pipe.path,
        "work_dir": pipe.work_dir,
        "stages": rows,
        "report": reports[-1] if reports else None,
    }
    storage.write_text(
        pipe.summary_path, json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n"
    )
    return summary


def _row(stage: Step, status: str, counts: Any, extra: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "stage": stage.name,
        "command": stage.stage.name,
        "status": status,
        "seconds": round(seconds, 3),
        "counts": counts,
        "balanced": _balanced(counts),
        "extra": extra,
    }


def _note(row: dict[str, Any]) -> str:
    declared = find_stage(row["command"])
    return declared.note(row["extra"], row["counts"]) if declared else ""


def summary_table(summary: dict[str, Any]) -> Table:
    """One row per stage: documents in = kept + removed + rejected (✓ when it holds), time, what it made."""
    table = Table(
        title=f"pipeline {summary['pipeline']}: documents in = kept + removed (or marked) + rejected",
        caption="marked: flagged in attributes by tag, dedup or decontaminate; only mix removes documents",
    )
    table.add_column("stage")
    table.add_column("status")
    for col in ("in", "kept", "removed / marked", "rejected", "", "s"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("notes", overflow="fold")
    for row in summary["stages"]:
        c = row["counts"]
        nums = [f"{c[k]:,}" for k in ("documents_in", "kept", "removed", "rejected")] if c else ["–"] * 4
        declared = find_stage(row["command"])
        if c and declared is not None and declared.marks:
            nums[2] = f"{nums[2]} marked"  # a marking stage's documents are all still there
        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: ""}[row["balanced"]]
        table.add_row(row["stage"], row["status"], *nums, mark, f"{row['seconds']:,.1f}", _note(row))
    return table
