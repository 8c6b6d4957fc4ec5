"""An attribution as data (JSON) and as one self-contained HTML page: the text with its spans highlighted
(darker where spans overlap), and under it, per span, the documents it occurs in and when they were trained on."""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path
from typing import Any

from dolma_kit.index.attribute import Attribution, Span
from dolma_kit.index.schedule import seen_dict
from dolma_kit.index.store import TokenIndex


def span_dict(span: Span, checkpoint: int | None) -> dict[str, Any]:
    occurrences = []
    for i, occ in enumerate(span.occurrences):
        row = dataclasses.asdict(occ)
        if span.seen:
            row.update(seen_dict(span.seen[i]))
            if checkpoint is not None:
                row["trained_by_checkpoint"] = any(s <= checkpoint for s in span.seen[i].steps)
        occurrences.append(row)
    out = {k: getattr(span, k) for k in ("start", "end", "text", "count", "rarity")}
    if span.seen:
        steps = [s for seen in span.seen for s in seen.steps]
        out["first_step"] = min(steps) if steps else None
    return {**out, "occurrences": occurrences}


def attribution_dict(att: Attribution) -> dict[str, Any]:
    return {
        "run": att.run,
        "checkpoint": att.checkpoint,
        "prompt": att.prompt,
        "text": att.text,
        "tokens": len(att.ids),
        "ids": att.ids,
        "spans": [span_dict(s, att.checkpoint) for s in att.spans],
    }


def char_offsets(index: TokenIndex, ids: list[int], text: str) -> list[int]:
    """Character offset in `text` of each token boundary 0 … len(ids) (from decoding prefixes)."""
    if index.tokenizer is None:
        return [0] * (len(ids) + 1)
    return [min(len(index.decode(ids[:k]) or ""), len(text)) for k in range(len(ids) + 1)]


def write_html(index: TokenIndex, att: Attribution, path: str | Path) -> Path:
    """The page (see the module doc); returns its path."""
    path = Path(path)
    cuts = char_offsets(index, att.ids, att.text)
    depth = [0] * (len(att.text) + 1)
    for span in att.spans:
        for c in range(cuts[span.start], cuts[span.end]):
            depth[c] += 1
    body, c = [], 0
    while c < len(att.text):
        d = depth[c]
        e = c
        while e < len(att.text) and depth[e] == d:
            e += 1
        piece = html.escape(att.text[c:e])
        body.append(f'<mark class="d{min(d, 3)}">{piece}</mark>' if d else piece)
        c = e
    rows = []
    data = attribution_dict(att)
    for n, span in enumerate(data["spans"], 1):
        items = []
        for occ in span["occurrences"]:
            when = ""
            if "steps" in occ:
                steps = occ["steps"]
                when = (
                    f" — steps {', '.join(map(str, steps[:20]))}{' …' if len(steps) > 20 else ''}"
                    if steps
                    else " — never trained on"
                )
                when += " (held out)" if occ["held_out"] else ""
            items.append(
                f"<li><b>{html.escape(occ['id'])}</b> [{html.escape(occ['source'])}] "
                f"{html.escape(occ['src'])}:{occ['loc']} chars {occ['char_start']}–{occ['char_end']}{html.escape(when)}</li>"
            )
        rows.append(
            f"<h3>{n}. “{html.escape(span['text'] or '')}”</h3><p>{span['end'] - span['start']} tokens, "
            f"{span['count']:,} occurrences, rarity {span['rarity']:.1f}</p><ul>{''.join(items)}</ul>"
        )
    title = f"trace-output: {att.run or 'given text'}" + (
        f" at step {att.checkpoint}" if att.checkpoint else ""
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
body{{font-family:sans-serif;max-width:60em;margin:2em auto}} pre{{white-space:pre-wrap;font-size:1.1em}}
mark.d1{{background:#fde68a}} mark.d2{{background:#fbbf24}} mark.d3{{background:#f59e0b}}</style></head><body>
<h1>{html.escape(title)}</h1>{f"<p>prompt: <code>{html.escape(att.prompt)}</code></p>" if att.prompt else ""}
<pre>{"".join(body)}</pre><h2>{len(att.spans)} spans found verbatim in the training data</h2>{"".join(rows)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
