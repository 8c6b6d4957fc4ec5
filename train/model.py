"""The OLMo decoder-only transformer, readable in one sitting (as nanoGPT's model.py).

OLMo's choices, each matched to its code because parity with HF `OlmoForCausalLM` depends on them:
- no biases anywhere; LayerNorm is non-parametric (no gain, no bias), eps 1e-5;
- one fused `att_proj` (d → 3d) split into q, k, v; RoPE (θ 10,000, rotate-half / GPT-NeoX layout) on q and k;
- SwiGLU: `x, gate = ff_proj(x).chunk(2, -1)` then `silu(gate) * x` (the gate is the *second* half);
- vocabulary padded up to a multiple of 128 (50,280 → 50,304); optional weight tying (1B ties, 7B does not);
- "mitchell" init: truncated normal (±3σ), std 1/√d for wte, att_proj, ff_proj (and an untied lm head),
  1/√(2·d·(layer+1)) for attn_out, 1/√(2·hidden·(layer+1)) for ff_out.

Shape suffixes: B batch, T sequence, D d_model, H heads, K head dim, F SwiGLU hidden, V padded vocabulary.
The model is built on the meta device and materialised after FSDP wraps it (`train/parallelize.py`);
`init_weights` then fills every parameter from one seeded generator, so the initial model does not depend on
the world size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def round_up(n: int, multiple: int) -> int:
    return ((n + multiple - 1) // multiple) * multiple


def make_divisible(v: float, divisor: int) -> int:
    """OpenELM's (MobileNet's) rounding: the nearest multiple of `divisor`, at least `divisor`, and never more
    than 10% below `v`."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


@dataclass(kw_only=True)
class LayerwiseScaling:
    """OpenELM's layer-wise scaling: layer i of N gets α_i = α_min + (α_max − α_min)·i/(N−1) (rounded to two
    decimals, as corenet's `np.linspace` + `round(v, 2)`), query width make_divisible(α_i·d, head_dim), so
    heads_i = that / head_dim, and SwiGLU hidden make_divisible(β_i·d, ffn_divisor). Early layers are narrow,
    late ones wide, for the same parameter budget."""

    alpha: list[float]
    """[α_min, α_max]: attention width multipliers of the first and last layer (OpenELM: [0.5, 1.0])."""
    beta: list[float]
    """[β_min, β_max]: SwiGLU hidden multipliers of the first and last layer (OpenELM: [0.5, 4.0])."""
    ffn_divisor: int = 256
    """The SwiGLU hidden width is rounded to a multiple of this (OpenELM's ffn_dim_divisor)."""
    head_multiple: int = 1
    """Heads per layer are a multiple of this (OpenELM rounds query widths to head_dim × num_gqa_groups:
    4 for its released models; there are no grouped KV heads here, so 1 rounds to whole heads)."""

    def __post_init__(self) -> None:
        for name in ("alpha", "beta"):
            pair = getattr(self, name)
            if len(pair) != 2 or min(pair) <= 0:
                raise ValueError(f"model.layerwise_scaling.{name} must be [min, max] > 0, got {pair}")
        if self.ffn_divisor <= 0 or self.head_multiple <= 0:
            raise ValueError("model.layerwise_scaling.ffn_divisor and head_multiple must be positive")

    @staticmethod
    def interpolate(pair: list[float], n_layers: int) -> list[float]:
        return [round(float(v), 2) for v in np.linspace(pair[0], pair[1], num=n_layers, dtype=float)]


