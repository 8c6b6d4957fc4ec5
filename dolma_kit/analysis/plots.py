"""The report's plots: matplotlib figures rendered to PNG bytes (Agg, no display, no pyplot global state).

Each function takes the plain numbers from stats.json and returns PNG bytes; the HTML embeds them as base64
`data:` URIs. PNGs carry no timestamp or software tag, so the same numbers give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")
KEPT, REMOVED, REJECTED = "#55A868", "#C44E52", "#8C8C8C"


def _figure(width: float = 7.5, height: float = 3.6) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _height(rows: int) -> float:
    return max(2.2, 0.8 + 0.32 * rows)


def sources(names: Sequence[str], documents: Sequence[int], nbytes: Sequence[int]) -> bytes:
    """Documents and megabytes per source, side by side."""
    fig = _figure(height=_height(len(names)))
    left, right = fig.subplots(1, 2, sharey=True)
    y = range(len(names))
    left.barh(y, documents, color=PALETTE[0])
    left.set_yticks(list(y), list(names))
    left.invert_yaxis()
    left.set_title("documents")
    right.barh(y, [b / 1e6 for b in nbytes], color=PALETTE[1])
    right.set_title("MB (UTF-8)")
    return _png(fig)


def lengths(edges: Sequence[float], hists: dict[str, Sequence[int]]) -> bytes:
    """Documents per character-length bin (log-spaced bins, log x axis), one step line per source."""
    fig = _figure()
    ax = fig.subplots()
    # bin 0 is [0, 1) (empty texts): drawn from 0.5 so it shows on a log axis; the last bin is open-ended
    x = [0.5, *edges[1:], edges[-1] * 10**0.25]
    used = [i for i in range(len(edges)) if any(h[i] for h in hists.values())]
    lo, hi = (used[0], used[-1] + 1) if used else (0, len(edges))
    for i, (name, hist) in enumerate(hists.items()):
        ax.stairs(hist[lo:hi], x[lo : hi + 1], label=name, color=PALETTE[i % len(PALETTE)], linewidth=1.8)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("characters per document")
    ax.set_ylabel("documents")
    ax.legend(fontsize="small")
    return _png(fig)


def horizontal_bars(
    labels: Sequence[str], values: Sequence[float], *, xlabel: str, color: str = PALETTE[0]
) -> bytes:
    """One bar per label, largest first (languages, domains)."""
    fig = _figure(height=_height(len(labels)))
    ax = fig.subplots()
    bars = ax.barh(range(len(labels)), values, color=color)
    ax.bar_label(bars, labels=[f" {v:,}" for v in values], fontsize="small")  # small values stay readable
    ax.set_yticks(range(len(labels)), list(labels))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(values, default=1) * 1.15 or 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(fig)


def grouped_bars(groups: Sequence[str], series: dict[str, Sequence[float]], *, ylabel: str) -> bytes:
    """Bars per group (a source), one colour per series (a dedup method, a PII kind)."""
    fig = _figure()
    ax = fig.subplots()
    n = max(len(series), 1)
    width = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, values, width=width, label=name, color=PALETTE[i % len(PALETTE)])
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_ylabel(ylabel)
    top = max((v for values in series.values() for v in values), default=0)
    ax.set_ylim(0, top * 1.1 if top > 0 else 1)  # all-zero series: an axis from 0, not ±0.05
    ax.yaxis.set_major_locator(MaxNLocator(integer=top >= 5))
    ax.legend(fontsize="small")
    return _png(fig)


def stage_bars(
    labels: Sequence[str], kept: Sequence[int], removed: Sequence[int], rejected: Sequence[int]
) -> bytes:
    """Every stage's documents in, split into kept, removed and rejected (stacked)."""
    fig = _figure(height=_height(len(labels)))
    ax = fig.subplots()
    y = range(len(labels))
    ax.barh(y, kept, color=KEPT, label="kept")
    ax.barh(y, removed, left=kept, color=REMOVED, label="removed")
    ax.barh(
        y,
        rejected,
        left=[k + r for k, r in zip(kept, removed, strict=True)],
        color=REJECTED,
        label="rejected",
    )
    ax.set_yticks(list(y), list(labels))
    ax.invert_yaxis()
    ax.set_xlabel("documents")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(loc="outside lower center", ncols=3, fontsize="small")
    return _png(fig)


def waterfall(title: str, documents_in: int, steps: Sequence[tuple[str, int]], kept: int) -> bytes:
    """Documents in, then one falling bar per removal reason (filter rule, rejects), ending at kept."""
    labels = ["in", *(name for name, _ in steps), "kept"]
    fig = _figure(height=_height(len(labels)))
    ax = fig.subplots()
    ax.barh(0, documents_in, color=PALETTE[0])
    level = documents_in
    for i, (_, n) in enumerate(steps, start=1):
        level -= n
        ax.barh(i, n, left=level, color=REMOVED)
        ax.text(level + n, i, f" −{n:,}", va="center", fontsize="small")
    ax.barh(len(labels) - 1, kept, color=KEPT)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(documents_in, 1) * 1.15)  # room for the "−n" labels
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("documents")
    ax.set_title(title, fontsize="medium")
    return _png(fig)
