"""Runs one function over many shards on this machine: in-process or a spawn pool, with progress and resume.

Shards whose `.done` marker exists are skipped (unless `force`) and still report their counts; the rest run
through `shards.run_one`, here or on Ray (`executor.ray`, an optional extra) when the `ExecutorConfig` says so.
Worker processes use the `spawn` start method: the driver runs a progress-bar thread, and forking a process
with threads can deadlock in the child.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from queue import Empty
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dolma_kit.errors import DolmaKitError
from dolma_kit.executor.shards import (
    ExecutorConfig,
    RunResult,
    ShardFn,
    ShardStats,
    ShardTask,
    load_marker,
    run_one,
)

# --------------------------------------------------------------------------------------------- workers

_QUEUE: Any = None


def _init_worker(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue


def _queue_sink(docs: int, nbytes: int) -> None:
    if _QUEUE is not None:
        _QUEUE.put((docs, nbytes))


def _run_in_worker(fn: ShardFn, task: ShardTask) -> ShardStats:
    stats = run_one(fn, task, _queue_sink)
    stats._sink = None
    return stats


# --------------------------------------------------------------------------------------------- driver


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
        done = None if force else load_marker(task)
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
            from dolma_kit.executor.ray import run_ray

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
