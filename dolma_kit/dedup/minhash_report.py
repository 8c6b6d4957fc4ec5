"""What a MinHash run found, for people: duplicates per source, cluster sizes, example clusters, the S-curve.

Built from the cluster labels and the documents (only the shards holding example members are re-read).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from dolma_kit import storage
from dolma_kit.dedup.arrays import load_npy
from dolma_kit.dedup.cluster_sizes import ClusterSizes, label_chunks
from dolma_kit.dedup.minhash import MinhashConfig, s_curve
from dolma_kit.documents import DocumentReader

if TYPE_CHECKING:
    from dolma_kit.dedup.minhash_stage import MinhashDedupConfig, Plan

EXAMPLE_CLUSTERS = 3
EXAMPLE_MEMBERS = 5
PREVIEW_CHARS = 200


def build_report(config: MinhashDedupConfig, plan: Plan, counts: list[int]) -> dict[str, Any]:
    """The report JSON: config, S-curve, totals, per source, cluster-size histogram, example clusters."""
    labels = load_npy(plan.cluster.output)  # memory-mapped when local: read a shard at a time
    n = len(labels)
    table = ClusterSizes(plan.cluster.output)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    per_source: dict[str, dict[str, int]] = {}
    for i, task in enumerate(plan.attributes):
        source = task.key.split("/")[0] if "/" in task.key else ""
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        row = per_source.setdefault(source, {"documents": 0, "removed": 0, "in_clusters": 0})
        shard = np.asarray(labels[lo:hi])
        row["documents"] += hi - lo
        row["removed"] += int((shard != np.arange(lo, hi)).sum())
        row["in_clusters"] += int((table.of(shard) >= 2).sum())
    cluster_sizes = np.asarray(table.sizes)
    values, freq = np.unique(cluster_sizes, return_counts=True)
    counts_path = plan.cluster.output + ".counts.json"
    lsh_counts = json.loads(storage.read_text(counts_path)) if storage.exists(counts_path) else {}
    mh = config.minhash
    return {
        "config": mh.to_json(),
        "s_curve": [{"jaccard": j, "p_candidate": round(p, 6)} for j, p in s_curve(mh.b, mh.r)],
        "total": {
            "documents": n,
            "clusters": len(cluster_sizes),
            "documents_in_clusters": int(cluster_sizes.sum()),
            "removed": sum(row["removed"] for row in per_source.values()),
            **{k: v for k, v in lsh_counts.items() if k in ("candidates", "verified", "rejected")},
        },
        "per_source": per_source,
        "cluster_size_histogram": {str(int(v)): int(f) for v, f in zip(values, freq, strict=True)},
        "examples": _examples(plan, labels, table, offsets, config.skip_bad),
    }


def _examples(plan: Plan, labels: np.ndarray, table: ClusterSizes, offsets: np.ndarray,
              skip_bad: bool) -> list[dict[str, Any]]:  # fmt: skip
    if len(table.roots) == 0:
        return []
    roots, sizes = np.asarray(table.roots), np.asarray(table.sizes)
    pick = np.lexsort((roots, -sizes))[:EXAMPLE_CLUSTERS]  # largest first, then first found
    heads, head_sizes = roots[pick], sizes[pick]
    wanted: dict[int, int] = {}
    for head in heads.tolist():
        members: list[int] = []
        for first, chunk in label_chunks(labels, head):  # members come at or after their root
            members += (first + np.flatnonzero(chunk == head)[: EXAMPLE_MEMBERS - len(members)]).tolist()
            if len(members) >= EXAMPLE_MEMBERS:
                break
        wanted.update(dict.fromkeys(members, head))
    found: dict[int, dict[str, Any]] = {}
    shards = np.searchsorted(offsets, sorted(wanted), side="right") - 1
    for s in sorted(set(shards.tolist())):
        task = plan.attributes[s]
        last = max(g for g in wanted if offsets[s] <= g < offsets[s + 1])
        reader = DocumentReader(task.input, on_bad=(lambda exc: None) if skip_bad else None)
        for local, doc in enumerate(reader):
            g = int(offsets[s]) + local
            if g in wanted:
                found[g] = {"shard": task.key, "line": doc.line, "id": doc.id, "source": doc.source,
                            "kept": g == wanted[g], "text": doc.text[:PREVIEW_CHARS]}  # fmt: skip
            if g >= last:
                break
    return [
        {
            "cluster_id": int(head),
            "size": int(size),
            "members": [found[m] for m in sorted(wanted) if wanted[m] == head and m in found],
        }
        for head, size in zip(heads, head_sizes, strict=True)
    ]


def s_curve_table(mh: MinhashConfig) -> Group:
    """The banding in words, and P(candidate) at J = 0.5 … 0.9."""
    line = Text(
        f"LSH: {mh.b} bands × {mh.r} rows of {mh.num_perm} permutations; "
        f"pairs join at {'exact' if mh.verify == 'exact' else 'estimated'} Jaccard ≥ {mh.threshold:g}"
    )
    table = Table(title="S-curve")
    table.add_column("Jaccard", justify="right")
    table.add_column("P(candidate)", justify="right")
    for j, p in s_curve(mh.b, mh.r):
        table.add_row(f"{j:.1f}", f"{p:.4f}")
    return Group(line, table)


def report_renderable(report: dict[str, Any]) -> Group:
    """Rich tables for the console: totals per source, the cluster-size histogram, the examples."""
    per = Table(title="MinHash near-duplicates per source")
    for col in ("source", "documents", "in clusters", "removed"):
        per.add_column(col, justify="right" if col != "source" else "left")
    for source, row in sorted(report["per_source"].items()):
        per.add_row(source, f"{row['documents']:,}", f"{row['in_clusters']:,}", f"{row['removed']:,}")
    t = report["total"]
    per.caption = (
        f"{t['clusters']:,} clusters; candidates {t.get('candidates', 0):,}, verified {t.get('verified', 0):,}, "
        f"rejected by Jaccard {t.get('rejected', 0):,}"
    )
    hist = Table(title="cluster sizes")
    hist.add_column("size", justify="right")
    hist.add_column("clusters", justify="right")
    for size, count in list(report["cluster_size_histogram"].items())[:20]:
        hist.add_row(size, f"{count:,}")
    examples = Table(title="example clusters (first 200 characters)", show_lines=True)
    examples.add_column("cluster")
    examples.add_column("member")
    examples.add_column("text", overflow="fold")
    for ex in report["examples"]:
        for m in ex["members"]:
            who = f"{m['shard']}:{m['line']} id={m['id']}" + (" (kept)" if m["kept"] else "")
            examples.add_row(f"{ex['cluster_id']} (size {ex['size']})", who, m["text"].replace("\n", " ⏎ "))
    if not report["examples"]:
        return Group(per)  # no clusters: nothing to histogram or show
    return Group(per, hist, examples)
