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

import torch
import torch.nn.functional as F
from torch import nn

from train.model_config import LayerwiseScaling, ModelConfig, make_divisible, round_up

__all__ = ["LayerwiseScaling", "ModelConfig", "Transformer", "build_model", "make_divisible", "round_up"]


def build_model(cfg: ModelConfig, device: str | torch.device | None = None) -> Transformer:
    """The model on `device` (use "meta" before FSDP; call `init_weights` after materialising)."""
    with torch.device(device or "cpu"):
        return Transformer(cfg)


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

        self.checkpoint_activations = False
        """Recompute this block's activations in backward (trainer.activation_checkpointing)."""

    def forward(self, x_BTD: torch.Tensor, cos_TK: torch.Tensor, sin_TK: torch.Tensor) -> torch.Tensor:
        if self.checkpoint_activations and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(self._forward, x_BTD, cos_TK, sin_TK, use_reentrant=False)
        return self._forward(x_BTD, cos_TK, sin_TK)

    def _forward(self, x_BTD: torch.Tensor, cos_TK: torch.Tensor, sin_TK: torch.Tensor) -> torch.Tensor:
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

    def forward(
        self, idx_BT: torch.Tensor, targets_BT: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, T) → logits (B, T, V) over the padded vocabulary; with `targets_BT` (next-token ids,
        -100 where there is none) → (summed loss, (B, T) fp32 token losses) through the fused output layer
        and cross-entropy (train/loss.py), which never materialises the logits. Inside forward, so FSDP has
        the head's weight unsharded."""
        T = idx_BT.shape[1]
        cos_TK, sin_TK = rope_tables(T, self.cfg.head_dim, self.cfg.rope_theta, idx_BT.device)
        x_BTD = self.wte(idx_BT)
        for block in self.blocks:
            x_BTD = block(x_BTD, cos_TK, sin_TK)
        x_BTD = self.norm(x_BTD)
        head = self.wte.weight if self.lm_head is None else self.lm_head.weight
        if targets_BT is None:
            return F.linear(x_BTD, head)
        from train.loss import linear_cross_entropy

        B, _, D = x_BTD.shape
        loss_sum, losses_N = linear_cross_entropy(x_BTD.reshape(B * T, D), head, targets_BT.reshape(-1))
        return loss_sum, losses_N.view(B, T)

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
