"""The model's shape and its exact counts (parameters, FLOPs), torch-free.

`train/config.py` reads it, and through it every pipeline plan, `--dry-run` and `trace`: none of them needs
torch (about 1.5 s to import). The transformer itself, and `build_model`, are in train/model.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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
    max_sequence_length: int | None = None
    """The context length the model declares (OLMo's key): `export-hf` writes it as max_position_embeddings
    and model_max_length, which HF generation and lm-eval truncate to. None: the larger of data.seq_len and
    2048 (OLMo's context; RoPE has no learned positions, so a tiny model trained at seq 32 is not capped at 32).
    It never changes training, which always uses data.seq_len."""
    layerwise_scaling: LayerwiseScaling | None = None
    """OpenELM's per-layer heads and SwiGLU widths (see `LayerwiseScaling`); n_heads then only fixes the head
    dimension (d_model / n_heads) and mlp_hidden is ignored. Not exportable to HF `OlmoForCausalLM`."""

    def __post_init__(self) -> None:
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"model.norm must be layernorm or rmsnorm, got {self.norm!r}")
        for name in ("d_model", "n_layers", "n_heads", "vocab_size"):
            if (getattr(self, name) or 1) <= 0:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.max_sequence_length is not None and self.max_sequence_length <= 0:
            raise ValueError(f"model.max_sequence_length must be positive, got {self.max_sequence_length}")
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
