"""In-loop downstream evaluation: multiple-choice items scored by rank classification, as OLMo's in-loop
evaluators and Catwalk do.

Each option is scored by the model's log-likelihood of the option's tokens given the context; the item is
right when the best-scoring option is the labelled one. How scores are normalised is a property of the task:
- `none`: the summed log-likelihood (short options are favoured);
- `token`: the mean per option token;
- `char`: the sum divided by the option's length in characters (OLMo's "acc_per_char", tokenizer-neutral);
- `pmi`: log p(option | context) − log p(option | unconditional context): how much the context raised the
  option's probability (Catwalk's "unconditional" normalisation; the unconditional context is the task's
  `unconditional_context`, e.g. "Answer:", or nothing but the EOS token).

Task files are JSON Lines, one item a line: `{"context": "...", "choices": ["...", "..."], "label": 1}`. Options
are scored as the text that follows the context, so they carry their own leading space (" Paris"). Every
context starts after an EOS token, which is how documents start in the training data.

Under FSDP every rank must run the same number of forwards: items are split round-robin over ranks and each
rank pads its requests to the same number of batches; correct counts are summed over ranks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from train.tasks import NORMALIZATIONS, Item, TaskConfig, load_task

__all__ = [
    "NORMALIZATIONS",
    "Item",
    "TaskConfig",
    "choose",
    "continuation_logprobs",
    "evaluate_tasks",
    "load_task",
]


@torch.no_grad()
def continuation_logprobs(
    model: nn.Module,
    requests: list[tuple[list[int], list[int]]],
    *,
    seq_len: int,
    batch_size: int,
    n_batches: int,
    device: torch.device,
    vocab_size: int,
    pad_id: int,
) -> list[float]:
    """Sum of log p(continuation | context) for each (context, continuation) request, in exactly `n_batches`
    forwards (padding with copies when this rank has fewer requests: FSDP collectives must line up).
    Sequences longer than seq_len lose context tokens from the left."""
    out: list[float] = []
    for b in range(n_batches):
        chunk = requests[b * batch_size : (b + 1) * batch_size]
        real = len(chunk)
        chunk = chunk or [([pad_id], [pad_id])]
        rows = [(ctx + cont)[-seq_len:] for ctx, cont in chunk]
        width = max(len(r) for r in rows)
        idx = torch.full((len(rows), width), pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            idx[i, : len(r)] = torch.tensor(r)
        logp_BTV = F.log_softmax(model(idx.to(device))[..., :vocab_size].float(), dim=-1)
        for i, (row, (_, cont)) in enumerate(zip(rows[:real], chunk[:real], strict=True)):
            n = min(len(cont), len(row) - 1)
            targets = torch.tensor(row[len(row) - n :], device=device)
            positions = torch.arange(len(row) - n - 1, len(row) - 1, device=device)
            out.append(float(logp_BTV[i, positions, targets].sum()))
    return out


def choose(cfg: TaskConfig, item: Item, cond: list[float], uncond: list[float] | None) -> int:
    """The index of the best option under the task's normalisation."""
    if cfg.normalization == "token":
        scores = [s / max(1, len(c)) for s, c in zip(cond, item.choices, strict=True)]
    elif cfg.normalization == "char":
        scores = [s / max(1, n) for s, n in zip(cond, item.chars, strict=True)]
    elif cfg.normalization == "pmi":
        assert uncond is not None
        scores = [a - b for a, b in zip(cond, uncond, strict=True)]
    else:
        scores = cond
    return max(range(len(scores)), key=lambda i: scores[i])


def evaluate_tasks(
    model: nn.Module,
    tasks: list[tuple[TaskConfig, list[Item], list[int]]],
    *,
    rank: int,
    world_size: int,
    seq_len: int,
    batch_size: int,
    device: torch.device,
    vocab_size: int,
    pad_id: int,
) -> dict[str, dict[str, float]]:
    """Accuracy per task over all ranks: {name: {"acc", "correct", "n"}}. `tasks` holds (config, items, the
    tokenized unconditional context). Collective: call on every rank."""
    from train.parallelize import all_reduce_sum

    model.eval()
    stats = torch.zeros(2 * len(tasks), dtype=torch.float64, device=device)
    for t, (cfg, items, uncond_ctx) in enumerate(tasks):
        per_rank = [items[r::world_size] for r in range(world_size)]
        requests = [
            [(it.context, c) for it in mine for c in it.choices]
            + ([(uncond_ctx, c) for it in mine for c in it.choices] if cfg.normalization == "pmi" else [])
            for mine in per_rank
        ]
        n_batches = max(math.ceil(len(r) / batch_size) for r in requests)
        scores = continuation_logprobs(
            model,
            requests[rank],
            seq_len=seq_len,
            batch_size=batch_size,
            n_batches=n_batches,
            device=device,
            vocab_size=vocab_size,
            pad_id=pad_id,
        )
        mine, pos = per_rank[rank], 0
        n_cond = sum(len(it.choices) for it in mine)
        for it in mine:
            k = len(it.choices)
            cond = scores[pos : pos + k]
            uncond = scores[n_cond + pos : n_cond + pos + k] if cfg.normalization == "pmi" else None
            stats[2 * t] += float(choose(cfg, it, cond, uncond) == it.label)
            pos += k
        stats[2 * t + 1] += len(mine)
    all_reduce_sum(stats)
    return {
        cfg.name: {
            "acc": float(stats[2 * t] / stats[2 * t + 1]),
            "correct": int(stats[2 * t]),
            "n": int(stats[2 * t + 1]),
        }
        for t, (cfg, _, _) in enumerate(tasks)
    }
