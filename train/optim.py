"""AdamW and the learning-rate schedule of the OLMo recipe.

The schedule is a pure function of the step (`lr_at`), so it has no state to drift: a resumed run recomputes
the same rate for the same step, and the checkpoint only needs the step number.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(kw_only=True)
class OptimConfig:
    """AdamW with linear warmup, then linear decay to `final_lr_ratio` × peak at the last step."""

    lr: float = 4e-4
    """Peak learning rate (OLMo-1B: 4e-4)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """Adam β1, β2."""
    eps: float = 1e-8
    """Adam epsilon."""
    weight_decay: float = 0.1
    """Decoupled weight decay on the matmul weights; never on embeddings (nor norms, which have no parameters)."""
    warmup_steps: int = 2000
    """Steps of linear warmup from 0 to `lr`."""
    final_lr_ratio: float = 0.1
    """The rate at the last step, as a fraction of the peak."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (≤ 0 disables clipping)."""

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # YAML gives a list
        if len(self.betas) != 2:
            raise ValueError(f"optim.betas must have two values, got {list(self.betas)}")
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.final_lr_ratio <= 1:
            raise ValueError("optim.lr must be > 0, optim.warmup_steps ≥ 0 and 0 ≤ optim.final_lr_ratio ≤ 1")

    def build(self, model: nn.Module) -> torch.optim.AdamW:
        """AdamW over two groups: matmul weights with decay, embeddings without (a tied lm head is the embedding,
        so it is not decayed either). `foreach` keeps the step fast on CPU and works with DTensor parameters."""
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            (no_decay if name.startswith("wte.") or param.ndim < 2 else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, eps=self.eps, foreach=True)

    def lr_at(self, step: int, max_steps: int) -> float:
        """Rate for optimizer step `step` (1-based): warmup over the first `warmup_steps`, then linear to
        `final_lr_ratio`·lr at `max_steps`."""
        if step <= self.warmup_steps:
            return self.lr * step / max(1, self.warmup_steps)
        span = max(1, max_steps - self.warmup_steps)
        frac = min(1.0, (step - self.warmup_steps) / span)
        return self.lr * (1.0 - frac * (1.0 - self.final_lr_ratio))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
