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


def parallelize(model: nn.Module, *, bf16: bool, compile: bool) -> nn.Module:
    """`fully_shard` every block, then the root. `model` is on the meta device; the caller materialises it
    (`to_empty`) and initialises it afterwards. The root's parameters are not resharded after forward
    (they are needed again at once by backward)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
    kwargs = {"mp_policy": mp} if mp is not None else {}
    for block in model.blocks:
        if compile:
            block.compile()
        fully_shard(block, **kwargs)
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
