"""Runs one function over many shards on this machine: in-process or a process pool, with progress and resume.

Shards whose `.done` marker exists are skipped (unless `force`) and still report their counts; the rest run
through `shards.run_one`, here or on Ray (`executor.ray`, an optional extra) when the `ExecutorConfig` says so.
Worker processes are forked from a `forkserver` started once per driver process, which has imported the
command's modules (the CLI, this module, the stage function's module) before any thread exists: a worker costs a
fork, not an interpreter importing numpy and the stage again (0.3 CPU-s each, for every worker of every pass;
`bench/startup.py`). The driver itself is never forked: it runs a progress-bar thread, and forking a process with
threads can deadlock in the child. Workers get the driver's environment as it is when the pool starts (not the
forkserver's, from its start), so a changed AWS_* variable reaches them as it would a spawned process. Where
`forkserver` is missing (not Linux), or with DOLMA_KIT_WORKER_START=spawn, `spawn`.

Each output root is locked for the run (`executor.lock`): a second run on the same destination stops at once.

Stopping (docs/reliability.md): SIGINT or SIGTERM (the CLI turns both into `Interrupted`, see `stop_on_signals`;
a library caller's Ctrl-C is a `KeyboardInterrupt`) ends the worker processes at once instead of waiting for
their running shards, and raises with "interrupted: N of M shards done, re-run to resume". A shard cut short has
no `.done` marker (`run_one` writes it after the function returns) and its output is only a temp file (outputs
are written atomically), so a re-run redoes exactly those shards. Workers ignore SIGINT (a terminal's Ctrl-C
reaches the whole process group; the driver ends them) and die with the driver on Linux, even when it is
SIGKILLed, so no orphan keeps writing into a destination that a re-run has taken over.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
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
from dolma_kit.executor.lock import destination_locks
from dolma_kit.executor.shards import (
    ExecutorConfig,
    RunResult,
    ShardFn,
    ShardStats,
    ShardTask,
    load_marker,
    run_one,
)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 2.0  # after SIGTERM, a worker still alive this long is SIGKILLed
_PR_SET_PDEATHSIG = 1
#: `spawn` starts every worker as a fresh interpreter, as before the forkserver (bench/startup.py compares them)
START_VARIABLE = "DOLMA_KIT_WORKER_START"


class Interrupted(BaseException):
    """SIGINT or SIGTERM stopped the command. `str()` is the line to print; the exit status is 128 + `signum`.

    A `BaseException` like `KeyboardInterrupt` (cleanup that catches `Exception` lets it through), but not one:
    the CLI framework would turn a `KeyboardInterrupt` into a silent exit 130.
    """

    def __init__(self, signum: int = signal.SIGINT, message: str = "interrupted") -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM raise `Interrupted` in the main thread (a no-op elsewhere).

    Only the first signal raises: one that comes while the run is stopping is ignored, so cleanup finishes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if not fired:
            fired.append(signum)
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back from this thread (delivered when the block ends). Processes started in the
    block inherit both held until `_init_worker` runs: a Ctrl-C during a worker's start-up cannot print a
    traceback there, and a SIGTERM then ends it as soon as it is up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# --------------------------------------------------------------------------------------------- workers

_QUEUE: Any = None


def _init_worker(queue: Any, parent: int, environment: dict[str, str]) -> None:
    """`parent`: the process that started the worker (the forkserver, or the driver for `spawn`)."""
    global _QUEUE
    _QUEUE = queue
    if os.environ != environment:
        os.environ.clear()
        os.environ.update(environment)
    # the driver ends its workers: a terminal's Ctrl-C reaches the whole process group
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked while it started (`_signals_held`)
    if sys.platform == "linux":  # die with the driver, even a SIGKILLed one: no orphan writes on
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)  # its parent died before the line above took effect (a forkserver ends with the driver)
    _release_forkserver()


def _release_forkserver() -> None:
    """A forkserver's child inherits the pipe end whose closing tells the server its driver is gone; the worker
    closes it, or a SIGKILLed driver would leave the server (and so its workers) alive for ever."""
    server = sys.modules.get("multiprocessing.forkserver")
    fd = getattr(getattr(server, "_forkserver", None), "_forkserver_alive_fd", None)
    if server is not None and fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver._forkserver_alive_fd = None


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
    The output roots are locked for the call (`DestinationInUse` if another run holds one). SIGINT / SIGTERM
    end the workers and raise `Interrupted` (`KeyboardInterrupt` for a plain Ctrl-C) saying how far it got.
    """
    executor = executor or ExecutorConfig()
    console = console or Console(stderr=True)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise DolmaKitError(f"{title}: two input files map to the same output; check the --documents globs")
    results: dict[str, ShardStats] = {}
    try:
        with destination_locks(sorted({t.root for t in tasks})):
            todo = []
            for task in tasks:
                done = None if force else load_marker(task)
                if done is not None:
                    results[task.key] = done
                else:
                    todo.append(task)
            _run(fn, todo, results, title, processes, console, executor)
    except (KeyboardInterrupt, Interrupted) as exc:
        message = f"interrupted: {len(results)} of {len(tasks)} shards done, re-run to resume"
        if isinstance(exc, Interrupted):
            raise Interrupted(exc.signum, message) from None
        raise KeyboardInterrupt(message) from None
    return RunResult(title, [results[t.key] for t in tasks])


