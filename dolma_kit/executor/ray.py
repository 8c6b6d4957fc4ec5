"""The Ray backend of `executor.run_shards`: the same per-shard function, run as Ray tasks on a cluster.

Each shard is one Ray task that calls `executor.run_one`, exactly as a local worker does, so outputs and
`.done` markers are the same files a local run writes (byte-identical), and a re-run after a killed driver
skips the shards whose markers exist. The driver keeps what the local executor keeps: marker checks, the
progress bar and the per-shard counts, which come back as the tasks' return values; documents and bytes read
inside a running shard reach the bar through a small progress actor (only when the bar is shown: on a
terminal).

Failures: a task that raises is retried (`max_retries`, with `retry_exceptions`) and so is one whose worker or
node died, since those may be transient (a network error, a preempted machine). A `DolmaKitError` (bad input,
bad option) is not: the task returns it instead of raising it, and the driver raises it with its message
unchanged, as the local executor would. A `StorageError` marked transient (S3 unreachable, throttled) is
retried, and if it still fails, the driver raises it unwrapped too. A shard whose worker died on every attempt
is one line naming the shard's input (`_failed`). An interrupted driver (SIGINT, SIGTERM)
cancels its tasks by force, ending their worker processes.

Ray is an optional extra and is imported only here, only when `--executor ray` is chosen.
"""

from __future__ import annotations

import os
import pickle
import sys
import uuid
from collections.abc import Callable
from typing import Any

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor.shards import ExecutorConfig, ShardFn, ShardStats, ShardTask, run_one

INSTALL_HINT = "--executor ray needs Ray: pip install 'dolma-kit[ray]'"
# Ray's object store holds only task arguments and results here (a function, a task, its counts), so a local
# cluster needs little of it; Ray's default (30% of memory) would claim shared memory for nothing.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
POLL_SECONDS = 0.2

# What this driver process connected to (its progress actor belongs to that job).
_STATE: dict[str, Any] = {"job": None, "progress": None}


def _import_ray(local_cluster: bool) -> Any:
    """Import Ray, or say how to install it. Before the first import of a local cluster, Ray is told to keep
    every address on loopback: its single-machine mode, which binds no port to the network."""
    if local_cluster and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as exc:
        raise DolmaKitError(INSTALL_HINT) from exc
    return ray


def connect(config: ExecutorConfig, *, num_cpus: int) -> Any:
    """Connect this process to Ray once: join `config.ray_address` (or RAY_ADDRESS, Ray's own variable), or
    start a new local cluster of `num_cpus` (never silently join another one running on this machine).

    A process already connected (a test's cluster, an earlier stage of the same command) is reused as it is.
    No Ray runtime environment is set: one (even only `env_vars`) makes every job wait for Ray's runtime-env
    agent and start fresh workers, 1–3 s per command measured; the AWS_* variables travel with each task instead
    (`shard_task`).
    """
    address = config.ray_address or os.environ.get("RAY_ADDRESS") or None
    ray = _import_ray(local_cluster=address is None)
    if not ray.is_initialized():
        common: dict[str, Any] = {"log_to_driver": False, "logging_level": "error"}
        try:
            if address is None:
                ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                    **common,
                )
            else:
                ray.init(address=address, **common)
        except (ConnectionError, ValueError) as exc:
            where = address or "a local cluster"
            hint = (
                "; a cluster with token authentication (Ray's default) also needs RAY_AUTH_MODE=token and its "
                "token (`ray get-auth-token` on the head node) in RAY_AUTH_TOKEN or ~/.ray/auth_token"
                if address
                else ""
            )
            raise DolmaKitError(f"--executor ray: cannot connect to {where}: {exc}{hint}") from exc
    job = ray.get_runtime_context().get_job_id()
    if _STATE["job"] != job:
        _STATE.update(job=job, progress=None)
    return ray


def _progress_actor(ray: Any) -> Any:
    """One progress actor per driver job (it takes no CPU, so it never holds back a shard task)."""
    if _STATE["progress"] is None:
        _STATE["progress"] = ray.remote(num_cpus=0)(Progress).remote()
    return _STATE["progress"]


class Progress:
    """Documents and bytes that running tasks have read, per run, until the driver takes them."""

    def __init__(self) -> None:
        self.pending: dict[str, list[int]] = {}

    def add(self, run: str, docs: int, nbytes: int) -> None:
        counts = self.pending.setdefault(run, [0, 0])
        counts[0] += docs
        counts[1] += nbytes

    def take(self, run: str) -> tuple[int, int]:
        docs, nbytes = self.pending.pop(run, (0, 0))
        return docs, nbytes