@dataclass(kw_only=True)
class ModelConfig:
    """Shape of the transformer. Parameter counts follow from these alone (see `num_params`)."""

    d_model: int
    """Width of the residual stream."""
    n_layers: int
    """Number of transformer blocks."""
    n_heads: int
    """Attention heads; d_model must be divisible by it."""
    vocab_size: int | None = None
    """Tokenizer vocabulary (ids 0..vocab_size-1); the embedding is padded to `padded_vocab_size`. None: the
    tokenized data's manifest decides (the trainer fills it in before building)."""
    mlp_hidden: int | None = None
    """SwiGLU hidden width F (ff_proj maps d → 2F). None: 8/3·d rounded up to a multiple of 128. Note that
    OLMo's `mlp_hidden_size` is ff_proj's output, 2F: OLMo-7B's 22016 is F = 11008 here."""
    vocab_pad_multiple: int = 128
    """Pad the embedding rows up to a multiple of this (tensor-core friendly; OLMo pads 50,280 to 50,304)."""
    weight_tying: bool = False
    """Use the token embedding as the output projection (OLMo-1B: yes, OLMo-7B: no)."""
    rope_theta: float = 10_000.0
    """RoPE base."""
    layer_norm_eps: float = 1e-5
    """Epsilon of the norms."""
    norm: str = "layernorm"
    """layernorm: OLMo's non-parametric LayerNorm; rmsnorm: RMSNorm with a learned gain (OpenELM, Llama)."""
    layerwise_scaling: LayerwiseScaling | None = None
    """OpenELM's per-layer heads and SwiGLU widths (see `LayerwiseScaling`); n_heads then only fixes the head
    dimension (d_model / n_heads) and mlp_hidden is ignored. Not exportable to HF `OlmoForCausalLM`."""

    def __post_init__(self) -> None:
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"model.norm must be layernorm or rmsnorm, got {self.norm!r}")
        for name in ("d_model", "n_layers", "n_heads", "vocab_size"):
            if (getattr(self, name) or 1) <= 0:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})"
            )
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("model.d_model / model.n_heads must be even (RoPE rotates pairs of dimensions)")

    @property
    def hidden(self) -> int:
        """SwiGLU hidden width F."""
        return (
            self.mlp_hidden if self.mlp_hidden is not None else round_up(math.ceil(8 * self.d_model / 3), 128)
        )

    @property
    def padded_vocab_size(self) -> int:
        assert self.vocab_size is not None, "model.vocab_size is resolved from the data before use"
        return round_up(self.vocab_size, self.vocab_pad_multiple)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def layer_heads(self, i: int) -> int:
        """Attention heads of layer i (n_heads unless layer-wise scaled)."""
        ls = self.layerwise_scaling
        if ls is None:
            return self.n_heads
        alpha = LayerwiseScaling.interpolate(ls.alpha, self.n_layers)[i]
        return make_divisible(self.d_model * alpha, self.head_dim * ls.head_multiple) // self.head_dim

    def layer_hidden(self, i: int) -> int:
        """SwiGLU hidden width F of layer i (`hidden` unless layer-wise scaled)."""
        ls = self.layerwise_scaling
        if ls is None:
            return self.hidden
        beta = LayerwiseScaling.interpolate(ls.beta, self.n_layers)[i]
        return make_divisible(self.d_model * beta, ls.ffn_divisor)

    def num_params(self) -> int:
        """Exact parameter count, from the shapes (no model needed): OLMo-1B's shape gives 1,176,764,416."""
        d, total = self.d_model, 0
        for i in range(self.n_layers):
            a, f = self.layer_heads(i) * self.head_dim, self.layer_hidden(i)
            total += d * 3 * a + a * d + d * 2 * f + f * d  # att_proj, attn_out, ff_proj, ff_out
        if self.norm == "rmsnorm":
            total += (2 * self.n_layers + 1) * d  # gains: before attention, before the MLP, final
        embed = self.padded_vocab_size * d
        return total + embed * (1 if self.weight_tying else 2)

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: 6·N over the matmul parameters (the input embedding is a lookup, so an untied
        wte is excluded; a tied one is counted once, as the output projection) plus attention's 12·L·d·T
        (QKᵀ and AV, forward and backward), as OLMo-core and the PaLM paper count them."""
        n = self.num_params() - (0 if self.weight_tying else self.padded_vocab_size * self.d_model)
        if self.norm == "rmsnorm":
            n -= (2 * self.n_layers + 1) * self.d_model  # gains are elementwise, not matmuls
        width = sum(self.layer_heads(i) * self.head_dim for i in range(self.n_layers))
        return 6.0 * n + 12.0 * width * seq_len

    def build(self, device: str | torch.device | None = None) -> Transformer:
        """The model on `device` (use "meta" before FSDP; call `init_weights` after materialising)."""
        with torch.device(device or "cpu"):
            return Transformer(self)


def layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """OLMo's non-parametric LayerNorm: normalise, no learned gain or bias."""
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


class Norm(nn.Module):
    """The configured norm: OLMo's non-parametric LayerNorm (no parameters), or RMSNorm with a learned gain
    (initialised to ones), computed in fp32 as Llama and OpenELM do."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.eps = cfg.layer_norm_eps
        self.weight = nn.Parameter(torch.ones(cfg.d_model)) if cfg.norm == "rmsnorm" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight is None:
            return layer_norm(x, self.eps)
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).to(x.dtype)


def rope_tables(
    seq_len: int, head_dim: int, theta: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, shape (T, K), fp32: the frequencies for dimension pair i are θ^(-2i/K), laid out in
    halves (GPT-NeoX / OLMo `rotate_half` convention, not interleaved pairs)."""
    inv_freq_K2 = 1.0 / (
        theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    )
    pos_T = torch.arange(seq_len, device=device, dtype=torch.float32)
    freqs_TK2 = torch.outer(pos_T, inv_freq_K2)
    emb_TK = torch.cat([freqs_TK2, freqs_TK2], dim=-1)
    return emb_TK.cos(), emb_TK.sin()


def apply_rope(x_BHTK: torch.Tensor, cos_TK: torch.Tensor, sin_TK: torch.Tensor) -> torch.Tensor:
    """Rotate q or k by position, computed in fp32 (bf16 positions lose precision at long contexts)."""
    x = x_BHTK.float()
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x * cos_TK + rotated * sin_TK).to(x_BHTK.dtype)


