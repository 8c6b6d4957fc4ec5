"""OpenELM's layer-wise scaling and RMSNorm: per-layer heads and SwiGLU widths as OpenELM computes them,
parameter counts against an independent formula, forward/backward through FSDP."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from train.loop import Trainer
from train.model import LayerwiseScaling, ModelConfig, build_model, make_divisible

# apple/OpenELM-270M's config.json: model_dim 1280, 16 layers, head_dim 64, qkv (0.5, 1.0), ffn (0.5, 4.0),
# ffn_dim_divisor 256, num_gqa_groups 4
OPENELM_270M_HEADS = [12] * 5 + [16] * 7 + [20] * 4
OPENELM_270M_FFN = [
    768,
    1024,
    1280,
    1536,
    1792,
    2048,
    2560,
    2816,
    3072,
    3328,
    3584,
    3840,
    4352,
    4608,
    4864,
    5120,
]


def openelm_like(**kw) -> ModelConfig:
    scaling = LayerwiseScaling(alpha=[0.5, 1.0], beta=[0.5, 4.0], head_multiple=4)
    return ModelConfig(
        d_model=1280,
        n_layers=16,
        n_heads=20,
        vocab_size=32000,
        layerwise_scaling=scaling,
        norm="rmsnorm",
        **kw,
    )


def test_per_layer_heads_and_ffn_follow_openelm_270m() -> None:
    cfg = openelm_like()
    assert [cfg.layer_heads(i) for i in range(16)] == OPENELM_270M_HEADS
    assert [cfg.layer_hidden(i) for i in range(16)] == OPENELM_270M_FFN
    assert make_divisible(1280 * 0.53, 256) == 768  # rounds to the nearest multiple, never 10% below


def test_parameter_count_matches_an_independent_formula_and_the_built_model() -> None:
    for cfg in (openelm_like(), openelm_like(weight_tying=True)):
        d, hd = 1280, 64
        attn = sum(4 * d * h * hd for h in OPENELM_270M_HEADS)  # q, k, v: d → h·hd each; out: h·hd → d
        ffn = sum(3 * d * f for f in OPENELM_270M_FFN)  # SwiGLU: d → 2f, f → d
        norms = (2 * 16 + 1) * d
        embeddings = 32000 * d * (1 if cfg.weight_tying else 2)
        assert cfg.num_params() == attn + ffn + norms + embeddings
        assert sum(p.numel() for p in build_model(cfg, "meta").parameters()) == cfg.num_params()
    uniform = ModelConfig(d_model=64, n_layers=2, n_heads=4, vocab_size=1000, norm="rmsnorm")
    assert uniform.num_params() == 2 * (4 * 64 * 64 + 3 * 64 * 256) + 5 * 64 + 1024 * 64 * 2


def test_rmsnorm_has_a_learned_gain_and_gradients_reach_every_parameter() -> None:
    scaling = LayerwiseScaling(alpha=[0.5, 1.0], beta=[1.0, 4.0], ffn_divisor=32)
    cfg = ModelConfig(
        d_model=64, n_layers=3, n_heads=4, vocab_size=256, layerwise_scaling=scaling, norm="rmsnorm"
    )
    model = build_model(cfg)
    model.init_weights(0)
    assert [b.attn.n_heads for b in model.blocks] == [2, 3, 4]
    assert [b.mlp.ff_out.in_features for b in model.blocks] == [64, 160, 256]
    x = torch.randn(2, 5, 64)
    with torch.no_grad():
        model.norm.weight.mul_(2.0)
    expected = 2.0 * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.layer_norm_eps)
    torch.testing.assert_close(model.norm(x), expected)
    idx = torch.randint(0, 256, (2, 12))
    loss = F.cross_entropy(model(idx)[:, :-1].reshape(-1, 256), idx[:, 1:].reshape(-1))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.isfinite().all() and p.grad.abs().sum() > 0, name


def test_layerwise_rmsnorm_model_trains_under_fsdp(tiny_config) -> None:
    cfg = tiny_config(
        "trainer.max_steps=8",
        "trainer.eval_every=0",
        "optim.lr=1e-2",
        "model.norm=rmsnorm",
        "model.layerwise_scaling={alpha: [0.5, 1.0], beta: [1, 4], ffn_divisor: 64}",
    )
    records = Trainer(cfg).fit()
    assert records[-1]["loss"] < records[0]["loss"] - 0.5
    with pytest.raises(Exception, match=r"layerwise_scaling\.alpha"):
        tiny_config("model.layerwise_scaling={alpha: [0.5], beta: [1, 4]}")
