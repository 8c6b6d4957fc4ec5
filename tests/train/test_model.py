"""The model matches OLMo's architecture facts: parameter counts, SwiGLU half order, init, causality."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from train.config import load_config
from train.export_hf import hf_state_dict
from train.model import ModelConfig, apply_rope, build_model, rope_tables

from .conftest import TINY


def test_1b_config_on_meta_has_olmo_1b_parameter_count() -> None:
    cfg = load_config(TINY.parent / "1b.yaml")
    model = build_model(cfg.model, "meta")
    counted = sum(p.numel() for p in model.parameters())
    assert counted == cfg.model.num_params() == 1_176_764_416
    assert cfg.model.padded_vocab_size == 50_304
    assert model.lm_head is None  # tied
    assert all(p.device.type == "meta" for p in model.parameters())


def test_7b_config_is_olmo_7b_shape() -> None:
    cfg = load_config(TINY.parent / "7b.yaml")
    assert cfg.model.num_params() == sum(p.numel() for p in build_model(cfg.model, "meta").parameters())
    assert cfg.model.num_params() == 6_888_095_744  # OLMo-7B: 6.89B, untied
    assert cfg.model.hidden * 2 == 22_016  # OLMo's mlp_hidden_size is ff_proj's output


def test_hidden_defaults_to_8_thirds_rounded_up_to_128_and_no_biases() -> None:
    cfg = ModelConfig(d_model=64, n_layers=2, n_heads=4, vocab_size=1000)
    assert cfg.hidden == 256 and cfg.padded_vocab_size == 1024
    assert ModelConfig(d_model=768, n_layers=1, n_heads=12, vocab_size=8).hidden == 2048
    model = build_model(cfg)
    assert not [n for n, _ in model.named_parameters() if "bias" in n]
    assert not [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]  # non-parametric norms


def test_swiglu_gate_is_the_second_half() -> None:
    cfg = ModelConfig(d_model=16, n_layers=1, n_heads=2, vocab_size=8, mlp_hidden=32)
    mlp = build_model(cfg).blocks[0].mlp
    x = torch.randn(3, 16)
    h = x @ mlp.ff_proj.weight.T
    expected = (F.silu(h[:, 32:]) * h[:, :32]) @ mlp.ff_out.weight.T
    torch.testing.assert_close(mlp(x), expected)


def test_mitchell_init_std_and_truncation() -> None:
    cfg = ModelConfig(d_model=128, n_layers=3, n_heads=4, vocab_size=4096, weight_tying=False)
    model = build_model(cfg)
    model.init_weights(seed=0)
    stds = model.init_std()
    assert stds["blocks.2.attn.attn_out.weight"] == pytest.approx(1 / math.sqrt(2 * 128 * 3))
    assert stds["blocks.1.mlp.ff_out.weight"] == pytest.approx(1 / math.sqrt(2 * cfg.hidden * 2))
    for name, p in model.named_parameters():
        assert p.std().item() == pytest.approx(stds[name] * 0.986, rel=0.05), name  # ±3σ truncation
        assert p.abs().max().item() <= 3 * stds[name] + 1e-6
    again = build_model(cfg)
    again.init_weights(seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True))


def test_causal_and_rope_relative() -> None:
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, vocab_size=64)
    model = build_model(cfg)
    model.init_weights(seed=1)
    idx = torch.randint(0, 64, (2, 10))
    changed = idx.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 64
    a, b = model(idx), model(changed)
    assert a.shape == (2, 10, 128)  # padded vocabulary
    torch.testing.assert_close(a[:, :7], b[:, :7])  # future tokens do not leak backwards
    assert not torch.allclose(a[:, 7:], b[:, 7:])
    # RoPE: q·k depends on the position difference only
    cos, sin = rope_tables(12, 8, 10_000.0, torch.device("cpu"))
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    qs = apply_rope(q.expand(1, 1, 12, 8), cos, sin)[0, 0]
    ks = apply_rope(k.expand(1, 1, 12, 8), cos, sin)[0, 0]
    torch.testing.assert_close(qs[5] @ ks[2], qs[9] @ ks[6])


@pytest.mark.parametrize("tied", [True, False])
def test_logits_equal_hf_olmo_for_causal_lm(tied: bool) -> None:
    """Parity with HF `OlmoForCausalLM` (runs where transformers is installed, the test extra): q, k, v are
    att_proj's thirds; up and gate are ff_proj's halves in that order (OLMo's conversion)."""
    transformers = pytest.importorskip("transformers")
    cfg = ModelConfig(d_model=64, n_layers=3, n_heads=4, vocab_size=300, mlp_hidden=192, weight_tying=tied)
    ours = build_model(cfg)
    ours.init_weights(0)
    hf_cfg = transformers.OlmoConfig(
        vocab_size=cfg.padded_vocab_size,
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        rope_theta=10_000.0,
        attention_bias=False,
        clip_qkv=None,
        tie_word_embeddings=tied,
        hidden_act="silu",
    )
    hf = transformers.OlmoForCausalLM(hf_cfg)
    sd = hf_state_dict(ours)  # the export's mapping (train/export_hf.py)
    if tied:
        sd["lm_head.weight"] = ours.wte.weight.detach()
    hf.load_state_dict({k: v.detach().clone() for k, v in sd.items()}, strict=True)
    idx = torch.randint(0, 300, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx), hf.eval()(idx).logits, rtol=1e-5, atol=1e-5)
