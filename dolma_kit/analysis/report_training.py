"""The report's training section: how the model trained on this corpus, per source, from metrics.jsonl.

A corpus report that stops at the tokens cannot answer the question the corpus was built for: did the mix
train well, and which source is hard? The section shows the loss curve (train loss per logged step, held-out
loss per evaluation), loss per source, held-out loss and perplexity per source, tokens per source in the data
and as trained, the learning rate and throughput. Every number is a value of a metrics.jsonl record (kept
verbatim in stats.json's `training`), or a median of such values, or the manifest's token counts.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

from dolma_kit.analysis import plots
from dolma_kit.analysis.report_parts import empty, esc, img, num, pct, table


def _last_value(records: list[dict[str, Any]], source: str) -> float | None:
    """The newest train record's loss for `source` (a batch may hold no target token of a source: null)."""
    for r in reversed(records):
        value = (r.get("loss_by_source") or {}).get(source)
        if value is not None:
            return float(value)
    return None


def _series(records: list[dict[str, Any]], key: str) -> plots.Series:
    kept = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    return [s for s, _ in kept], [v for _, v in kept]


def median_tokens_per_s(records: list[dict[str, Any]]) -> float | None:
    values = [r["tokens_per_s"] for r in records if r.get("tokens_per_s") is not None]
    return statistics.median(values) if values else None


def _settings(run: dict[str, Any]) -> str:
    if not run["settings"]:
        return ""
    s = {k: "?" if v is None else num(v) if isinstance(v, int) else v for k, v in run["settings"].items()}
    shape = (
        f"d_model {s['d_model']}, {s['n_layers']} layers, {s['n_heads']} heads, vocabulary {s['vocab_size']}"
    )
    batch = f"{s['global_batch']} × {s['seq_len']} tokens a step, {s['max_steps']} steps scheduled"
    lr = f"peak LR {s['peak_lr']}, {s['warmup_steps']} warmup steps"
    mixture = f"; mixture {s['mixture']}" if run["settings"].get("mixture") else ""
    return f"Model: {shape}. Batch: {batch}; {lr}{mixture}."


def _key_numbers(run: dict[str, Any]) -> str:
    train, evals = run["train"], run["eval"]
    rows: list[list[object]] = []
    if train:
        first, last = train[0], train[-1]
        rows += [
            ["first logged train loss", first["loss"], f"step {first['step']:,}"],
            ["last train loss", last["loss"], f"step {last['step']:,}"],
            ["tokens seen", last["tokens_seen"] or 0, f"step {last['step']:,}"],
            ["learning rate (last)", last["lr"], f"step {last['step']:,}"],
        ]
        median = median_tokens_per_s(train)
        if median is not None:
            rows.append(["tokens / s (median of logged steps)", round(median, 1), f"{len(train):,} records"])
    if evals:
        e = evals[-1]
        rows += [
            ["held-out loss (last evaluation)", e["eval_loss"], f"step {e['step']:,}"],
            ["held-out perplexity", e["eval_ppl"], f"step {e['step']:,}"],
        ]
    return table(["", "value", "at"], rows)


def _per_source(run: dict[str, Any], tokens: dict[str, Any]) -> str:
    train, evals = run["train"], run["eval"]
    last_eval = (evals[-1].get("eval_by_source") or {}) if evals else {}
    data = tokens.get("per_source") or {}
    trained = run.get("tokens_by_source") or {}
    names = sorted(
        set(data) | set(trained) | set(last_eval) | {s for r in train for s in r.get("loss_by_source") or {}}
    )
    total_trained = sum(trained.values())
    rows = []
    for name in names:
        d, e = data.get(name, {}), last_eval.get(name, {})
        loss = _last_value(train, name)
        rows.append(
            [
                name,
                d.get("tokens", ""),
                trained.get(name, ""),
                pct(trained[name], total_trained) if name in trained else "",
                round(trained[name] / d["tokens"], 3) if name in trained and d.get("tokens") else "",
                loss if loss is not None else "",
                _blank_if_none(e.get("loss")),
                _blank_if_none(e.get("ppl")),
                e.get("tokens", ""),
            ]
        )
    header = [
        "source",
        "tokens in data",
        "tokens trained",
        "share trained",
        "epochs",
        "train loss (last)",
        "held-out loss",
        "held-out ppl",
        "held-out tokens",
    ]
    note = (
        "Tokens in data: the tokenized manifest (up-sampled copies included). Tokens trained: every token of each "
        "training instance in steps 1 … last, per source (from the run's data order). Train loss: the newest "
        "logged value for the source (a batch may have none of it). Held-out: the last evaluation."
    )
    if not trained:
        note += " Tokens trained per source were not computed (the trainer's data order could not be read)."
    return f'<p class="meta">{esc(note)}</p>' + table(header, rows)


