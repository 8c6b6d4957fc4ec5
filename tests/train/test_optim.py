"""OLMo's schedules and grad-clip warm-up, and configs/1b.yaml and 7b.yaml against OLMo's published recipes."""

from __future__ import annotations

import math

import pytest

from train.config import load_config
from train.optim import OptimConfig

from .conftest import TINY


def olmo_lr(name: str, lr: float, step: int, warmup: int, max_steps: int, alpha_f: float = 0.1) -> float:
    """OLMo's CosWithWarmup / LinearWithWarmup.get_lr restated from their formulas (warmup_min_lr None)."""
    eta_min = lr * alpha_f
    if step < warmup:
        return lr * 0.1 + (lr - lr * 0.1) * min(step, warmup) / warmup
    if step >= max_steps:
        return eta_min
    t, span = step - warmup, max_steps - warmup
    if name == "cosine":
        return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t / span)) / 2
    return lr - (lr - eta_min) * (t / span)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedules_are_olmos(schedule: str) -> None:
    cfg = OptimConfig(lr=4e-4, schedule=schedule, warmup_steps=2000)
    for step in (1, 2, 1000, 1999, 2000, 2001, 100_000, 370_000, 739_327, 739_328, 800_000):
        assert cfg.lr_at(step, 739_328) == pytest.approx(olmo_lr(schedule, 4e-4, step, 2000, 739_328))
    assert cfg.lr_at(1, 739_328) == pytest.approx(4e-5 + 3.6e-4 / 2000)  # warmup starts at 0.1 × lr
    mid = (2000 + 739_328) // 2
    assert cfg.lr_at(mid, 739_328) == pytest.approx(2.2e-4, rel=1e-5)  # both halfway at the midpoint
    quarter = 2000 + (739_328 - 2000) // 4  # cosine is above linear in the first half of the decay
    gap = OptimConfig(schedule="cosine").lr_at(quarter, 739_328) - OptimConfig().lr_at(quarter, 739_328)
    assert gap > 0.3e-4
    assert OptimConfig(schedule="constant", warmup_steps=10).lr_at(500, 20) == 4e-4
    assert OptimConfig(warmup_min_lr=0.0, warmup_steps=10).lr_at(5, 100) == pytest.approx(2e-4)


def test_grad_clip_warmup_is_olmo_7bs() -> None:
    cfg = OptimConfig(grad_clip=1.0, grad_clip_warmup_steps=1000, grad_clip_warmup_factor=10.0)
    assert [cfg.clip_at(s) for s in (1, 1000, 1001)] == [10.0, 10.0, 1.0]
    assert OptimConfig().clip_at(1) == 1.0
    with pytest.raises(ValueError, match="go together"):
        OptimConfig(grad_clip_warmup_steps=10)
    with pytest.raises(ValueError, match=r"optim\.schedule must be one of"):
        OptimConfig(schedule="cos")


# OLMo's configs/official/OLMo-{1B,7B}.yaml, the keys that decide training, by our key
OLMO = {
    "1b": {
        "model.d_model": 2048, "model.n_layers": 16, "model.n_heads": 16, "model.hidden": 8192,
        "model.weight_tying": True, "model.vocab_size": 50280, "model.padded_vocab_size": 50304,
        "model.max_sequence_length": 2048, "data.seq_len": 2048, "data.eos_id": 50279,
        "trainer.seed": 6198, "trainer.max_steps": 739_328, "trainer.global_batch": 2048,
        "trainer.micro_batch": 8, "trainer.checkpoint_every": 1000, "trainer.eval_every": 1000,
        "trainer.keep_last": 9, "trainer.compile": False, "optim.lr": 4e-4, "optim.weight_decay": 0.1,
        "optim.betas": (0.9, 0.95), "optim.eps": 1e-5, "optim.schedule": "cosine", "optim.warmup_steps": 2000,
        "optim.warmup_min_lr": None, "optim.final_lr_ratio": 0.1, "optim.grad_clip": 1.0,
        "optim.grad_clip_warmup_steps": None,
    },
    "7b": {
        "model.d_model": 4096, "model.n_layers": 32, "model.n_heads": 32, "model.hidden": 11008,
        "model.weight_tying": False, "model.vocab_size": 50280, "model.padded_vocab_size": 50304,
        "model.max_sequence_length": 2048, "data.seq_len": 2048, "data.eos_id": 50279,
        "trainer.seed": 6198, "trainer.max_steps": int(2e12 // (2048 * 2048)), "trainer.global_batch": 2048,
        "trainer.micro_batch": 2, "trainer.checkpoint_every": 1000, "trainer.eval_every": 1000,
        "trainer.keep_last": 0, "trainer.compile": True, "optim.lr": 3e-4, "optim.weight_decay": 0.1,
        "optim.betas": (0.9, 0.95), "optim.eps": 1e-5, "optim.schedule": "linear", "optim.warmup_steps": 5000,
        "optim.warmup_min_lr": None, "optim.final_lr_ratio": 0.1, "optim.grad_clip": 1.0,
        "optim.grad_clip_warmup_steps": 1000, "optim.grad_clip_warmup_factor": 10.0,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", ["1b", "7b"])
def test_configs_match_olmos_published_recipes(name: str) -> None:
    cfg = load_config(TINY.parent / f"{name}.yaml")
    for key, value in OLMO[name].items():
        section, attr = key.split(".")
        assert getattr(getattr(cfg, section), attr) == value, key