def _run(
    fn: ShardFn,
    todo: list[ShardTask],
    results: dict[str, ShardStats],
    title: str,
    processes: int | None,
    console: Console,
    executor: ExecutorConfig,
) -> None:
    cluster_cpus = processes or default_processes()
    processes = max(1, min(cluster_cpus, len(todo) or 1))
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
            _run_pool(fn, todo, processes, results, advance, title)


def _module_of(fn: Any) -> str | None:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__module__", None)


#: driver modules not preloaded into the forkserver: the CLI's own (workers never run it) and the trainer's
_NOT_PRELOADED = ("dolma_kit.cli", "dolma_kit.pipeline", "dolma_kit.__main__")


def _driver_modules() -> list[str]:
    """The dolma_kit modules the driver has imported while planning (e.g. the taggers it checked), for the
    forkserver to import once: a worker's first shard imported them again, ~0.4 CPU-s per worker per command
    for `tag` (the built-in tagger modules and numpy), paid by every worker of every pass."""
    return sorted(
        m for m in list(sys.modules) if m.startswith("dolma_kit.") and not m.startswith(_NOT_PRELOADED)
    )


def _worker_context(fn: ShardFn) -> tuple[Any, int]:
    """(multiprocessing context, the pid of the workers' parent): the forkserver, started on first use with
    the modules the workers need already imported; `spawn` where there is none."""
    wanted = os.environ.get(START_VARIABLE) or "forkserver"
    if wanted not in ("forkserver", "spawn"):
        raise DolmaKitError(f"{START_VARIABLE}={wanted!r}: choose forkserver (the default) or spawn")
    if wanted == "spawn" or "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn"), os.getpid()
    from multiprocessing import forkserver

    server: Any = forkserver._forkserver  # the process-wide server behind mp.get_context("forkserver")
    ctx = mp.get_context("forkserver")
    preload = ["__main__", __name__, *filter(None, [_module_of(fn)]), *_driver_modules()]
    ctx.set_forkserver_preload(preload)  # takes effect when the server (re)starts, not after
    with _signals_held():  # it and every worker it forks start with SIGINT / SIGTERM held (`_init_worker`)
        server.ensure_running()
    return ctx, int(server._forkserver_pid)


def _run_pool(
    fn: ShardFn,
    todo: list[ShardTask],
    processes: int,
    results: dict[str, ShardStats],
    advance: Callable[..., None],
    title: str,
) -> None:
    ctx, parent = _worker_context(fn)
    queue = ctx.Queue()
    # largest shards first: the pool finishes sooner when the long tail is small
    ordered = sorted(todo, key=lambda t: -t.size)
    pool = ProcessPoolExecutor(
        processes, mp_context=ctx, initializer=_init_worker, initargs=(queue, parent, dict(os.environ))
    )
    futures: dict[Future[ShardStats], ShardTask] = {}
    try:
        with _signals_held():  # the workers start here (one per submit, up to `processes`)
            for task in ordered:
                futures[pool.submit(_run_in_worker, fn, task)] = task
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            _drain(queue, advance)
            for fut in done:
                try:
                    results[futures[fut].key] = fut.result()
                except BrokenProcessPool as exc:
                    raise DolmaKitError(
                        f"{title}: a worker process died while running {futures[fut].key} (out of memory? "
                        "killed?); finished shards are kept: re-run to resume"
                    ) from exc
                advance(0, 0, 1)
    except (KeyboardInterrupt, Interrupted):
        # a shard may have finished (its marker written) before its result was read: count it done
        started = [t for f, t in futures.items() if t.key not in results and (f.running() or f.done())]
        _end_workers(pool)
        for task in started:
            stats = load_marker(task)
            if stats is not None:
                results[task.key] = stats
        raise
    except BaseException:
        _finish(pool, queue, advance)
        raise
    _finish(pool, queue, advance)


def _finish(pool: ProcessPoolExecutor, queue: Any, advance: Callable[[int, int], None]) -> None:
    """Shut the pool down: shards still running finish (and get their markers); a signal meanwhile ends them."""
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    except (KeyboardInterrupt, Interrupted):
        _end_workers(pool)
        raise
    _drain(queue, advance)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's worker processes now: SIGTERM, then SIGKILL for any alive after `GRACE_SECONDS`.

    A `ProcessPoolExecutor` cannot cancel a running call (its shutdown waits for them), hence its private
    `_processes`. The progress queue is not drained: a worker killed mid-message would block the read.
    """
    with _signals_held():
        workers = list((getattr(pool, "_processes", None) or {}).values())
        for worker in workers:
            worker.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join()
        pool.shutdown(wait=True, cancel_futures=True)


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
