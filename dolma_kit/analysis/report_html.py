"""Renders stats.json as one self-contained HTML page: inline CSS, PNG plots as base64 `data:` URIs, no JS.

The page opens from disk, offline, in any browser, and can be mailed or attached to a run as a single file.
Every number in a table is printed from the same dict that stats.json holds (thousands separators, no
rounding of counts), so a script and a reader see the same figures. Sections: overview, lengths, languages,
domains, duplicates, pii, contamination, stages; a section without data says which stage would provide it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from typing import Any

from dolma_kit.analysis import plots

SECTIONS = {
    "overview": "Documents, bytes and tokens per source",
    "lengths": "Document lengths",
    "languages": "Languages",
    "domains": "Top domains",
    "duplicates": "Duplicates",
    "pii": "PII",
    "contamination": "Evaluation-data contamination",
    "stages": "What each stage removed",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
nav a{margin-right:1em}.meta{color:#555}.empty{color:#777;font-style:italic}
table{border-collapse:collapse;margin:.8em 0}th,td{padding:.25em .7em;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;border-top:2px solid #ccc}.bad{color:#b00;font-weight:600}.ok{color:#080}
img{max-width:100%;display:block;margin:.5em 0}code{background:#f3f3f3;padding:0 .25em}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def num(value: int | float) -> str:
    """Counts with thousands separators; fractions to 4 significant digits."""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "–"


def img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def table(
    header: Sequence[str], rows: Sequence[Sequence[object]], *, total: Sequence[object] | None = None
) -> str:
    """An HTML table; int/float cells are right-aligned numbers, other cells escaped text."""

    def cells(row: Sequence[object], tag: str = "td") -> str:
        out = []
        for cell in row:
            if isinstance(cell, (int, float)) and not isinstance(cell, bool):
                out.append(f'<{tag} class="n">{num(cell)}</{tag}>')
            elif isinstance(cell, Raw):
                out.append(f"<{tag}>{cell.html}</{tag}>")
            else:
                out.append(f"<{tag}>{esc(cell)}</{tag}>")
        return "".join(out)

    body = "".join(f"<tr>{cells(r)}</tr>" for r in rows)
    if total is not None:
        body += f'<tr class="total">{cells(total)}</tr>'
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Raw:
    """Trusted HTML for a table cell (built here from escaped parts)."""

    def __init__(self, markup: str) -> None:
        self.html = markup


def empty(message: str) -> str:
    return f'<p class="empty">{esc(message)}</p>'


# --------------------------------------------------------------------------------------------- sections


def overview(data: dict[str, Any]) -> str:
    srcs, tot = data["sources"], data["total"]
    token_label = "tokens" if data["tokens"]["from"] == "tokenized manifest" else "words"

    def row(name: str, s: dict[str, Any]) -> list[object]:
        return [
            name,
            s["documents"],
            s["rejected"],
            s["bytes"],
            round(s["bytes"] / 1e6, 3),
            s["tokens"],
            round(s["mean_chars"], 1),
            s["min_chars"] or 0,
            s["max_chars"],
            s["empty"],
        ]

    header = [
        "source",
        "documents",
        "rejected",
        "bytes",
        "MB",
        token_label,
        "mean chars",
        "min",
        "max",
        "empty",
    ]
    parts = [table(header, [row(n, s) for n, s in srcs.items()], total=row("total", tot))]
    info = data["tokens"]
    if info["from"] == "tokenized manifest":
        parts.append(
            f'<p class="meta">Tokens from <code>{esc(info["path"])}/manifest.json</code> (tokenizer '
            f"{esc(info['tokenizer'])}): {num(info['total'])} tokens over {num(info['documents'])} documents; "
            "the tokenized corpus may be a filtered mix of these documents.</p>"
        )
    else:
        parts.append(
            '<p class="meta">Tokens are whitespace-separated words (pass --tokenized for real tokens).</p>'
        )
    names = list(srcs)
    parts.append(
        img(
            plots.sources(names, [srcs[n]["documents"] for n in names], [srcs[n]["bytes"] for n in names]),
            "documents and bytes per source",
        )
    )
    return "".join(parts)


def lengths(data: dict[str, Any]) -> str:
    edges, srcs = data["length_edges"], data["sources"]
    hists = {n: s["length_hist"] for n, s in srcs.items()}
    rows = []
    for i, lo in enumerate(edges):
        counts = [h[i] for h in hists.values()]
        if any(counts):
            hi = f"{edges[i + 1]:,.0f}" if i + 1 < len(edges) else "∞"
            rows.append([f"[{lo:,.0f}, {hi})", *counts, sum(counts)])
    return img(plots.lengths(edges, hists), "document length histogram") + table(
        ["characters", *hists, "total"], rows
    )


def languages(data: dict[str, Any]) -> str:
    srcs, tot = data["sources"], data["total"]
    if not tot["language_checked"]:
        return empty("No language attributes. Run `dolma-kit tag --taggers ft_lang_id` on the documents.")
    langs = sorted(tot["languages"], key=lambda k: (-tot["languages"][k], k))
    rows = [
        [
            lang,
            *(s["languages"].get(lang, 0) for s in srcs.values()),
            tot["languages"][lang],
            pct(tot["languages"][lang], tot["language_checked"]),
        ]
        for lang in langs
    ]
    checked = [
        "documents with language ID",
        *(s["language_checked"] for s in srcs.values()),
        tot["language_checked"],
        "",
    ]
    top = langs[:15]
    return (
        '<p class="meta">Top-1 language per document from <code>ft_lang_id</code> attributes; '
        "<code>unknown</code>: no language span (empty text).</p>"
        + img(plots.horizontal_bars(top, [tot["languages"][k] for k in top], xlabel="documents"), "languages")
        + table(["language", *srcs, "total", "share"], rows, total=checked)
    )


def domains(data: dict[str, Any]) -> str:
    tot = data["total"]
    dom = tot["domains"]
    if not tot["with_url"]:
        return empty("No document has a URL in its metadata (the `url` field, or --url-field).")
    items = list(dom["counts"].items())
    rows = [[i + 1, d, n, pct(n, tot["with_url"])] for i, (d, n) in enumerate(items)]
    note = (
        f"{num(tot['with_url'])} of {num(tot['documents'])} documents have a URL; "
        f"{num(dom['distinct'])} distinct registered domains counted, the top {num(len(items))} listed."
    )
    if dom["approximate"]:
        note += (
            f" Approximate: shards with many distinct domains were pruned to their top domains, so counts are "
            f"lower bounds, each at most {num(dom['error_bound'])} below the true count."
        )
    top = items[:20]
    return (
        f'<p class="meta">{esc(note)}</p>'
        + img(
            plots.horizontal_bars(
                [d for d, _ in top], [n for _, n in top], xlabel="documents", color=plots.PALETTE[2]
            ),
            "top domains",
        )
        + table(["rank", "domain", "documents", "share of documents with a URL"], rows)
    )


def _per_source(data: dict[str, Any], key: str) -> list[tuple[str, str, dict[str, int]]]:
    """(method, source, counts) for a nested per-source dict such as `duplicates`, total last per method."""
    methods = sorted(data["total"][key])
    out = []
    for m in methods:
        for name, s in data["sources"].items():
            if m in s[key]:
                out.append((m, name, s[key][m]))
        out.append((m, "total", data["total"][key][m]))
    return out


def duplicates(data: dict[str, Any]) -> str:
    tot = data["total"]
    if not tot["duplicates"] and not tot["duplicate_paragraphs"]:
        return empty("No dedup attributes. Run `dolma-kit dedup exact` or `dolma-kit dedup minhash`.")
    parts = []
    if tot["duplicates"]:
        rows = [
            [
                m,
                src,
                c.get("documents", 0),
                c.get("checked", 0),
                pct(c.get("documents", 0), c.get("checked", 0)),
            ]
            for m, src, c in _per_source(data, "duplicates")
        ]
        groups = list(data["sources"])
        series = {
            m: [
                100
                * s["duplicates"].get(m, {}).get("documents", 0)
                / max(s["duplicates"].get(m, {}).get("checked", 0), 1)
                for s in data["sources"].values()
            ]
            for m in sorted(tot["duplicates"])
        }
        parts.append(
            '<p class="meta">Documents marked as later copies (<code>…__duplicate</code> = 1) per dedup '
            "experiment; <code>mix</code> drops them with a filter on that attribute.</p>"
        )
        parts.append(img(plots.grouped_bars(groups, series, ylabel="duplicate rate (%)"), "duplicate rates"))
        parts.append(table(["experiment/method", "source", "duplicates", "documents checked", "rate"], rows))
    if tot["duplicate_paragraphs"]:
        rows = [
            [
                m,
                src,
                c.get("spans", 0),
                c.get("chars", 0),
                c.get("documents", 0),
                c.get("checked", 0),
                pct(c.get("documents", 0), c.get("checked", 0)),
            ]
            for m, src, c in _per_source(data, "duplicate_paragraphs")
        ]
        header = [
            "experiment",
            "source",
            "duplicate paragraphs",
            "characters",
            "documents with one",
            "checked",
            "rate",
        ]
        parts.append(table(header, rows))
    return "".join(parts)


def pii(data: dict[str, Any]) -> str:
    tot = data["total"]
    if not tot["pii_checked"]:
        return empty("No PII attributes. Run `dolma-kit tag --taggers pii` on the documents.")
    kinds = sorted(tot["pii"])
    rows = [
        [
            kind,
            src,
            c.get("spans", 0),
            c.get("documents", 0),
            pct(c.get("documents", 0), (tot if src == "total" else data["sources"][src])["pii_checked"]),
        ]
        for kind, src, c in _per_source(data, "pii")
    ]
    series = {k: [s["pii"].get(k, {}).get("spans", 0) for s in data["sources"].values()] for k in kinds}
    return (
        f'<p class="meta">{num(tot["pii_checked"])} documents checked for PII; spans are what <code>mix</code> '
        "replaces with |||EMAIL_ADDRESS|||, |||PHONE_NUMBER|||, |||IP_ADDRESS|||.</p>"
        + (
            img(plots.grouped_bars(list(data["sources"]), series, ylabel="spans"), "PII spans")
            if kinds
            else ""
        )
        + (
            table(["kind", "source", "spans", "documents", "share of checked documents"], rows)
            if kinds
            else empty("No PII found in the checked documents.")
        )
    )


def contamination(data: dict[str, Any]) -> str:
    if not data["total"]["contamination"]:
        return empty("No decontamination attributes. Run `dolma-kit decontaminate --eval … --documents …`.")
    rows = [
        [
            m,
            src,
            c.get("documents", 0),
            c.get("paragraphs", 0),
            c.get("checked", 0),
            pct(c.get("documents", 0), c.get("checked", 0)),
        ]
        for m, src, c in _per_source(data, "contamination")
    ]
    header = ["experiment", "source", "contaminated documents", "contaminated paragraphs", "checked", "rate"]
    return table(header, rows)


def stages(data: dict[str, Any]) -> str:
    rows_in = data["stages"]
    parts = []
    if not rows_in:
        parts.append(
            empty("No stage summaries found (tag_summary.json, dedup_*_summary.json, mix_summary.json).")
        )
    else:
        rows = []
        for r in rows_in:
            check = Raw(
                '<span class="ok">✓</span>' if r["balanced"] else '<span class="bad">✗ does not add up</span>'
            )
            reasons = ", ".join(f"{k}: {v:,}" for k, v in r["removed_by"].items())
            rows.append(
                [
                    r["stage"],
                    r["scope"],
                    r["documents_in"],
                    r["kept"],
                    r["removed"],
                    r["rejected"],
                    check,
                    reasons,
                ]
            )
        header = [
            "stage",
            "scope",
            "in",
            "kept",
            "removed",
            "rejected",
            "in = kept + removed + rejected",
            "removed by",
        ]
        parts.append(
            '<p class="meta">Attribute stages (tag, dedup, decontaminate) only mark documents: their "removed" '
            "is what <code>mix</code> will drop on those marks. <code>mix</code> removes by filter rule.</p>"
        )
        parts.append(table(header, rows))
        labels = [f"{r['stage']} ({r['scope']})" for r in rows_in]
        parts.append(
            img(
                plots.stage_bars(
                    labels,
                    [r["kept"] for r in rows_in],
                    [r["removed"] for r in rows_in],
                    [r["rejected"] for r in rows_in],
                ),
                "documents per stage",
            )
        )
        for r in rows_in:
            steps = [(k, v) for k, v in r["removed_by"].items() if v] + [("rejected", r["rejected"])] * bool(
                r["rejected"]
            )
            if steps:
                title = f"{r['stage']} ({r['scope']}): waterfall"
                parts.append(img(plots.waterfall(title, r["documents_in"], steps, r["kept"]), title))
    for skipped in data["stage_summaries_skipped"]:
        parts.append(f'<p class="meta">Skipped {esc(skipped["path"])}: {esc(skipped["reason"])}</p>')
    return "".join(parts)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "overview": overview,
    "lengths": lengths,
    "languages": languages,
    "domains": domains,
    "duplicates": duplicates,
    "pii": pii,
    "contamination": contamination,
    "stages": stages,
}


def render(data: dict[str, Any]) -> str:
    """The whole page for one stats.json dict."""
    tot = data["total"]
    meta = (
        f"{esc(data['corpus'])} · {num(data['shards'])} shards · {num(tot['documents'])} documents · "
        f"{num(tot['bytes'])} bytes · attributes read: {esc(', '.join(data['experiments_read']) or 'none')}"
    )
    nav = "".join(f'<a href="#{key}">{esc(title)}</a>' for key, title in SECTIONS.items())
    body = "".join(
        f'<section id="{key}"><h2>{esc(title)}</h2>{RENDERERS[key](data)}</section>'
        for key, title in SECTIONS.items()
    )
    missing = "".join(
        f'<p class="meta">Experiment {esc(exp)} has no attribute file for {num(len(paths))} shard(s), e.g. '
        f"{esc(paths[0])}.</p>"
        for exp, paths in data["missing_attributes"].items()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>dolma-kit stats: {esc(data['corpus'])}</title><style>{CSS}</style></head><body>"
        f'<h1>Corpus report</h1><p class="meta">{meta}</p>{missing}<nav>{nav}</nav>{body}</body></html>\n'
    )