def shard_task(
    fn: ShardFn, task: ShardTask, progress: Any | None, run: str, cwd: str, aws: dict[str, str]
) -> tuple[ShardStats | None, DolmaKitError | None]:
    """The body of every Ray task: `run_one` in the driver's working directory (relative paths mean the same
    there on the driver's machine or a shared filesystem) with the driver's AWS_* variables (so workers reach
    the same endpoint with the same identity; the S3 client is cached per environment), and user errors
    returned, not raised (no retry)."""
    if os.getcwd() != cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    os.environ.update(aws)

    def sink(docs: int, nbytes: int) -> None:
        progress.add.remote(run, docs, nbytes)

    try:
        stats = run_one(fn, task, sink if progress is not None else None)
    except DolmaKitError as exc:
        if getattr(exc, "transient", False):
            raise  # Ray retries it
        return None, _portable(exc)
    stats._sink = None
    return stats, None


def _portable(exc: DolmaKitError) -> DolmaKitError:
    """The error itself when it survives pickling (BadRecordError does), else a DolmaKitError with its message."""
    try:
        back = pickle.loads(pickle.dumps(exc))
    except Exception:
        return DolmaKitError(str(exc))
    return back if str(back) == str(exc) else DolmaKitError(str(exc))


def _failed(ray: Any, exc: Exception, task: ShardTask, attempts: int) -> BaseException:
    """What the driver raises for a shard task that failed every attempt, naming the shard.

    A transient `StorageError` retried to no avail: itself, unwrapped. A worker or node that died each time
    (out of memory, killed, a lost machine): one line naming the shard's input, as the local executor says
    for a dead worker process. An exception of the stage's code (a bug): Ray's error, whose text carries the
    worker's traceback, with a note naming the shard."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        if isinstance(exc.cause, DolmaKitError):
            return _portable(exc.cause)
        exc.add_note(f"(shard {task.key}, input {task.input}: failed on Ray {attempts} times)")
        return exc
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return DolmaKitError(
        f"{task.input}: the Ray worker running shard {task.key} died {attempts} times (out of memory? killed? "
        f"a lost node?): {type(exc).__name__}: {first}; finished shards are kept: re-run to resume"
    )


def run_ray(
    fn: ShardFn,
    todo: list[ShardTask],
    results: dict[str, ShardStats],
    advance: Callable[..., None],
    config: ExecutorConfig,
    *,
    num_cpus: int,
    live: bool = True,
) -> None:
    """Run `todo` as Ray tasks (largest first), filling `results` and advancing the driver's progress bar.

    `live`: pass on progress from inside running shards (the bar is drawn); otherwise no actor is started and
    the counts arrive as shards finish.
    """
    ray = connect(config, num_cpus=num_cpus)
    progress = _progress_actor(ray) if live else None
    run = uuid.uuid4().hex
    options: dict[str, Any] = {"num_cpus": 1, "max_retries": config.max_retries, "retry_exceptions": True}
    aws = storage.aws_environment()
    remote = ray.remote(shard_task).options(**options)
    fn_ref = ray.put(fn)  # serialised once, not once per task (minhash's functions carry every shard's path)
    cwd = os.getcwd()
    refs = {remote.remote(fn_ref, t, progress, run, cwd, aws): t for t in sorted(todo, key=lambda t: -t.size)}
    pending = list(refs)
    reported = [0, 0]  # documents and bytes the progress actor passed on
    finished = [0, 0]  # and those the finished shards counted

    def update() -> None:
        if progress is None:
            return
        docs, nbytes = ray.get(progress.take.remote(run))
        reported[0] += docs
        reported[1] += nbytes
        advance(docs, nbytes)

    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
            update()
            for ref in done:
                try:
                    stats, error = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise _failed(ray, exc, refs[ref], 1 + config.max_retries) from None
                if error is not None:
                    raise error
                results[refs[ref].key] = stats
                finished[0] += stats.documents_in
                finished[1] += stats.bytes_in
                advance(0, 0, 1)
    except BaseException as exc:
        stopping = not isinstance(exc, Exception)  # SIGINT / SIGTERM: end the running tasks now
        for ref in pending:
            ray.cancel(ref, force=stopping)
        raise
    # an update sent just before a task returned may not have reached the actor yet: the counts are exact
    advance(max(0, finished[0] - reported[0]), max(0, finished[1] - reported[1]))
