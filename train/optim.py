"""AdamW, the learning-rate schedules and the grad-clip warm-up of the OLMo recipe.

The schedule is a pure function of the step (`lr_at`), so it has no state to drift: a resumed run recomputes
the same rate for the same step, and the checkpoint only needs the step number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch only where an optimizer is built: train/config.py reads this module without it
    import torch
    from torch import nn

SCHEDULES = ("linear", "cosine", "constant")


@dataclass(kw_only=True)
class OptimConfig:
    """AdamW and OLMo's schedules: linear warmup from `warmup_min_lr` to `lr`, then linear or cosine decay to
    `final_lr_ratio` × lr at the last step (OLMo's `linear_with_warmup` / `cosine_with_warmup`, alpha_f), and
    OLMo's grad-clip warm-up (a looser clip for the first steps)."""

    lr: float = 4e-4
    """Peak learning rate (OLMo-1B: 4e-4; OLMo's optimizer.learning_rate)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """Adam β1, β2."""
    eps: float = 1e-5
    """Adam epsilon (OLMo's default, used by OLMo-1B and 7B; torch's own default is 1e-8)."""
    weight_decay: float = 0.1
    """Decoupled weight decay on the matmul weights; never on embeddings (nor norms, which have no parameters)."""
    schedule: str = "linear"
    """linear (OLMo's linear_with_warmup: OLMo-7B), cosine (cosine_with_warmup: OLMo-1B) or constant (the
    peak after warmup)."""
    warmup_steps: int = 2000
    """Steps of linear warmup up to `lr` (OLMo's scheduler.t_warmup)."""
    warmup_min_lr: float | None = None
    """The rate the warmup starts from (OLMo's scheduler.warmup_min_lr); None: 0.1 × lr, as OLMo."""
    final_lr_ratio: float = 0.1
    """The rate at the last step (max_steps), as a fraction of the peak (OLMo's scheduler.alpha_f)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (≤ 0 disables clipping; OLMo's max_grad_norm)."""
    grad_clip_warmup_steps: int | None = None
    """For steps ≤ this, clip at grad_clip × grad_clip_warmup_factor (OLMo-7B: 1000 steps × 10)."""
    grad_clip_warmup_factor: float | None = None
    """See grad_clip_warmup_steps (OLMo's scheduler.grad_clip_warmup_factor)."""

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # YAML gives a list
        if len(self.betas) != 2:
            raise ValueError(f"optim.betas must have two values, got {list(self.betas)}")
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.final_lr_ratio <= 1:
            raise ValueError("optim.lr must be > 0, optim.warmup_steps ≥ 0 and 0 ≤ optim.final_lr_ratio ≤ 1")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.warmup_min_lr is not None and not 0 <= self.warmup_min_lr < self.lr:
            raise ValueError(f"optim.warmup_min_lr must be in [0, optim.lr), got {self.warmup_min_lr}")
        if (self.grad_clip_warmup_steps is None) != (self.grad_clip_warmup_factor is None):
            raise ValueError("optim.grad_clip_warmup_steps and grad_clip_warmup_factor go together")

    def build(self, model: nn.Module) -> torch.optim.AdamW:
        """AdamW over two groups: matmul weights with decay, embeddings without (a tied lm head is the embedding,
        so it is not decayed either). `fused`: one kernel per parameter group on CPU and GPU (DTensor
        parameters included), faster than `foreach`, with the same update up to rounding."""
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            (no_decay if name.startswith("wte.") or param.ndim < 2 else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        import torch

        return torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, eps=self.eps, fused=True)

    def lr_at(self, step: int, max_steps: int) -> float:
        """Rate for optimizer step `step` (1-based), as OLMo's schedulers compute it for its global step:
        warmup_min_lr + (lr − warmup_min_lr)·step/warmup_steps below warmup_steps, the floor
        final_lr_ratio·lr from max_steps on, and between them linear or cosine (η_min + (lr − η_min)·
        (1 + cos(π·t))/2, t the fraction of the decay span done)."""
        floor = self.lr * self.final_lr_ratio
        if step < self.warmup_steps:
            start = self.lr * 0.1 if self.warmup_min_lr is None else self.warmup_min_lr
            return start + (self.lr - start) * step / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        if step >= max_steps:
            return floor
        frac = (step - self.warmup_steps) / max(1, max_steps - self.warmup_steps)
        if self.schedule == "cosine":
            return floor + (self.lr - floor) * (1 + math.cos(math.pi * frac)) / 2
        return self.lr - (self.lr - floor) * frac

    def clip_at(self, step: int) -> float:
        """The max grad norm for step `step`: grad_clip, × grad_clip_warmup_factor while step ≤
        grad_clip_warmup_steps (OLMo's `_get_max_grad_norm_coeff`)."""
        if self.grad_clip_warmup_steps is not None and step <= self.grad_clip_warmup_steps:
            return self.grad_clip * float(self.grad_clip_warmup_factor or 1.0)
        return self.grad_clip


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
