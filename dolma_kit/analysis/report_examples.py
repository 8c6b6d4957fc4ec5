"""The report's "Why documents were removed" section: per mix stream and rule, how many documents the rule removed
and let through, and a sample of each with the attribute values that decided (`mix.examples` writes them).

`mix_examples` reads the `examples.json` beside each `mix_summary.json` the report found (the stage summaries
`StatsConfig.stage_summaries` points at) into stats.json; `render_examples` renders from stats.json alone, so the
page still rebuilds without the mix outputs.
"""

from __future__ import annotations

import json
from typing import Any

from dolma_kit import storage
from dolma_kit.analysis.report_parts import Raw, esc, num, table
from dolma_kit.mix.examples import EXAMPLES_NAME, FORMAT
from dolma_kit.mix.stage import SUMMARY_NAME

KINDS = {
    "include": "include",
    "exclude": "exclude",
    "sample": "sampling",
    "replace": "span replacement",
    "min_text_length": "min_text_length",
}


def mix_examples(summaries: list[str]) -> list[dict[str, Any]] | None:
    """The examples files beside the mix summaries among `summaries`, as stats.json holds them (None: none). A
    file in another format is listed with the reason instead, never an error: the report is always written."""
    found = []
    for summary in summaries:
        if summary.rsplit("/", 1)[-1] != SUMMARY_NAME:
            continue
        path = storage.join(storage.parent(summary), EXAMPLES_NAME)
        if not storage.exists(path):
            continue
        try:
            data = json.loads(storage.read_text(path))
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
            found.append({"path": path, "examples": data["examples"], "streams": data["streams"]})
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            found.append({"path": path, "skipped": f"{type(exc).__name__}: {exc}", "streams": []})
    return found or None


def _values(values: dict[str, Any]) -> Raw:
    """One `name = value` a line; spans lists as JSON."""
    lines = []
    for name, value in values.items():
        shown = "none (no span)" if value is None else value
        if isinstance(shown, dict | list):
            shown = json.dumps(shown, ensure_ascii=False)
        lines.append(f"<code>{esc(name)}</code> = {esc(num(shown) if _is_number(shown) else shown)}")
    return Raw("<br>".join(lines) or '<span class="meta">–</span>')


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _samples(rows: list[dict[str, Any]], kept: bool) -> str:
    header = ["id", "source", "file:line", "values", "text (first characters)"]
    if kept:
        header.insert(4, "then")
    body = []
    for r in rows:
        text = r.get("text", "")
        more = " …" if r.get("chars", 0) > len(text) else ""
        cells: list[object] = [
            r["id"],
            r.get("source", ""),
            f"{r.get('file', '')}:{r.get('line', '')}",
            _values(r.get("values") or {}),
            Raw(f'<span class="sample">{esc(text)}{more}</span>'),
        ]
        if kept:
            cells.insert(4, r.get("outcome", ""))
        body.append(cells)
    return table(header, body, css_class="examples")


def _rule(rule: dict[str, Any]) -> str:
    kind = KINDS.get(rule.get("kind", ""), rule.get("kind", ""))
    title = f"{kind} <code>{esc(rule['rule'])}</code>"
    if rule.get("filter") and rule["filter"] != rule["rule"]:
        title += f' <span class="meta">= {esc(rule["filter"])}</span>'
    removed, kept = rule["removed_examples"], rule["kept_examples"]
    parts = [
        f"<h4>{title}</h4>",
        f'<p class="meta">removed {num(rule["removed"])} documents, let {num(rule["kept"])} through '
        f"(of those it decided). Showing {num(len(removed))} removed"
        + (f" and {num(len(kept))} let through." if kept else "."),
        "</p>",
    ]
    if removed:
        parts.append(_samples(removed, kept=False))
    if kept:
        parts.append(
            f"<details><summary>{num(len(kept))} documents it let through</summary>"
            f"{_samples(kept, kept=True)}</details>"
        )
    return "".join(parts)


def render_examples(data: dict[str, Any]) -> str:
    files = data.get("mix_examples")
    if not files:
        # an optional output of mix, not missing data: a hint, not an empty section
        return (
            '<p class="meta">'
            + esc(
                "No mix examples found. `dolma-kit mix RECIPE` writes OUTPUT/examples.json beside "
                "mix_summary.json (--examples N per rule, default 10; 0: none); point the report at it with "
                "`dolma-kit stats ROOT --stage-summaries OUTPUT`. The section then shows, per stream and rule, "
                "documents it removed and kept, with the attribute values that decided."
            )
            + "</p>"
        )
    parts = [
        '<p class="meta">Per mix stream and rule: a seeded sample of the documents the rule removed and of those '
        "it let through (a later rule may still remove them: <i>then</i>), with the values of the attributes "
        "the rule reads (a one-span attribute shows its score). Rules decide in order, so a rule counts only "
        "the documents earlier rules kept.</p>",
    ]
    for f in files:
        if f.get("skipped"):
            parts.append(f'<p class="bad">{esc(f["path"])}: not read ({esc(f["skipped"])})</p>')
            continue
        parts.append(f'<p class="meta">from {esc(f["path"])} (up to {num(f["examples"])} per rule)</p>')
        for stream in f["streams"]:
            parts.append(f"<h3>stream {esc(stream['stream'])}</h3>")
            parts += [_rule(rule) for rule in stream["rules"]]
    return "".join(parts)
