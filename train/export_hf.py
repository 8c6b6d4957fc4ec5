"""Export a run's checkpoint as a Hugging Face `transformers` checkpoint of `OlmoForCausalLM`.

Written without transformers or safetensors installed (neither is a dependency): `config.json` and
`generation_config.json` are plain JSON in the fields `OlmoConfig` reads, and the weights are written in the
safetensors format directly (an 8-byte little-endian header length, a JSON header of dtype / shape / byte
offsets, then the raw little-endian tensor bytes), sharded at 5 GB with a `model.safetensors.index.json` as
`save_pretrained` does. The tokenizer is the one that made the training data (the manifest's, sha256
checked), saved as `tokenizer.json` with `tokenizer_config.json` naming its EOS and PAD tokens.

Weight mapping (checked by a logits-parity test): q, k, v are att_proj's row thirds; up and gate are ff_proj's
row halves in that order (our SwiGLU gates with the second half, as OLMo does); the embedding keeps its
padded rows (`vocab_size` in config.json is the padded size, as OLMo's own HF checkpoints have 50,304).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch

from dolma_kit.config import ConfigError
from train.config import TrainConfig
from train.model import Transformer

SHARD_BYTES = 5 * 10**9
_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def check_exportable(cfg: TrainConfig) -> None:
    """OlmoForCausalLM has non-parametric LayerNorm (eps 1e-5) and the same heads and width in every layer."""
    m = cfg.model
    if m.layerwise_scaling is not None:
        raise ConfigError(
            "this model uses layer-wise scaling (per-layer heads and FFN widths), which OlmoForCausalLM "
            "cannot express: export-hf supports uniform OLMo models only"
        )
    if m.norm != "layernorm":
        raise ConfigError(
            f"model.norm={m.norm} has learned gains; OlmoForCausalLM's LayerNorm has none: export-hf supports "
            "model.norm=layernorm only"
        )
    if m.layer_norm_eps != 1e-5:
        raise ConfigError(
            f"OlmoForCausalLM's LayerNorm eps is fixed at 1e-5, this model has {m.layer_norm_eps}"
        )


def hf_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """Our parameter names and layouts → OlmoForCausalLM's (contiguous CPU tensors)."""
    sd = {"model.embed_tokens.weight": model.wte.weight}
    for i, b in enumerate(model.blocks):
        p = f"model.layers.{i}."
        q, k, v = b.attn.att_proj.weight.chunk(3, 0)
        up, gate = b.mlp.ff_proj.weight.chunk(2, 0)
        sd |= {
            p + "self_attn.q_proj.weight": q,
            p + "self_attn.k_proj.weight": k,
            p + "self_attn.v_proj.weight": v,
            p + "self_attn.o_proj.weight": b.attn.attn_out.weight,
            p + "mlp.up_proj.weight": up,
            p + "mlp.gate_proj.weight": gate,
            p + "mlp.down_proj.weight": b.mlp.ff_out.weight,
        }
    if model.lm_head is not None:
        sd["lm_head.weight"] = model.lm_head.weight
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """One safetensors file (format: https://github.com/huggingface/safetensors#format)."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        header[name] = {
            "dtype": _DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8-byte alignment with spaces
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for t in tensors.values():
            fh.write(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def save_weights(out: Path, sd: dict[str, torch.Tensor], dtype: torch.dtype) -> list[str]:
    """model.safetensors, or model-0000i-of-0000n.safetensors + index past SHARD_BYTES. Returns file names."""
    sd = {k: v.to(dtype).contiguous() for k, v in sd.items()}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in sd.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    meta = {"format": "pt"}
    if len(shards) == 1:
        write_safetensors(out / "model.safetensors", shards[0], meta)
        return ["model.safetensors"]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards, strict=True):
        write_safetensors(out / name, shard, meta)
        weight_map |= dict.fromkeys(shard, name)
    total = sum(t.numel() * t.element_size() for t in sd.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return [*names, "model.safetensors.index.json"]


def max_positions(cfg: TrainConfig) -> int:
    """max_position_embeddings / model_max_length: model.max_sequence_length, or max(seq_len, 2048). Writing
    the training seq_len (32 for the tiny config) made HF generation and lm-eval truncate every prompt."""
    declared = cfg.model.max_sequence_length  # TrainConfig checks it is ≥ data.seq_len
    return max(cfg.data.seq_len, 2048) if declared is None else declared


def hf_config(cfg: TrainConfig, eos_id: int, pad_id: int | None, dtype: str) -> dict[str, Any]:
    m = cfg.model
    return {
        "architectures": ["OlmoForCausalLM"],
        "model_type": "olmo",
        "vocab_size": m.padded_vocab_size,
        "hidden_size": m.d_model,
        "intermediate_size": m.hidden,
        "num_hidden_layers": m.n_layers,
        "num_attention_heads": m.n_heads,
        "num_key_value_heads": m.n_heads,
        "hidden_act": "silu",
        "max_position_embeddings": max_positions(cfg),
        "initializer_range": 0.02,
        "use_cache": True,
        "pad_token_id": eos_id if pad_id is None else pad_id,
        "bos_token_id": None,
        "eos_token_id": eos_id,
        "tie_word_embeddings": m.weight_tying,
        "rope_theta": m.rope_theta,  # transformers 4.x
        "rope_parameters": {"rope_type": "default", "rope_theta": m.rope_theta},  # 5.x
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "clip_qkv": None,
        "torch_dtype": dtype,
        "dtype": dtype,
    }


def save_tokenizer(out: Path, loaded: Any, max_length: int) -> list[str]:
    """tokenizer.json + the two small files `AutoTokenizer` reads (PreTrainedTokenizerFast)."""
    tok = loaded.tokenizer
    (out / "tokenizer.json").write_text(tok.to_str())
    eos = tok.id_to_token(loaded.eos_id)
    pad = eos if loaded.pad_id is None else tok.id_to_token(loaded.pad_id)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": eos,
        "pad_token": pad,
        "bos_token": None,
        "unk_token": None,
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(
        json.dumps({"eos_token": eos, "pad_token": pad}, indent=2) + "\n"
    )
    return ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def export_hf(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    step: int | None = None,
    dtype: str = "float32",
    tokenizer: str | None = None,
) -> dict[str, Any]:
    """Write the run's checkpoint (`step`, default the newest) to OUT as an OlmoForCausalLM checkpoint that
    `from_pretrained(OUT)` loads offline. Returns what was written."""
    from train.data import data_tokenizer
    from train.weights import load_model, load_run_config

    if dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"--dtype must be float32, bfloat16 or float16, got {dtype}")
    check_exportable(load_run_config(run_dir))  # before reading any weights
    cfg, model, step = load_model(run_dir, step)
    if tokenizer is not None:
        cfg.data.tokenizer = tokenizer
    data = cfg.data.build()
    loaded = data_tokenizer(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = save_weights(out, hf_state_dict(model), getattr(torch, dtype))
    (out / "config.json").write_text(
        json.dumps(hf_config(cfg, data.eos_id, loaded.pad_id, dtype), indent=2) + "\n"
    )
    pad = data.eos_id if loaded.pad_id is None else loaded.pad_id
    generation = {"eos_token_id": data.eos_id, "pad_token_id": pad, "do_sample": False}
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    files += ["config.json", "generation_config.json", *save_tokenizer(out, loaded, max_positions(cfg))]
    return {"step": step, "out": str(out), "files": files, "parameters": cfg.model.num_params()}
