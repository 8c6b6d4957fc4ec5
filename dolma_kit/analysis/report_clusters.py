"""The report's MinHash section: per minhash experiment, its cluster sizes and example clusters.

`dedup minhash` writes `dedup_minhash_report.json` beside its attributes (`<root>/attributes/<experiment>/`):
config, totals, per-source counts, the cluster-size histogram and a few example clusters whose members carry
id, source, shard:line, the first 200 characters and which one is kept (`dolma_kit.dedup.minhash_report`).
`stats` copies what the page shows into stats.json (`minhash_clusters`), so the page rebuilds from it alone;
a report file that cannot be read is noted on the page rather than stopping the count.
"""

from __future__ import annotations

import json
from typing import Any

from dolma_kit import storage
from dolma_kit.analysis.report_parts import Raw, empty, esc, num, pct, table

#: the file `dedup minhash` writes beside its attributes (`minhash_stage.REPORT_NAME`; not imported: a stage)
REPORT_NAME = "dedup_minhash_report.json"
#: cluster sizes listed on the page; larger ones are summed into one row
HISTOGRAM_ROWS = 25
_CONFIG_KEYS = ("ngram", "num_perm", "bands", "rows", "threshold", "verify")


def minhash_clusters(root: str, exps: list[str]) -> dict[str, dict[str, Any]]:
    """stats.json's `minhash_clusters`: for each experiment with a minhash report, what the section shows."""
    out: dict[str, dict[str, Any]] = {}
    for exp in exps:
        path = storage.join(root, "attributes", exp, REPORT_NAME)
        if not storage.exists(path):
            continue
        try:
            report = json.loads(storage.read_text(path))
            config = report.get("config") or {}
            out[exp] = {
                "path": path,
                "config": {k: config[k] for k in _CONFIG_KEYS if k in config},
                "total": dict(report["total"]),
                "per_source": dict(report.get("per_source") or {}),
                "cluster_size_histogram": dict(report.get("cluster_size_histogram") or {}),
                "examples": list(report.get("examples") or []),
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            out[exp] = {"path": path, "error": f"{path}: not a minhash report ({type(exc).__name__}: {exc})"}
    return out


def _histogram(hist: dict[str, int]) -> list[list[object]]:
    items = sorted((int(size), int(n)) for size, n in hist.items())
    rows: list[list[object]] = [[size, n, size * n] for size, n in items[:HISTOGRAM_ROWS]]
    rest = items[HISTOGRAM_ROWS:]
    if rest:
        rows.append([f"{rest[0][0]:,}–{rest[-1][0]:,}", sum(n for _, n in rest), sum(s * n for s, n in rest)])
    return rows


def _preview(text: str) -> Raw:
    """The member's first characters on one line; line breaks shown as ⏎ so a page's layout stays visible."""
    return Raw(f"<code>{esc(text.replace(chr(10), ' ⏎ '))}</code>")


def _examples(examples: list[dict[str, Any]]) -> str:
    parts = []
    for ex in examples:
        members = ex.get("members") or []
        rows = [
            [
                Raw('<span class="ok">kept</span>') if m.get("kept") else "duplicate",
                str(m.get("id", "")),
                str(m.get("source", "")),
                f"{m.get('shard', '')}:{m.get('line', '')}",
                _preview(str(m.get("text", ""))),
            ]
            for m in members
        ]
        shown = f", {len(members)} shown" if len(members) < int(ex.get("size", 0)) else ""
        parts.append(
            f"<h4>cluster {esc(ex.get('cluster_id'))}: {num(int(ex.get('size', 0)))} documents{shown}</h4>"
        )
        parts.append(table(["", "id", "source", "file:line", "first characters"], rows))
    return "".join(parts)


def render_clusters(data: dict[str, Any]) -> str:
    """The section: per minhash experiment, totals per source, the cluster-size histogram, example clusters."""
    found = data.get("minhash_clusters") or {}
    if not found:
        return empty(
            "No MinHash report under the corpus's attributes/. Run `dolma-kit dedup minhash` on the documents "
            "to see near-duplicate clusters here."
        )
    parts = []
    for exp, block in found.items():
        parts.append(f"<h3>{esc(exp)}</h3>")
        if "error" in block:
            parts.append(empty(block["error"]))
            continue
        t, c = block["total"], block["config"]
        banding = f"{c.get('bands')} bands × {c.get('rows')} rows" if "bands" in c else "banding not recorded"
        parts.append(
            f'<p class="meta">{num(t.get("clusters", 0))} clusters hold {num(t.get("documents_in_clusters", 0))} '
            f"of {num(t.get('documents', 0))} documents; {num(t.get('removed', 0))} are marked duplicate (all but "
            f"one of each cluster; <code>mix</code> removes them where a recipe filters on "
            f"<code>{esc(exp)}.minhash.duplicate</code>). {esc(c.get('ngram', '?'))}-word shingles, "
            f"{esc(c.get('num_perm', '?'))} permutations, {esc(banding)}, Jaccard ≥ {esc(c.get('threshold', '?'))}"
            f" ({esc(c.get('verify', 'estimated'))}). From <code>{esc(block['path'])}</code>.</p>"
        )
        rows = [
            [src, r.get("documents", 0), r.get("in_clusters", 0), r.get("removed", 0),
             pct(r.get("removed", 0), r.get("documents", 0))]
            for src, r in sorted(block["per_source"].items())
        ]  # fmt: skip
        parts.append(table(["source", "documents", "in clusters", "marked duplicate", "share marked"], rows))
        if not block["cluster_size_histogram"]:
            parts.append(empty("No near-duplicate clusters."))
            continue
        parts.append('<div class="grid"><div><h4>Cluster sizes</h4>')
        parts.append(table(["size", "clusters", "documents"], _histogram(block["cluster_size_histogram"])))
        parts.append("</div></div>")
        parts.append(
            '<p class="meta">The largest clusters (the kept member is the first by source, shard and line; the '
            "report JSON holds the same).</p>"
        )
        parts.append(_examples(block["examples"]))
    return "".join(parts)
