"""Memorization of training data (LLM360's Analysis360): how much of a training sequence does the model
reproduce, greedily, from its beginning?

For M training instances sampled (seeded) from those trained on in steps 1 … N (from `data_order.npy`; steps
skipped by spike recovery and held-out instances never count), the first `prompt` tokens are fed to the
checkpoint of step N and `continuation` tokens are decoded greedily. Each sequence scores
- `exact_match`: the fraction of continuation positions where the decoded token equals the training token
  (Analysis360's memorization score), and
- `full_match`: whether all of them do (an extractable sequence, in Carlini et al.'s sense).

Scores are aggregated by *data chunk* (equal-width buckets of the step at which the sequence was first seen,
so recency and repetition effects show up) and by *source* (the source of most of the continuation's
tokens), written as JSON and a PNG plot.

Decoding re-runs the whole prefix at every token (no KV cache): fine for the short windows memorization
uses, and it keeps this module independent of the model's internals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dolma_kit.config import ConfigError


@torch.no_grad()
def greedy_continue(model: torch.nn.Module, prompt_BP: torch.Tensor, n: int, vocab_size: int) -> torch.Tensor:
    """(B, n) greedy continuation of each prompt (argmax over the real vocabulary, padded rows excluded)."""
    seq = prompt_BP
    for _ in range(n):
        next_B = model(seq)[:, -1, :vocab_size].argmax(-1)
        seq = torch.cat([seq, next_B[:, None]], dim=1)
    return seq[:, prompt_BP.shape[1] :]


def first_seen(
    order: np.ndarray, global_batch: int, skipped: set[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(instance ids, first step each was trained on, times trained on) over `order` (steps 1 … len/G)."""
    steps = np.arange(len(order)) // global_batch + 1
    keep = ~np.isin(steps, sorted(skipped)) if skipped else np.ones(len(order), dtype=bool)
    ids, first, counts = np.unique(np.asarray(order)[keep], return_index=True, return_counts=True)
    return ids, steps[keep][first], counts


def _aggregate(groups: np.ndarray, exact: np.ndarray, full: np.ndarray, labels: list[str]) -> list[dict]:
    out = []
    for g, label in enumerate(labels):
        sel = groups == g
        if sel.any():
            out.append(
                {
                    "group": label,
                    "n": int(sel.sum()),
                    "exact_match": float(exact[sel].mean()),
                    "full_match": float(full[sel].mean()),
                }
            )
    return out


def memorization(
    run_dir: str | Path,
    *,
    step: int,
    prompt: int = 32,
    continuation: int = 32,
    samples: int = 100,
    seed: int = 0,
    chunks: int = 10,
    batch_size: int = 32,
    device: str = "cpu",
) -> dict[str, Any]:
    """Score `samples` training sequences seen up to `step` with the checkpoint of `step` (see module doc)."""
    from train.trace import RunTrace
    from train.weights import load_model

    cfg, model, step = load_model(run_dir, step, device)
    if prompt < 1 or continuation < 1 or prompt + continuation > cfg.data.seq_len:
        raise ConfigError(
            f"--prompt {prompt} + --continuation {continuation} must fit in one instance "
            f"(data.seq_len = {cfg.data.seq_len}), each at least 1"
        )
    rt = RunTrace(run_dir)
    ids, first, counts = first_seen(rt.order[: step * rt.global_batch], rt.global_batch, rt.skipped)
    if len(ids) == 0:
        raise ConfigError(f"no instance was trained on in steps 1 … {step}")
    pick = np.sort(np.random.default_rng(seed).choice(len(ids), size=min(samples, len(ids)), replace=False))
    ids, first, counts = ids[pick], first[pick], counts[pick]
    tokens, sources = rt.data.batch(ids)
    vocab = int(cfg.model.vocab_size or 0)
    generated = []
    for b0 in range(0, len(ids), batch_size):
        prompt_BP = torch.from_numpy(tokens[b0 : b0 + batch_size, :prompt]).to(device)
        generated.append(greedy_continue(model, prompt_BP, continuation, vocab).cpu().numpy())
    target = tokens[:, prompt : prompt + continuation]
    match = np.concatenate(generated) == target
    exact, full = match.mean(axis=1), match.all(axis=1)
    cont_src = sources[:, prompt : prompt + continuation]
    owner = np.array([np.bincount(row, minlength=len(rt.data.sources)).argmax() for row in cont_src])
    edges = np.linspace(0, step, chunks + 1)
    bucket = np.clip(np.searchsorted(edges, first, side="left") - 1, 0, chunks - 1)
    chunk_labels = [f"{int(edges[c]) + 1}-{int(edges[c + 1])}" for c in range(chunks)]
    return {
        "run": str(run_dir),
        "step": step,
        "prompt": prompt,
        "continuation": continuation,
        "samples": len(ids),
        "seed": seed,
        "exact_match": float(exact.mean()),
        "full_match": float(full.mean()),
        "by_chunk": _aggregate(bucket, exact, full, chunk_labels),
        "by_source": _aggregate(owner, exact, full, rt.data.sources),
        "sequences": [
            {
                "instance": int(i),
                "first_step": int(f),
                "times_seen": int(c),
                "source": rt.data.sources[int(o)],
                "exact_match": float(e),
                "full_match": bool(m),
            }
            for i, f, c, o, e, m in zip(ids, first, counts, owner, exact, full, strict=True)
        ],
    }


def write_report(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """memorization-step<N>.json and .png (exact and full match by data chunk and by source)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"memorization-step{result['step']}"
    json_path, png_path = stem.with_suffix(".json"), stem.with_suffix(".png")
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, key, title in ((axes[0], "by_chunk", "first seen at steps"), (axes[1], "by_source", "source")):
        rows = result[key]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["exact_match"] for r in rows], 0.4, label="exact match (token fraction)")
        ax.bar(x + 0.2, [r["full_match"] for r in rows], 0.4, label="full match")
        ax.set_xticks(x, [r["group"] for r in rows], rotation=45 if key == "by_chunk" else 0, ha="right")
        ax.set_ylim(0, 1)
        ax.set_xlabel(title)
        ax.set_title(f"{title} (n per bar: {', '.join(str(r['n']) for r in rows)})", fontsize=8)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"memorization at step {result['step']}: {result['samples']} sequences, prompt {result['prompt']}, "
        f"continuation {result['continuation']}; mean exact {result['exact_match']:.3f}"
    )
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return json_path, png_path
