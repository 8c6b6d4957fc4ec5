"""Process group setup and FSDP2, applied outside the model (as torchtitan and OLMo-core do).

The model is built on the meta device (no memory), each block is wrapped with `fully_shard`, then the root
(which holds the embedding and, untied, the lm head); only then are the shards materialised on the device and
initialised. With bf16, `MixedPrecisionPolicy` keeps fp32 master weights and optimizer state in the shards,
all-gathers parameters in bf16 for compute and reduce-scatters gradients in fp32.

A single process with no torchrun environment still runs through FSDP2, on a one-rank gloo group held in an
in-memory store, so there is one code path for 1 or N processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    """auto → cuda when one is visible, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        from dolma_kit.config import ConfigError

        raise ConfigError("trainer.device=cuda but no CUDA device is visible; use trainer.device=cpu")
    return torch.device(name)


def init_distributed(device_name: str) -> DistInfo:
    """Join the torchrun group (env:// rendezvous; nccl on GPU, gloo on CPU), reuse an already initialised
    group (tests), or make a one-rank gloo group when started as a plain process."""
    device = resolve_device(device_name)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def choose_cpu_threads(
    configured: int | None, *, local_ranks: int, cores: int, load: float, env: str | None
) -> tuple[int, str | None]:
    """torch intra-op threads for one CPU rank, and a warning when the cores are oversubscribed.

    `configured` (trainer.cpu_threads) wins; else OMP_NUM_THREADS (`env`; torchrun sets 1) is kept; else the
    cores not busy with other work (`load`: the 1-minute load average, taken before training starts), shared
    by this machine's ranks, at least 1. torch's own default, all cores per process, trained the tiny config
    at 26–67 tokens/s on 2 busy cores against 720–888 with one thread: threads that wait for a core cost more
    than the parallelism gives."""
    ranks = max(1, local_ranks)
    recommended = max(1, max(0, cores - round(load)) // ranks)
    if configured is not None:
        threads = configured
    elif env and env.strip().isdigit() and int(env) > 0:
        threads = int(env)
    else:
        threads = recommended
    if threads > recommended:
        return threads, (
            f"CPU oversubscribed: {ranks} rank(s) × {threads} thread(s) on {cores} core(s) with a load of "
            f"{load:.1f} from other work; threads that wait for a core train several times slower. "
            f"Set trainer.cpu_threads={recommended}"
        )
    if ranks > cores:
        return threads, f"CPU oversubscribed: {ranks} ranks on {cores} core(s); start at most {cores}"
    return threads, None


def set_cpu_threads(configured: int | None, local_ranks: int) -> tuple[int, str | None]:
    """Apply `choose_cpu_threads` to this process (CPU runs); returns (threads, warning or None)."""
    threads, warning = choose_cpu_threads(
        configured,
        local_ranks=local_ranks,
        cores=usable_cores(),
        load=os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0,
        env=os.environ.get("OMP_NUM_THREADS"),
    )
    torch.set_num_threads(threads)
    return threads, warning


def parallelize(
    model: nn.Module, *, bf16: bool, compile: bool, shard: bool = True, activation_checkpointing: bool = False
) -> nn.Module:
    """Activation checkpointing and torch.compile per block, then `fully_shard` every block and the root
    (when `shard`). `model` is on the meta device; the caller materialises it (`to_empty`) and initialises
    it afterwards. The root's parameters are not resharded after forward (backward needs them at once).
    Order as torchtitan: checkpointing inside compile inside FSDP, so each sharded unit is one compiled,
    recomputed block, and FSDP's all-gathers stay outside the recomputed region."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if bf16 and not shard:
        raise ValueError("bf16 mixed precision comes from FSDP's policy: shard the model")
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
    kwargs = {"mp_policy": mp} if mp is not None else {}
    for block in model.blocks:
        block.checkpoint_activations = activation_checkpointing  # inside the block's call: names unchanged
        if compile:
            block.compile()
        if shard:
            fully_shard(block, **kwargs)
    if shard:
        fully_shard(model, reshard_after_forward=False, **kwargs)
    return model


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (in place) and return it."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