def _number(value: float | None) -> float:
    return math.nan if value is None else value


def _blank_if_none(value: float | None) -> float | str:
    return "" if value is None else value


def _evaluations(run: dict[str, Any]) -> str:
    evals = run["eval"]
    if not evals:
        return empty("No evaluation records (trainer.eval_every = 0 evaluates only after max_steps).")
    names = sorted({s for e in evals for s in e.get("eval_by_source") or {}})
    rows = [
        [
            e["step"],
            e["eval_loss"],
            e["eval_ppl"],
            *(_blank_if_none((e.get("eval_by_source") or {}).get(s, {}).get("loss")) for s in names),
        ]
        for e in evals
    ]
    return table(["step", "held-out loss", "perplexity", *(f"{s} loss" for s in names)], rows)


#: records averaged in a source's train-loss line (its newest ones that held the source)
RUNNING_RECORDS = 10


def source_loss(train: list[dict[str, Any]], source: str, window: int = RUNNING_RECORDS) -> plots.Series:
    """`source`'s train loss as a running mean of its last `window` records that held it, at those steps only.

    A logged batch may hold no target token of a source (its loss is null): plotted as NaN the line broke into
    dots wherever a small source was missing, and one batch's loss of a small source is noisy anyway.
    """
    steps: list[float] = []
    values: list[float] = []
    recent: deque[float] = deque(maxlen=window)
    for r in train:
        value = (r.get("loss_by_source") or {}).get(source)
        if value is None or not math.isfinite(value):
            continue
        recent.append(value)
        steps.append(r["step"])
        values.append(sum(recent) / len(recent))
    return steps, values


def training(data: dict[str, Any]) -> str:
    run = data.get("training")
    if not run:
        return empty(
            "No training run. Pass `dolma-kit stats --run RUN` (a run folder with metrics.jsonl), or put the "
            "report stage after a train stage."
        )
    train, evals = run["train"], run["eval"]
    names = sorted({s for r in train for s in r.get("loss_by_source") or {}})
    by_source = {name: source_loss(train, name) for name in names}
    held_out_by_source: dict[str, plots.Series] = {}
    for name in sorted({s for e in evals for s in e.get("eval_by_source") or {}}):
        held_out_by_source[name] = (
            [e["step"] for e in evals],
            # a source with no held-out tokens has loss null (train/loop.py): a gap, not a point
            [_number((e.get("eval_by_source") or {}).get(name, {}).get("loss")) for e in evals],
        )
    thinned = (
        f" {run['train_records']:,} train records, {len(train):,} of them kept (evenly thinned)."
        if run["thinned"]
        else ""
    )
    meta = (
        f"Run <code>{esc(run['run'])}</code>: {num(len(train))} train and {num(len(evals))} evaluation records "
        f"from <code>metrics.jsonl</code>.{esc(thinned)} {esc(_settings(run))}"
    )
    return (
        f'<p class="meta">{meta}</p>'
        + _key_numbers(run)
        + img(
            plots.training_loss(_series(train, "loss"), _series(evals, "eval_loss"), by_source),
            "loss curves",
        )
        + img(
            plots.training_progress(held_out_by_source, _series(train, "lr"), _series(train, "tokens_per_s")),
            "held-out loss by source, learning rate, tokens per second",
        )
        + "<h3>Per source</h3>"
        + _per_source(run, data["tokens"])
        + "<h3>Evaluations</h3>"
        + _evaluations(run)
    )
