"""What a run of shards reports: the summary table, the summary JSON, and the rejects file of each shard."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from dolma_kit import storage
from dolma_kit.documents import JsonlWriter
from dolma_kit.errors import BadRecordError
from dolma_kit.executor.shards import RunResult, ShardStats, ShardTask


def summary_table(result: RunResult, *, max_rows: int = 25, marks: str = "") -> Table:
    """Per-shard counts and the total; long runs show the first shards and a count of the rest.

    `marks` (a stage's `Stage.marks`, e.g. "later copies") says the stage only marks: its third column is
    then "marked", not "removed", because nothing leaves the corpus until `mix` acts on the attributes; a
    reader who sees "removed 326" for dedup looks for 326 missing documents that are still there. The bytes
    column is what was read from the shard files as stored (compressed when they are), not text bytes (the
    report's "text MB"), so its header says "file MB in".
    """
    third = "marked" if marks else "removed"
    table = Table(title=f"{result.title}: documents in = kept + {third} + rejected")
    table.add_column("shard", overflow="fold", min_width=12)
    for col in ("in", "kept", third, "rejected", "file MB in", "s"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)

    def row(s: ShardStats, style: str | None = None) -> None:
        table.add_row(
            s.shard,
            f"{s.documents_in:,}",
            f"{s.kept:,}",
            f"{s.removed:,}",
            f"{s.rejected:,}",
            f"{s.bytes_in / 1e6:,.2f}",
            f"{s.seconds:,.1f}",
            s.status + (f", {len(s.rejected_files)} file rejected" if s.rejected_files else ""),
            style=style,
        )

    for s in result.shards[:max_rows]:
        row(s)
    if len(result.shards) > max_rows:
        table.add_row(f"… {len(result.shards) - max_rows} more shards", *[""] * 7)
    total = result.total
    total.status = f"{len(result.shards)} shards"
    row(total, "bold")
    notes = []
    if marks:
        notes.append(f"marked: {marks}, in attributes; nothing is removed until mix acts on them")
    if total.removed_by:
        notes.append(f"{third} by: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(total.removed_by.items())))
    if total.rejected_files:
        shown = "; ".join(total.rejected_files[:3]) + (" …" if len(total.rejected_files) > 3 else "")
        notes.append(f"rejected files: {len(total.rejected_files):,} ({shown}); see rejects/")
    notes.append("file MB in: bytes read from the shard files as stored (compressed when they are)")
    table.caption = "\n".join(notes)
    return table


class RejectsWriter:
    """Streams a shard's bad records to `task.rejects` as they come (memory stays flat on bad input).

    Opened on the first reject; on close, a shard without rejects removes any stale file from an earlier run.
    Counts each reject in `stats` (`ShardStats.reject_bad`: a record, or a file-level fault, line 0).
    """

    def __init__(self, task: ShardTask, stats: ShardStats) -> None:
        self.task = task
        self.stats = stats
        self._out: JsonlWriter | None = None

    def __call__(self, exc: BadRecordError) -> None:
        if self._out is None:
            self._out = JsonlWriter(self.task.rejects)
        self._out.write(exc.to_reject())
        self.stats.reject_bad(exc)

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._out is not None:
            self._out.__exit__(exc_type, exc, tb)
        elif exc is None:
            storage.remove(self.task.rejects)


def write_summary(result: RunResult, path: str) -> None:
    storage.write_text(path, json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
