"""Reads what the report says about tokens and training: the tokenizer file, and a training run's metrics.

Everything here is plain JSON and YAML reading. The trainer (`train/`, torch) is never imported: the report must
open a run on a machine without torch, and `dolma_kit.analysis` stays light (docs/design.md). The one number
that needs the trainer's data layout, tokens trained per source, is computed by the caller that may import
`train` (the pipeline's report stage, `dolma-kit stats --run`) and passed in.

- `tokenizer_info(path)`: model type, vocabulary, merges and added tokens of a `tokenizer.json`;
- `read_run(run_dir)`: the run's `metrics.jsonl` records (train and eval, as written) and a few settings from its
  `config.yaml`. Train records beyond `MAX_TRAIN_RECORDS` are thinned evenly (first and last kept), so stats.json
  stays small for long runs; every record kept is a verbatim line of metrics.jsonl.
"""

from __future__ import annotations

import json
from typing import Any

from dolma_kit import storage
from dolma_kit.config import read_run_config
from dolma_kit.errors import DolmaKitError

METRICS_NAME = "metrics.jsonl"
MAX_TRAIN_RECORDS = 2000
_TRAIN_KEYS = ("step", "tokens_seen", "loss", "loss_by_source", "lr", "grad_norm", "tokens_per_s", "mfu")
_EVAL_KEYS = ("step", "eval_loss", "eval_ppl", "eval_by_source")


def tokenizer_info(path: str) -> dict[str, Any]:
    """What a `tokenizer.json` is: model type, ids in its vocabulary (added tokens included), merges, and the
    added tokens (special or not). Raises `DolmaKitError` for a file that is not a tokenizers JSON."""
    try:
        data = json.loads(storage.read_text(path))
        model = data["model"]
        vocab = model.get("vocab") or {}
        added = [
            {"id": int(t["id"]), "content": str(t["content"]), "special": bool(t.get("special"))}
            for t in data.get("added_tokens") or []
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DolmaKitError(f"{path}: not a tokenizer.json ({type(exc).__name__}: {exc})") from None
    ids = set(vocab.values() if isinstance(vocab, dict) else range(len(vocab))) | {t["id"] for t in added}
    return {
        "path": path,
        "model": str(model.get("type", "?")),
        "vocab_size": len(ids),
        "merges": len(model.get("merges") or []),
        "added_tokens": added,
    }


def _thin(records: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    if len(records) <= limit:
        return records
    step = (len(records) - 1) / (limit - 1)
    return [records[round(i * step)] for i in range(limit)]


def read_run(run_dir: str, tokens_by_source: dict[str, int] | None = None) -> dict[str, Any]:
    """The `training` block of stats.json for one run folder (needs `metrics.jsonl`; `config.yaml` optional).

    `tokens_by_source`: tokens trained per source (every token of each trained instance), when the caller could
    compute it; None leaves it out."""
    path = storage.join(run_dir, METRICS_NAME)
    if not storage.exists(path):
        raise DolmaKitError(f"--run {run_dir}: no {METRICS_NAME}; is this a training run folder?")
    train: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    for line_no, line in enumerate(storage.read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DolmaKitError(f"{path}:{line_no}: not JSON ({exc})") from None
        if record.get("kind") == "train":
            train.append({k: record.get(k) for k in _TRAIN_KEYS})
        elif record.get("kind") == "eval":
            evals.append({k: record.get(k) for k in _EVAL_KEYS})
    settings: dict[str, Any] = {}
    raw = read_run_config(run_dir, required=False)
    if raw is not None:
        model, data, trainer, optim = (raw.get(k) or {} for k in ("model", "data", "trainer", "optim"))
        settings = {
            "d_model": model.get("d_model"),
            "n_layers": model.get("n_layers"),
            "n_heads": model.get("n_heads"),
            "vocab_size": model.get("vocab_size"),
            "seq_len": data.get("seq_len"),
            "mixture": data.get("mixture"),
            "global_batch": trainer.get("global_batch"),
            "max_steps": trainer.get("max_steps"),
            "peak_lr": optim.get("lr"),
            "warmup_steps": optim.get("warmup_steps"),
        }
    return {
        "run": run_dir,
        "metrics": path,
        "settings": settings,
        "train_records": len(train),
        "thinned": len(train) > MAX_TRAIN_RECORDS,
        "train": _thin(train, MAX_TRAIN_RECORDS),
        "eval": evals,
        "tokens_by_source": tokens_by_source,
    }
