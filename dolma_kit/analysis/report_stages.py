"""The report's stage section: what each stage marked, removed and wrote, as a table, a chart and waterfalls.

Two kinds of stage touch documents, and the page keeps them apart, because a reader otherwise sees "removed 0"
for paragraph dedup or "removed 326" for exact dedup and draws the wrong conclusion either way:
- marking stages (tag, dedup, decontaminate) remove nothing: they flag documents and mark spans, and `mix` later
  drops or edits on those marks. Their row shows documents flagged and spans marked; removed is "–";
- `mix` removes (by filter rule) and writes; an up-sampled stream writes more documents than it kept, and the
  next stage (tokenize) reads what was written, so the table shows written beside kept and checks the hand-over.
Rows without documents (train-tokenizer, train) come from stats.json's `tokenizer` and `training` blocks.
"""

from __future__ import annotations

from typing import Any

from dolma_kit.analysis import plots
from dolma_kit.analysis.report_parts import Raw, empty, esc, img, num, table
from dolma_kit.analysis.stages import marks as marks_of

HEADER = [
    "stage",
    "scope",
    "does",
    "in",
    "flagged",
    "spans",
    "removed",
    "rejected",
    "kept",
    "written",
    "MB written",
    "adds up",
    "details",
]


def _check(ok: bool) -> Raw:
    return Raw('<span class="ok">✓</span>' if ok else '<span class="bad">✗ does not add up</span>')


def _details(r: dict[str, Any], tokens: dict[str, Any]) -> str:
    parts = []
    if r["action"] == "marks":
        if r.get("flagged") is not None and r.get("flagged_what"):
            parts.append(f"flagged: {r['flagged_what']}")
        if r.get("spans") is not None:
            parts.append(f"marked: {r.get('spans_what', 'spans')}")
        if r["removed"] and r["removed"] == r.get("flagged"):
            parts.append("mix can drop on this flag")
    else:
        parts += [f"{k}: {v:,}" for k, v in r["removed_by"].items() if v]
        if r.get("spans") is not None:  # "1,204 spans replaced", not "spans = spans replaced"
            what = r.get("spans_what") or "spans"
            parts.append(f"{r['spans']:,} {what}" if "span" in what else f"{r['spans']:,} spans: {what}")
    if r.get("written") is not None and r["written"] != r["kept"]:
        parts.append(
            f"written ×{r['written'] / max(r['kept'], 1):.3g} (up-sampling: +{r['written'] - r['kept']:,})"
        )
    if r["action"] == "tokenizes" and "tokens" in r["extra"]:
        per = tokens.get("per_source") or {}
        by_source = ", ".join(f"{s} {v['tokens']:,}" for s, v in per.items())
        parts.append(f"{r['extra']['tokens']:,} tokens" + (f": {by_source}" if per else ""))
    return "; ".join(p for p in parts if p)


def _row(r: dict[str, Any], tokens: dict[str, Any]) -> list[object]:
    marks = r["action"] == "marks"
    blank = ""
    return [
        r["stage"],
        r["scope"],
        r["action"],
        r["documents_in"],
        r["flagged"] if r.get("flagged") is not None else blank,
        r["spans"] if r.get("spans") is not None else blank,
        "–" if marks else r["removed"],
        r["rejected"],
        r["passed_on"],
        r["written"] if r.get("written") is not None else blank,
        round(r["written_bytes"] / 1e6, 3) if r.get("written_bytes") is not None else blank,
        _check(r["balanced"]),
        _details(r, tokens),
    ]


def _tokenizer_row(tok: dict[str, Any]) -> list[object]:
    special = sum(t["special"] for t in tok["added_tokens"])
    details = (
        f"{tok['model']}: {tok['vocab_size']:,} ids, {tok['merges']:,} merges, "
        f"{len(tok['added_tokens'])} added tokens ({special} special)"
    )
    return ["train-tokenizer", tok["path"].rsplit("/", 1)[-1], "builds", *[""] * 9, details]


def _train_row(run: dict[str, Any]) -> list[object]:
    last = run["train"][-1] if run["train"] else {}
    details = f"{last.get('step', 0):,} steps, {last.get('tokens_seen') or 0:,} tokens"
    if last.get("loss") is not None:
        details += f", loss {num(run['train'][0]['loss'])} → {num(last['loss'])}"
    if run["eval"]:
        details += f", held-out {num(run['eval'][-1]['eval_loss'])} (see Training)"
    return ["train", run["run"].rstrip("/").rsplit("/", 1)[-1], "trains", *[""] * 9, details]


