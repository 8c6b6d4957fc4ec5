"""Renders stats.json as one self-contained HTML page: inline CSS, PNG plots as base64 `data:` URIs, no JS.

The page opens from disk, offline, in any browser, and can be mailed or attached to a run as a single file.
Every number in a table is printed from the same dict that stats.json holds (thousands separators, no
rounding of counts), so a script and a reader see the same figures. Sections: overview, lengths, languages,
quality rules (`report_quality`), domains, duplicates, near-duplicate clusters (`report_clusters`), pii,
contamination, repeated spans (`report_repeats`), stages (`report_stages`), removal examples
(`report_examples`), training (`report_training`); a section without data says which stage or option would
provide it. Table and number helpers: `report_parts`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dolma_kit.analysis import plots
from dolma_kit.analysis.report_clusters import render_clusters
from dolma_kit.analysis.report_examples import render_examples
from dolma_kit.analysis.report_parts import CSS, empty, esc, img, num, pct, table
from dolma_kit.analysis.report_quality import render_quality
from dolma_kit.analysis.report_repeats import render_repeated_spans
from dolma_kit.analysis.report_stages import stages
from dolma_kit.analysis.report_training import training

SECTIONS = {
    "overview": "Documents, bytes and tokens per source",
    "lengths": "Document lengths",
    "languages": "Languages",
    "quality": "Quality rules: which Gopher / C4 rule failed",
    "domains": "Top domains",
    "duplicates": "Duplicates",
    "minhash_clusters": "Near-duplicate clusters (MinHash)",
    "pii": "PII",
    "contamination": "Evaluation-data contamination",
    "repeated_spans": "Repeated long spans",
    "stages": "What each stage marked, removed and wrote",
    "removal_examples": "Why documents were removed",
    "training": "Training",
}

# --------------------------------------------------------------------------------------------- sections


def overview(data: dict[str, Any]) -> str:
    srcs, tot = data["sources"], data["total"]
    tokenized = data["tokens"]["from"] == "tokenized manifest"
    token_label = "tokens" if tokenized else "words"
    per_source = data["tokens"].get("per_source") or {}

    def row(name: str, s: dict[str, Any]) -> list[object]:
        if name == "total":
            docs = data["tokens"].get("documents", "")
        else:
            docs = per_source.get(name, {}).get("documents", "")
        return [
            name,
            s["documents"],
            s["rejected"],
            s["bytes"],
            round(s["bytes"] / 1e6, 3),
            *([docs] if per_source else []),
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
        "text MB (UTF-8)",
        *(["documents tokenized"] if per_source else []),
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
            f"{esc(info['tokenizer'])}): {num(info['total'])} tokens over {num(info['documents'])} documents. "
            "The tokenized corpus is what mix wrote from these documents: filtered, edited, and with up-sampled "
            "streams written more than once, so a source may have more documents tokenized than it has.</p>"
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
        + _domains_per_source(data)
    )


PER_SOURCE_DOMAINS = 8


def _domains_per_source(data: dict[str, Any]) -> str:
    """Each source's top domains side by side: a source fed by a handful of sites shows at a glance."""
    blocks = []
    for name, s in data["sources"].items():
        if not s["with_url"]:
            continue
        dom = s["domains"]
        items = list(dom["counts"].items())[:PER_SOURCE_DOMAINS]
        rows = [[d, n, pct(n, s["with_url"])] for d, n in items]
        caption = f"{num(s['with_url'])} with a URL, {num(dom['distinct'])} distinct" + (
            f", counts ≥ true − {num(dom['error_bound'])}" if dom["approximate"] else ""
        )
        blocks.append(
            f'<div><h3>{esc(name)}</h3><p class="meta">{esc(caption)}</p>'
            + table(["domain", "docs", "share"], rows)
            + "</div>"
        )
    if not blocks:
        return ""
    return (
        f"<h3>Top {PER_SOURCE_DOMAINS} domains per source</h3>"
        + '<div class="grid">'
        + "".join(blocks)
        + "</div>"
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


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "overview": overview,
    "lengths": lengths,
    "languages": languages,
    "quality": render_quality,
    "domains": domains,
    "duplicates": duplicates,
    "minhash_clusters": render_clusters,
    "pii": pii,
    "contamination": contamination,
    "repeated_spans": render_repeated_spans,
    "stages": stages,
    "removal_examples": render_examples,
    "training": training,
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
