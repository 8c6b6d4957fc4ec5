"""Runs one function over many shards: in-process, local processes or Ray, with progress, resume and counts.

The per-shard function is scheduled-agnostic: it gets a `ShardTask` (what to read, where to write) and a
`ShardStats` to count into and report progress through, and returns nothing. It must write its outputs
atomically (see `storage.atomic_write`). The executor writes a `.done` marker holding the shard's counts after
the function returns, so a re-run skips finished shards and still reports their counts; `force` redoes them.

Where the shards run is an `ExecutorConfig`: local processes (the default, needs nothing) or a Ray cluster
(`executor_ray`, an optional extra). Both call the same `run_one`, so their outputs are byte-identical.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from queue import Empty
from typing import Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dolma_kit import storage
from dolma_kit.documents import JsonlWriter, dumps
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
        fields = {"shard", "documents_in", "kept", "removed", "rejected", "removed_by", "bytes_in", "seconds"}
        return cls(**{k: v for k, v in data.items() if k in fields})


ShardFn = Callable[[ShardTask, ShardStats], None]

# --------------------------------------------------------------------------------------------- workers

_QUEUE: Any = None


def _init_worker(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue


def _queue_sink(docs: int, nbytes: int) -> None:
    if _QUEUE is not None:
        _QUEUE.put((docs, nbytes))


def run_one(fn: ShardFn, task: ShardTask, sink: Callable[[int, int], None] | None = None) -> ShardStats:
    """Run the function on one shard, then mark it done. Used by every backend (local, later Ray)."""
    stats = ShardStats(shard=task.key, _sink=sink)
    for path in (task.output, task.rejects):
        storage.remove_stale_temps(path)
    start = time.perf_counter()
    fn(task, stats)
    stats.seconds = time.perf_counter() - start
    stats.flush()
    stats.check()
    storage.write_text(task.marker, dumps(stats.to_json()) + "\n")
    return stats


def _run_in_worker(fn: ShardFn, task: ShardTask) -> ShardStats:
    stats = run_one(fn, task, _queue_sink)
    stats._sink = None
    return stats


# --------------------------------------------------------------------------------------------- driver


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
            for k, v in s.removed_by.items():
                total.removed_by[k] = total.removed_by.get(k, 0) + v
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.title,
            "total": self.total.to_json(),
            "shards": [s.to_json() for s in self.shards],
        }


def _load_marker(task: ShardTask) -> ShardStats | None:
    if not storage.exists(task.marker) or not storage.exists(task.output):
        return None
    try:
        stats = ShardStats.from_json(json.loads(storage.read_text(task.marker)))
    except (ValueError, TypeError):
        return None  # a corrupt marker means: redo the shard
    stats.status = "skipped"
    return stats


def default_processes() -> int:
    return os.cpu_count() or 1


def run_shards(
    fn: ShardFn,
    tasks: list[ShardTask],
    *,
    title: str,
    processes: int | None = None,
    force: bool = False,
    console: Console | None = None,
    executor: ExecutorConfig | None = None,
) -> RunResult:
    """Run `fn` over `tasks`, skipping shards whose marker exists (unless `force`); return the stats.

    `fn` must be picklable (a module-level function or a `functools.partial` of one) when processes > 1 or
    on Ray. On Ray, `processes` is the local cluster's CPUs; a joined cluster runs as many tasks as it has CPUs.
    """
    executor = executor or ExecutorConfig()
    console = console or Console(stderr=True)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise DolmaKitError(f"{title}: two input files map to the same output; check the --documents globs")
    results: dict[str, ShardStats] = {}
    todo = []
    for task in tasks:
        done = None if force else _load_marker(task)
        if done is not None:
            results[task.key] = done
        else:
            todo.append(task)
    cluster_cpus = processes or default_processes()
    processes = max(1, min(processes or default_processes(), len(todo) or 1))
    total_bytes = sum(t.size for t in todo)
    with Progress(
        TextColumn(f"[bold]{title}[/]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[docs]:,} docs · {task.fields[rate]} docs/s · {task.fields[shards]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=False,
    ) as progress:
        bar = progress.add_task(title, total=total_bytes or None, docs=0, rate="-", shards="")
        started = time.monotonic()
        docs_seen = 0
        finished = 0

        def advance(docs: int, nbytes: int, shards_done: int = 0) -> None:
            nonlocal docs_seen, finished
            docs_seen += docs
            finished += shards_done
            elapsed = max(time.monotonic() - started, 1e-9)
            progress.update(
                bar,
                advance=nbytes,
                docs=docs_seen,
                rate=f"{docs_seen / elapsed:,.0f}",
                shards=f"{finished}/{len(todo)} shards",
            )

        if executor.kind == "ray" and todo:
            from dolma_kit.executor_ray import run_ray

            run_ray(fn, todo, results, advance, executor, num_cpus=cluster_cpus, live=console.is_terminal)
        elif processes == 1:
            for task in todo:
                results[task.key] = run_one(fn, task, advance)
                advance(0, 0, 1)
        else:
            _run_pool(fn, todo, processes, results, advance)
    result = RunResult(title, [results[t.key] for t in tasks])
    return result


def _run_pool(
    fn: ShardFn,
    todo: list[ShardTask],
    processes: int,
    results: dict[str, ShardStats],
    advance: Callable[..., None],
) -> None:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    # largest shards first: the pool finishes sooner when the long tail is small
    ordered = sorted(todo, key=lambda t: -t.size)
    with ProcessPoolExecutor(processes, mp_context=ctx, initializer=_init_worker, initargs=(queue,)) as pool:
        futures: dict[Future[ShardStats], ShardTask] = {
            pool.submit(_run_in_worker, fn, t): t for t in ordered
        }
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                _drain(queue, advance)
                for fut in done:
                    results[futures[fut].key] = fut.result()
                    advance(0, 0, 1)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
        finally:
            _drain(queue, advance)


def _drain(queue: Any, advance: Callable[[int, int], None]) -> None:
    docs = nbytes = 0
    while True:
        try:
            d, b = queue.get_nowait()
        except Empty:
            break
        docs += d
        nbytes += b
    advance(docs, nbytes)


# --------------------------------------------------------------------------------------------- reporting


def summary_table(result: RunResult, *, max_rows: int = 25) -> Table:
    """Per-shard counts and the total; long runs show the first shards and a count of the rest."""
    table = Table(title=f"{result.title}: documents in = kept + removed + rejected")
    table.add_column("shard", overflow="fold", min_width=12)
    for col in ("in", "kept", "removed", "rejected", "MB in", "s"):
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
            s.status,
            style=style,
        )

    for s in result.shards[:max_rows]:
        row(s)
    if len(result.shards) > max_rows:
        table.add_row(f"… {len(result.shards) - max_rows} more shards", *[""] * 7)
    total = result.total
    total.status = f"{len(result.shards)} shards"
    row(total, "bold")
    if total.removed_by:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(total.removed_by.items()))
        table.caption = f"removed by: {reasons}"
    return table


class RejectsWriter:
    """Streams a shard's bad records to `task.rejects` as they come (memory stays flat on bad input).

    Opened on the first reject; on close, a shard without rejects removes any stale file from an earlier run.
    Counts each record-level reject in `stats` (a file-level problem, line 0, holds no document).
    """

    def __init__(self, task: ShardTask, stats: ShardStats) -> None:
        self.task = task
        self.stats = stats
        self._out: JsonlWriter | None = None

    def __call__(self, exc: BadRecordError) -> None:
        if self._out is None:
            self._out = JsonlWriter(self.task.rejects)
        self._out.write(exc.to_reject())
        if exc.line:
            self.stats.reject()

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._out is not None:
            self._out.__exit__(exc_type, exc, tb)
        elif exc is None:
            storage.remove(self.task.rejects)


def write_summary(result: RunResult, path: str) -> None:
    storage.write_text(path, json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