def _handover(rows: list[dict[str, Any]]) -> str:
    """mix kept → mix wrote → tokenize read: the one place where a later stage reads more than was kept."""
    mix = [r for r in rows if r["stage"] == "mix" and r.get("written") is not None]
    tok = [r for r in rows if r["stage"] == "tokenize"]
    if not mix:
        return ""
    kept, written = sum(r["kept"] for r in mix), sum(r["written"] for r in mix)
    up = [
        f"{r['scope']} {r['kept']:,} kept → {r['written']:,} written"
        for r in mix
        if r["written"] != r["kept"]
    ]
    text = f"mix kept {kept:,} documents and wrote {written:,}"
    text += f" ({'; '.join(up)}: up-sampled streams write each kept document more than once)" if up else ""
    if tok:
        read = sum(r["documents_in"] for r in tok)
        ok = '<span class="ok">✓</span>' if read == written else '<span class="bad">≠</span>'
        text = (
            esc(text + f"; tokenize read {read:,} documents ")
            + ok
            + esc(" (= mix written)" if read == written else " (not what mix wrote: another input?)")
        )
        return f'<p class="meta">{text}</p>'
    return f'<p class="meta">{esc(text)}.</p>'


def _upgrade(r: dict[str, Any]) -> dict[str, Any]:
    """A row of a version-1 stats.json (no action, flags or written): what it says, in this page's terms."""
    if "action" in r:
        return r
    marks = bool(marks_of(r["stage"]))
    action = "marks" if marks else "tokenizes" if r["stage"] == "tokenize" else "removes"
    passed_on = r["documents_in"] - r["rejected"] if marks else r["kept"]
    return {**r, "action": action, "passed_on": passed_on, "flagged": r["removed"] if marks else None}


def stages(data: dict[str, Any]) -> str:
    rows_in = [_upgrade(r) for r in data["stages"]]
    parts = []
    if not rows_in:
        parts.append(
            empty("No stage summaries found (tag_summary.json, dedup_*_summary.json, mix_summary.json).")
        )
    else:
        tokens = data["tokens"]
        rows = [_row(r, tokens) for r in rows_in]
        extra_rows = []
        if data.get("tokenizer"):
            at = next((i for i, r in enumerate(rows_in) if r["stage"] == "tokenize"), len(rows))
            rows.insert(at, _tokenizer_row(data["tokenizer"]))
        if data.get("training"):
            extra_rows.append(_train_row(data["training"]))
        parts.append(
            '<p class="meta"><b>Marking stages</b> (tag, dedup, decontaminate) remove nothing: they <i>flag</i> '
            "documents and <i>mark</i> spans in attributes; for them <i>adds up</i> checks in = not flagged + "
            "flagged + rejected, for the others in = kept + removed + rejected. "
            "<b>mix</b> removes (by filter rule), edits marked spans and writes; an up-sampled stream writes more "
            "documents than it kept. <b>kept</b> is what a stage passes on.</p>"
        )
        parts.append(table(HEADER, rows + extra_rows, css_class="stages"))
        parts.append(_handover(rows_in))
        parts.append(_stage_chart(rows_in))
        for r in rows_in:
            if r["action"] == "marks":
                continue
            steps = [(k, v) for k, v in r["removed_by"].items() if v]
            steps += [("rejected", r["rejected"])] * bool(r["rejected"])
            written = r.get("written")
            if steps or (written is not None and written != r["kept"]):
                title = f"{r['stage']} ({r['scope']})"
                png = plots.waterfall(title, r["documents_in"], steps, r["kept"], written)
                parts.append(img(png, f"{title}: waterfall"))
    for skipped in data["stage_summaries_skipped"]:
        parts.append(f'<p class="meta">Skipped {esc(skipped["path"])}: {esc(skipped["reason"])}</p>')
    return "".join(parts)


def _stage_chart(rows: list[dict[str, Any]]) -> str:
    marks = [r["action"] == "marks" for r in rows]
    png = plots.stage_bars(
        [f"{r['stage']} ({r['scope']})" for r in rows],
        [r["passed_on"] for r in rows],
        [0 if m else r["removed"] for r, m in zip(rows, marks, strict=True)],
        [r["rejected"] for r in rows],
        flagged=[
            min(r.get("flagged") or 0, r["passed_on"]) if m else 0 for r, m in zip(rows, marks, strict=True)
        ],
        repeats=[max((r.get("written") or r["kept"]) - r["kept"], 0) for r in rows],
    )
    return img(png, "documents per stage")
