"""The tables bench/tag.py prints: throughput, agreement (summary, by rule, by kind), memory growth.

The targets the tables colour against live here with them, so a changed target changes one place.
"""

from __future__ import annotations

from _util import Measured, mib
from rich.table import Table
from tag_agreement import KNOWN_CAUSES, Agreement
from tag_runner import C4_LIKE_DOLMA, GOPHER_LIKE_DOLMA

TARGET_SPEEDUP = 8.0
TARGET_AGREEMENT = 99.0
TARGET_MEMORY_GROWTH = 10.0


def throughput_table(rows: list[tuple[str, Measured]], docs: int, text_mb: float) -> Table:
    table = Table(title=f"Throughput: {docs:,} documents, {text_mb:,.1f} MB of text")
    columns = ("run", "wall s", "docs/s", "MB/s", "CPU s", "CPU ms/doc", "peak RSS (sum)", "peak PSS (sum)")
    for col in (*columns, "other CPU s"):
        table.add_column(col, justify="left" if col == "run" else "right", no_wrap=col != "run")
    for name, m in rows:
        table.add_row(
            name,
            f"{m.wall_s:,.1f}",
            f"{docs / m.wall_s:,.0f}",
            f"{text_mb / m.wall_s:,.2f}",
            f"{m.cpu_s:,.1f}",
            f"{1000 * m.cpu_s / docs:,.2f}",
            mib(m.peak_rss),
            mib(m.peak_pss),
            f"{m.other_cpu_s:,.1f}",
        )
    table.caption = (
        "wall and CPU include start-up; memory is summed over the process tree; other CPU s = what the rest "
        "of the machine used meanwhile (more than a few % of CPU s: the cores were shared, timings inflated)"
    )
    return table


def agreement_tables(results: list[Agreement]) -> list[Table]:
    title = f"Agreement with Dolma's document-level decisions (target ≥ {TARGET_AGREEMENT:g}%)"
    summary = Table(title=title)
    columns = ("decision", "docs", "both keep", "both drop", "only Dolma keeps", "only ours keeps", "agree")
    for col in (*columns, "disagreements not explained by a documented difference"):
        summary.add_column(col, justify="left" if col == "decision" else "right")
    for a in results:
        style = "green" if a.percent >= TARGET_AGREEMENT else "red"
        summary.add_row(
            a.name,
            f"{a.docs:,}",
            f"{a.both_keep:,}",
            f"{a.both_drop:,}",
            f"{a.only_dolma_keeps:,}",
            f"{a.only_ours_keeps:,}",
            f"[{style}]{a.percent:.2f}%[/]",
            f"{a.unexplained:,}",
        )
    summary.caption = (
        "Gopher: ours as benchmarked (the paper's rules). Gopher like-for-like: ours as "
        f"`{GOPHER_LIKE_DOLMA}` (Dolma 1.2.1's definitions), its `pass` vs Dolma's decision. "
        "C4 defaults: ours as benchmarked (TFDS: 5 words per line, 3 sentences). "
        f"C4 like-for-like: ours as `{C4_LIKE_DOLMA}`, Dolma's line rule and no sentence rule."
    )
    diffs = Table(title="Disagreements by rule (a document can count under several rules)")
    for col in (
        "decision",
        "rule",
        "fires only in",
        "docs",
        "examples (kind; Dolma value, ours value)",
        "why",
    ):
        diffs.add_column(col, justify="right" if col == "docs" else "left")
    for a in results:
        for (rule, side), n in sorted(a.diffs.items(), key=lambda kv: -kv[1]):
            examples = "\n".join(a.examples[f"{rule}|{side}"])
            why = KNOWN_CAUSES.get((rule, side), "[red]not a documented difference[/]")
            diffs.add_row(a.name, rule, side, f"{n:,}", examples, why)
    kinds = Table(title="Keep rates by generated document kind (Dolma / ours, and agreement)")
    kinds.add_column("kind")
    kinds.add_column("docs", justify="right")
    for a in results:
        kinds.add_column(f"{a.name}: keep D / O", justify="right")
        kinds.add_column("agree", justify="right")
    for kind in sorted(results[0].by_kind, key=lambda k: -results[0].by_kind[k][0]):
        cells = [kind, f"{results[0].by_kind[kind][0]:,}"]
        for a in results:
            n, dk, ok, ag = a.by_kind[kind]
            cells += [f"{100 * dk / n:.0f}% / {100 * ok / n:.0f}%", f"{100 * ag / n:.1f}%"]
        kinds.add_row(*cells)
    return [summary, diffs, kinds]


def memory_table(memory: list[tuple[int, Measured]]) -> tuple[Table, dict[str, float]]:
    """Peak memory of the small and the 10x run, and the growth in % (RSS and PSS sums)."""
    (_, small), (_, large) = memory
    title = f"Peak memory of dolma-kit tag, 10× the input (target growth < {TARGET_MEMORY_GROWTH:g}%)"
    table = Table(title=title)
    for col in ("documents", "wall s", "docs/s", "peak RSS (sum)", "peak PSS (sum)", "other CPU s"):
        table.add_column(col, justify="right")
    for n, m in memory:
        table.add_row(
            f"{n:,}",
            f"{m.wall_s:,.1f}",
            f"{n / m.wall_s:,.0f}",
            mib(m.peak_rss),
            mib(m.peak_pss),
            f"{m.other_cpu_s:,.1f}",
        )
    growth = {
        "rss": 100 * (large.peak_rss / small.peak_rss - 1),
        "pss": 100 * (large.peak_pss / small.peak_pss - 1),
    }
    table.add_row("growth", "", "", f"{growth['rss']:+.1f}%", f"{growth['pss']:+.1f}%", "", style="bold")
    return table, growth
