"""The shard contract every backend shares: what a shard task is, how it counts, and how it is marked done.

A stage's per-shard function is schedule-agnostic: it gets a `ShardTask` (what to read, where to write) and a
`ShardStats` to count into and report progress through, and returns nothing. It must write its outputs
atomically (see `storage.atomic_write`). `run_one` runs it and then writes a `.done` marker holding the shard's
counts, so a re-run skips finished shards and still reports their counts. Every backend (local processes in
`executor.local`, Ray tasks in `executor.ray`) calls the same `run_one`, so their outputs are byte-identical.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from dolma_kit import storage
from dolma_kit.documents import dumps
from dolma_kit.errors import BadRecordError, DolmaKitError

MARKER_SUFFIX = ".done"
EXECUTORS = ("local", "ray")


@dataclass(frozen=True, kw_only=True)
class ExecutorConfig:
    """Where a stage's shard tasks run; every stage config carries one (default: local processes)."""

    kind: Literal["local", "ray"] = "local"
    """`local`: this machine's processes (`--processes`). `ray`: tasks on a Ray cluster (`pip install
    'dolma-kit[ray]'`), a local one with `--processes` CPUs unless `ray_address` names one to join."""
    ray_address: str | None = None
    """Ray cluster to join (`auto`, `host:port`, `ray://host:10001`); None starts a local cluster."""
    max_retries: int = 3
    """Ray: times a failed shard task is retried (worker crash, lost node, any error except a DolmaKitError,
    which is the user's to fix and would fail the same way again)."""

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise DolmaKitError(f"--executor {self.kind!r}: choose one of {', '.join(EXECUTORS)}")
        if self.ray_address and self.kind != "ray":
            raise DolmaKitError("--ray-address is for --executor ray; add --executor ray")
        if self.max_retries < 0:
            raise DolmaKitError("max_retries must be 0 or more")