class Attention(nn.Module):
    """Causal self-attention with A = heads × head_dim query width (A = D unless layer-wise scaled)."""

    def __init__(self, cfg: ModelConfig, layer_id: int) -> None:
        super().__init__()
        self.n_heads = cfg.layer_heads(layer_id)
        width = self.n_heads * cfg.head_dim
        self.att_proj = nn.Linear(cfg.d_model, 3 * width, bias=False)  # fused q, k, v
        self.attn_out = nn.Linear(width, cfg.d_model, bias=False)

    def forward(self, x_BTD: torch.Tensor, cos_TK: torch.Tensor, sin_TK: torch.Tensor) -> torch.Tensor:
        B, T, _ = x_BTD.shape
        q_BTA, k_BTA, v_BTA = self.att_proj(x_BTD).chunk(3, dim=-1)
        q_BHTK = q_BTA.view(B, T, self.n_heads, -1).transpose(1, 2)
        k_BHTK = k_BTA.view(B, T, self.n_heads, -1).transpose(1, 2)
        v_BHTK = v_BTA.view(B, T, self.n_heads, -1).transpose(1, 2)
        q_BHTK, k_BHTK = apply_rope(q_BHTK, cos_TK, sin_TK), apply_rope(k_BHTK, cos_TK, sin_TK)
        y_BHTK = F.scaled_dot_product_attention(q_BHTK, k_BHTK, v_BHTK, is_causal=True)
        return self.attn_out(y_BHTK.transpose(1, 2).reshape(B, T, -1))


class SwiGLU(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_id: int) -> None:
        super().__init__()
        hidden = cfg.layer_hidden(layer_id)
        self.ff_proj = nn.Linear(cfg.d_model, 2 * hidden, bias=False)
        self.ff_out = nn.Linear(hidden, cfg.d_model, bias=False)

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        x_BTF, gate_BTF = self.ff_proj(x_BTD).chunk(2, dim=-1)  # gate is the second half (OLMo / HF parity)
        return self.ff_out(F.silu(gate_BTF) * x_BTF)


class Block(nn.Module):
    """Pre-norm block: x + attn(ln(x)), then x + mlp(ln(x)). The unit FSDP shards."""

    def __init__(self, cfg: ModelConfig, layer_id: int) -> None:
        super().__init__()
        self.layer_id = layer_id
        self.attn_norm, self.ff_norm = Norm(cfg), Norm(cfg)
        self.attn = Attention(cfg, layer_id)
        self.mlp = SwiGLU(cfg, layer_id)

    def forward(self, x_BTD: torch.Tensor, cos_TK: torch.Tensor, sin_TK: torch.Tensor) -> torch.Tensor:
        x_BTD = x_BTD + self.attn(self.attn_norm(x_BTD), cos_TK, sin_TK)
        return x_BTD + self.mlp(self.ff_norm(x_BTD))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.padded_vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm = Norm(cfg)
        self.lm_head = None if cfg.weight_tying else nn.Linear(cfg.d_model, cfg.padded_vocab_size, bias=False)

    def forward(self, idx_BT: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) → logits (B, T, V) over the padded vocabulary."""
        T = idx_BT.shape[1]
        cos_TK, sin_TK = rope_tables(T, self.cfg.head_dim, self.cfg.rope_theta, idx_BT.device)
        x_BTD = self.wte(idx_BT)
        for block in self.blocks:
            x_BTD = block(x_BTD, cos_TK, sin_TK)
        x_BTD = self.norm(x_BTD)
        head = self.wte.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(x_BTD, head)

    def init_std(self) -> dict[str, float]:
        """Mitchell init: the std of every matmul weight by name (truncated at ±3σ); norm gains start at 1."""
        d = self.cfg.d_model
        stds = {"wte.weight": d**-0.5}
        if self.lm_head is not None:
            stds["lm_head.weight"] = d**-0.5
        for block in self.blocks:
            i, p = block.layer_id, f"blocks.{block.layer_id}."
            f = self.cfg.layer_hidden(i)
            stds[p + "attn.att_proj.weight"] = d**-0.5
            stds[p + "attn.attn_out.weight"] = (2 * d * (i + 1)) ** -0.5
            stds[p + "mlp.ff_proj.weight"] = d**-0.5
            stds[p + "mlp.ff_out.weight"] = (2 * f * (i + 1)) ** -0.5
        return stds

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """Fill every parameter from one generator seeded with `seed`, in name order. A sharded (DTensor)
        parameter is drawn whole on every rank and each rank keeps its shard, so the model is the same for
        any world size. Drawing happens on the parameter's device (a CPU generator for CPU, CUDA for CUDA)."""
        stds = self.init_std()
        for name, param in sorted(self.named_parameters()):
            local = param.to_local() if hasattr(param, "to_local") else param
            gen = torch.Generator(device=local.device).manual_seed(seed)
            seed += 1  # a fresh, order-fixed stream per parameter
            full = torch.empty(param.shape, dtype=torch.float32, device=local.device)
            if name.endswith("norm.weight"):
                full.fill_(1.0)  # RMSNorm gain
            else:
                std = stds[name]
                nn.init.trunc_normal_(full, std=std, a=-3 * std, b=3 * std, generator=gen)
            if local is param:
                param.copy_(full)
            else:
                from torch.distributed.tensor import distribute_tensor

                # every rank drew the same full tensor: keep the local shard, no scatter needed
                param.copy_(distribute_tensor(full, param.device_mesh, param.placements, src_data_rank=None))
