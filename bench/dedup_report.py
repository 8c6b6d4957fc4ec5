"""The tables bench/dedup.py prints: the LSH S-curve, the per-tool comparison, ours against the targets.

rich and bench/dedup_corpus.py are imported inside the functions: bench/dedup.py imports this module also
when it runs as a datatrove child, under a venv that has neither.
"""

from __future__ import annotations

import sys
from typing import Any

from _util import mib

TARGET_SIG_PER_CORE = 5_000
TARGET_PRECISION = 0.99
TARGET_RECALL_GAP = 0.02
TARGET_LSH_BYTES = 2 * 10**9


def print_report(result: dict[str, Any]) -> None:
    from dedup_corpus import p_candidate_and_verified, s_curve
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    b, r, t = result["bands"], result["rows"], result["threshold"]
    curve = Table(
        title=f"S-curve for bands {b} × rows {r} = {b * r} permutations; (1/b)^(1/r) = {(1 / b) ** (1 / r):.3f}"
    )
    curve.add_column("Jaccard")
    curve.add_column("P(candidate)", justify="right")
    curve.add_column(f"P(candidate and estimate ≥ {t:g})", justify="right")
    for j in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9):
        curve.add_row(f"{j:.2f}", f"{s_curve(j, b, r):.3f}", f"{p_candidate_and_verified(j, b, r, t):.3f}")
    console.print(curve)

    docs = result["docs"]
    table = Table(
        title=f"MinHash dedup: {docs:,} documents, {result['processes']} processes, true pairs: J ≥ {t:g}"
    )
    for col in ("tool", "wall s", "docs/s", "CPU s", "peak RSS Σ", "peak PSS Σ", "sig docs/CPU-s"):
        table.add_column(col, justify="left" if col == "tool" else "right")
    for col in ("precision", "recall", "S-curve recall", "FP pairs (S-curve)", "hard-neg merges", "pairs"):
        table.add_column(col, justify="right")
    for tool, row in result["tools"].items():
        sig = row.get("signature", {}).get("docs_per_cpu_s")
        table.add_row(
            tool,
            f"{row['wall_s']:.1f}",
            f"{docs / row['wall_s']:,.0f}",
            f"{row['cpu_s']:.1f}",
            mib(row["peak_rss"]),
            mib(row["peak_pss"]),
            f"{sig:,.0f}" if sig else "-",
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['expected_recall']:.4f}",
            f"{len(row['false_positive_j'])} ({row['expected_false_positives']:.0f})",
            str(row["hard_negative_merges"]),
            f"{row['predicted_pairs']:,}",
        )
    console.print(table)
    tools = result["tools"]
    if "ours" in tools:
        for peer in ("datatrove", "datasketch"):
            if peer in tools:
                ratio = tools[peer]["wall_s"] / tools["ours"]["wall_s"]
                sig_o = tools["ours"].get("signature", {}).get("docs_per_cpu_s")
                sig_p = tools[peer].get("signature", {}).get("docs_per_cpu_s")
                sig = f", signatures per core {sig_o / sig_p:.1f}×" if sig_o and sig_p else ""
                console.print(f"ours vs {peer}: docs/s {ratio:.1f}×{sig}")
    if "ours" in tools:
        console.print(targets_table(result))
    loads = ", ".join(f"{tool} {row['load_1min_after']:.1f}" for tool, row in tools.items())
    console.print(
        f"1-minute load average after each tool (others' work shares the cores when > processes): {loads}"
    )
    for tool, row in tools.items():
        if row.get("steps_s"):
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in row["steps_s"].items())
            console.print(f"{tool} steps: {steps}")
        fp = row["false_positive_j"]
        if fp:
            console.print(
                f"{tool}: {len(fp)} false-positive pairs, J from {fp[0]:.3f} to {fp[-1]:.3f} (median {fp[len(fp) // 2]:.3f})"
            )


def targets_table(result: dict[str, Any]) -> Any:
    """Ours against the issue's targets, one line each."""
    from rich.table import Table

    ours = result["tools"]["ours"]
    sig = ours["signature"]["docs_per_cpu_s"]
    gap = ours["recall"] - ours["expected_recall"]
    rows = [
        (f"signatures ≥ {TARGET_SIG_PER_CORE:,} docs/s per core", f"{sig:,.0f}", sig >= TARGET_SIG_PER_CORE),
        (
            f"precision ≥ {TARGET_PRECISION}",
            f"{ours['precision']:.4f}",
            ours["precision"] >= TARGET_PRECISION,
        ),
        ("no hard-negative merges", str(ours["hard_negative_merges"]), ours["hard_negative_merges"] == 0),
        (
            f"recall within {TARGET_RECALL_GAP * 100:g} points of the S-curve",
            f"{ours['recall']:.4f} vs {ours['expected_recall']:.4f}",
            abs(gap) <= TARGET_RECALL_GAP,
        ),
    ]
    table = Table(title="ours against the targets")
    for col in ("target", "measured", "verdict"):
        table.add_column(col)
    for name, value, ok in rows:
        table.add_row(name, value, "[green]met[/]" if ok else "[red]missed[/]")
    return table