@dataclass(frozen=True, slots=True)
class ShardTask:
    """One unit of work. `key` is a stable display name (path relative to the input root); the marker sits
    beside `output`. `size` is the input's byte size (for the progress bar)."""

    key: str
    input: str
    output: str
    size: int = 0

    @property
    def marker(self) -> str:
        return self.output + MARKER_SUFFIX

    @property
    def root(self) -> str:
        """The output root: `output` without the trailing `key`."""
        assert self.output.endswith(self.key), (self.output, self.key)
        return self.output[: -len(self.key)].rstrip("/")

    @property
    def rejects(self) -> str:
        """Where `--skip-bad` writes this shard's bad records: `<root>/rejects/<key stem>.jsonl.gz`."""
        stem = self.key
        for suffix in (".jsonl.gz", ".jsonl.zst", ".jsonl.zstd", ".json.gz", ".jsonl", ".json", ".parquet"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        return storage.join(self.root, "rejects", stem + ".jsonl.gz")


@dataclass(slots=True)
class ShardStats:
    """What happened to one shard's documents: in = kept + removed + rejected, with removal reasons.

    Counting lives here, not in each stage, so every stage reports the same way (datatrove's `stat_update`).
    """

    shard: str
    documents_in: int = 0
    kept: int = 0
    removed: int = 0
    rejected: int = 0
    removed_by: dict[str, int] = field(default_factory=dict)
    rejected_files: list[str] = field(default_factory=list)
    """File-level faults (empty, truncated, unreadable, wrong schema): `file: reason`. They hold no countable
    document, so they are listed here rather than in `rejected`, and shown in every summary."""
    bytes_in: int = 0
    seconds: float = 0.0
    status: str = "done"
    _sink: Any = field(default=None, repr=False, compare=False)
    _pending_docs: int = field(default=0, repr=False, compare=False)
    _pending_bytes: int = field(default=0, repr=False, compare=False)
    _last_flush: float = field(default=0.0, repr=False, compare=False)

    def keep(self) -> None:
        self.documents_in += 1
        self.kept += 1
        self._tick()

    def remove(self, reason: str) -> None:
        self.documents_in += 1
        self.removed += 1
        self.removed_by[reason] = self.removed_by.get(reason, 0) + 1
        self._tick()

    def reject(self) -> None:
        self.documents_in += 1
        self.rejected += 1
        self._tick()

    def reject_bad(self, exc: BadRecordError) -> None:
        """Count one `--skip-bad` reject: a record (it was a document in), or a whole file's fault."""
        if exc.line:
            self.reject()
        else:
            self.rejected_files.append(f"{exc.path}: {exc.reason}")

    def progress_bytes(self, total_read: int) -> None:
        """Report the shard's input bytes consumed so far (absolute, compressed)."""
        self._pending_bytes += total_read - self.bytes_in
        self.bytes_in = total_read

    def _tick(self) -> None:
        self._pending_docs += 1
        if self._pending_docs >= 256:
            now = time.monotonic()
            if now - self._last_flush > 0.2:
                self.flush()
                self._last_flush = now

    def flush(self) -> None:
        if self._sink is not None and (self._pending_docs or self._pending_bytes):
            self._sink(self._pending_docs, self._pending_bytes)
        self._pending_docs = 0
        self._pending_bytes = 0

    def check(self) -> None:
        total = self.kept + self.removed + self.rejected
        assert self.documents_in == total, f"{self.shard}: in {self.documents_in} != {total}"

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        d["seconds"] = round(self.seconds, 3)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardStats:
        fields = {"shard", "documents_in", "kept", "removed", "rejected", "removed_by", "rejected_files"}
        fields |= {"bytes_in", "seconds"}
        return cls(**{k: v for k, v in data.items() if k in fields})


ShardFn = Callable[[ShardTask, ShardStats], None]


def per_task(fns: dict[str, ShardFn]) -> ShardFn:
    """One shard function for a step whose tasks differ in their arguments (a band number, a partition, a
    shard's offsets): task `t` runs `fns[t.key]`. A partial of a module-level function, so it pickles for
    worker processes and Ray tasks."""
    return functools.partial(_run_keyed, fns=fns)


def _run_keyed(task: ShardTask, stats: ShardStats, *, fns: dict[str, ShardFn]) -> None:
    fns[task.key](task, stats)


def run_one(fn: ShardFn, task: ShardTask, sink: Callable[[int, int], None] | None = None) -> ShardStats:
    """Run the function on one shard, then mark it done. Used by every backend (local, later Ray)."""
    stats = ShardStats(shard=task.key, _sink=sink)
    for path in (task.output, task.rejects, task.marker):  # a kill can leave any of their temps
        storage.remove_stale_temps(path)
    start = time.perf_counter()
    fn(task, stats)
    stats.seconds = time.perf_counter() - start
    stats.flush()
    stats.check()
    storage.write_text(task.marker, dumps(stats.to_json()) + "\n")
    return stats


@dataclass(slots=True)
class RunResult:
    """Per-shard stats (in task order) and the totals."""

    title: str
    shards: list[ShardStats]

    @property
    def total(self) -> ShardStats:
        total = ShardStats(shard="total")
        for s in self.shards:
            total.documents_in += s.documents_in
            total.kept += s.kept
            total.removed += s.removed
            total.rejected += s.rejected
            total.bytes_in += s.bytes_in
            total.seconds += s.seconds
            total.rejected_files += s.rejected_files
            for k, v in s.removed_by.items():
                total.removed_by[k] = total.removed_by.get(k, 0) + v
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.title,
            "total": self.total.to_json(),
            "shards": [s.to_json() for s in self.shards],
        }


def load_marker(task: ShardTask) -> ShardStats | None:
    if not storage.exists(task.marker) or not storage.exists(task.output):
        return None
    try:
        stats = ShardStats.from_json(json.loads(storage.read_text(task.marker)))
    except (ValueError, TypeError):
        return None  # a corrupt marker means: redo the shard
    stats.status = "skipped"
    return stats
