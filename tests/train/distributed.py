"""Run a function in N processes joined in a torch.distributed group (gloo on CPU), as OLMo-core's testing
helpers do, so FSDP code is tested without GPUs and without torchrun. The `requires_gpu` mark skips tests
that need CUDA."""

from __future__ import annotations

import os
import socket
import traceback
from collections.abc import Callable
from typing import Any

import pytest
import torch

requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(
    fn: Callable[..., Any], rank: int, world_size: int, backend: str, port: int, args: tuple, errors
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        OMP_NUM_THREADS="1",
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        dist.init_process_group(backend, rank=rank, world_size=world_size)
        fn(*args)
        # every rank done before any tears the group down: a rank that destroys its gloo group while the
        # other still talks to it can abort at exit ("terminate called without an active exception", seen in CI)
        dist.barrier()
    except BaseException:
        errors.put((rank, traceback.format_exc()))
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    # done and torn down: leave without the interpreter's exit path, where a C++ thread still joinable can
    # abort the process after the work succeeded (exit code -6 with nothing wrong)
    os._exit(0)


def run_distributed(
    fn: Callable[..., Any], *args: Any, world_size: int = 2, backend: str = "gloo", timeout: float = 120
) -> None:
    """Call `fn(*args)` in `world_size` spawned processes (a module-level, picklable function); fail with the
    first rank's traceback if any rank fails or the group does not finish within `timeout` seconds."""
    ctx = torch.multiprocessing.get_context("spawn")
    errors = ctx.SimpleQueue()
    port = free_port()
    procs = [
        ctx.Process(target=_worker, args=(fn, rank, world_size, backend, port, args, errors))
        for rank in range(world_size)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    for p in procs:
        if p.is_alive():
            p.kill()
    if not errors.empty():
        rank, tb = errors.get()
        raise AssertionError(f"rank {rank} failed:\n{tb}")
    codes = [p.exitcode for p in procs]
    assert codes == [0] * world_size, f"exit codes {codes} (a timeout leaves None or -9)"
