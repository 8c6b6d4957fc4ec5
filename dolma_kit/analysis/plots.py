"""The report's plots: matplotlib figures rendered to PNG bytes (Agg, no display, no pyplot global state).

Each function takes the plain numbers from stats.json and returns PNG bytes; the HTML embeds them as base64
`data:` URIs. PNGs carry no timestamp or software tag, so the same numbers give the same bytes.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")
KEPT, REMOVED, REJECTED, FLAGGED = "#55A868", "#C44E52", "#8C8C8C", "#E8A33D"
FIXED_WIDTH, LABEL_WIDTH = 7.5, 2.7
"""Stage and waterfall panels: figure width and the label column, in inches (the same for every panel)."""


def _matplotlib() -> tuple[Any, Any]:
    """(Figure, FigureCanvasAgg), imported on the first plot: planning a pipeline imports this module (through
    the report stage's declaration) and never draws, so it should not pay for matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg


def MaxNLocator(**kw: Any) -> Any:
    """matplotlib's `MaxNLocator`, imported when a plot first needs it."""
    from matplotlib.ticker import MaxNLocator as locator

    return locator(**kw)


def _figure(width: float = 7.5, height: float = 3.6) -> Figure:
    figure, canvas = _matplotlib()
    fig = figure(figsize=(width, height), dpi=100, layout="constrained")
    canvas(fig)
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


def _wrap(label: str, width: int = 34) -> str:
    """At most two lines of `width` characters, so a long filter rule cannot widen the label column."""
    lines = textwrap.wrap(label, width) or [""]
    if len(lines) > 2:
        lines = [lines[0], lines[1][: width - 1] + "…"]
    return "\n".join(lines)


def _fixed_figure(rows: int, lines: int = 0) -> tuple[Figure, Any]:
    """A figure whose axes sit at fixed distances (in inches) from its edges: every panel made here has the
    same width and the same label column, so stacked panels line up whatever their labels."""
    height = max(2.0, 1.1 + 0.34 * rows + 0.12 * lines)
    figure, canvas = _matplotlib()
    fig = figure(figsize=(FIXED_WIDTH, height), dpi=100)
    canvas(fig)
    fig.subplots_adjust(
        left=LABEL_WIDTH / FIXED_WIDTH,
        right=1 - 0.3 / FIXED_WIDTH,
        top=1 - 0.4 / height,
        bottom=0.55 / height,
    )
    ax = fig.subplots()
    return fig, ax


def stage_bars(
    labels: Sequence[str],
    kept: Sequence[int],
    removed: Sequence[int],
    rejected: Sequence[int],
    flagged: Sequence[int] | None = None,
    repeats: Sequence[int] | None = None,
) -> bytes:
    """Every stage's documents in, stacked: kept, written again (up-sampling), removed, rejected; for a
    marking stage (`flagged` given, `removed` 0) the flagged part of what it passes on is drawn apart."""
    n = len(labels)
    fig, ax = _fixed_figure(n + 1, sum(_wrap(label).count("\n") for label in labels))
    y = list(range(n))
    for name, color, hatch, values, left in stage_segments(kept, removed, rejected, flagged, repeats):
        if any(values) or name.startswith("kept"):
            ax.barh(y, values, left=left, color=color, label=name, hatch=hatch, alpha=0.55 if hatch else 1.0)
    ax.set_yticks(y, [_wrap(label) for label in labels], fontsize="small")
    ax.invert_yaxis()
    ax.set_title("every stage: documents in, and what became of them", fontsize="medium", loc="left")
    ax.set_xlabel("documents")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.subplots_adjust(bottom=1.1 / fig.get_figheight())  # the legend goes below the axes, centred on them
    box = ax.get_position()
    fig.legend(loc="lower center", bbox_to_anchor=((box.x0 + box.x1) / 2, 0.01), ncols=2, fontsize="x-small")
    return _png(fig)


Segment = tuple[str, str, str | None, list[int], list[int]]
"""(legend name, colour, hatch, widths, left edges) of one stacked part of `stage_bars`, one value a stage."""


def stage_segments(
    kept: Sequence[int],
    removed: Sequence[int],
    rejected: Sequence[int],
    flagged: Sequence[int] | None = None,
    repeats: Sequence[int] | None = None,
) -> list[Segment]:
    """The stacked parts of each stage's bar, in drawing order. kept, removed and rejected add up to the
    stage's input, so they come first and end at "in"; the copies an up-sampled stream writes again are
    extra, drawn past "in". (Stacked after kept, they pushed removed past the input's end.)"""
    n = len(kept)
    flagged = list(flagged or [0] * n)
    clean = [k - f for k, f in zip(kept, flagged, strict=True)]
    out: list[Segment] = []
    left = [0] * n
    for values, color, name, hatch in (
        (clean, KEPT, "kept (passed on)", None),
        (flagged, FLAGGED, "flagged, not removed (attribute stages)", None),
        (list(removed), REMOVED, "removed", None),
        (list(rejected), REJECTED, "rejected", None),
        (list(repeats or [0] * n), KEPT, "written again (up-sampling, beyond in)", "///"),
    ):
        out.append((name, color, hatch, values, left))
        left = [a + b for a, b in zip(left, values, strict=True)]
    return out


def waterfall(
    title: str, documents_in: int, steps: Sequence[tuple[str, int]], kept: int, written: int | None = None
) -> bytes:
    """Documents in, then one falling bar per removal reason (filter rule, rejects), ending at kept; with
    `written` above kept (an up-sampled mix stream), a rising bar for the copies and the documents written."""
    labels = ["in", *(name for name, _ in steps), "kept"]
    up = written is not None and written > kept
    if up:
        labels += [f"+ written again (×{written / max(kept, 1):.3g})", "written"]
    wrapped = [_wrap(label) for label in labels]
    fig, ax = _fixed_figure(len(labels), sum(w.count("\n") for w in wrapped))
    top = max(documents_in, written or 0, 1)
    ax.barh(0, documents_in, color=PALETTE[0])
    ax.text(documents_in, 0, f" {documents_in:,}", va="center", fontsize="small")
    level = documents_in
    for i, (_, n) in enumerate(steps, start=1):
        level -= n
        ax.barh(i, n, left=level, color=REMOVED)
        ax.text(level + n, i, f" −{n:,}", va="center", fontsize="small")
    k = len(steps) + 1
    ax.barh(k, kept, color=KEPT)
    ax.text(kept, k, f" {kept:,}", va="center", fontsize="small")
    if up and written is not None:
        ax.barh(k + 1, written - kept, left=kept, color=KEPT, hatch="///", alpha=0.55)
        ax.text(written, k + 1, f" +{written - kept:,}", va="center", fontsize="small")
        ax.barh(k + 2, written, color=PALETTE[4])
        ax.text(written, k + 2, f" {written:,}", va="center", fontsize="small")
    ax.set_yticks(range(len(labels)), wrapped, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.18)  # room for the "−n" labels
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("documents")
    ax.set_title(title, fontsize="medium", loc="left")
    return _png(fig)


# --------------------------------------------------------------------------------------------- training


Series = tuple[Sequence[float], Sequence[float]]
"""(steps, values) of one line; values may hold NaN where a record had none (a source absent from a batch)."""


def training_loss(train: Series, held_out: Series, train_by_source: dict[str, Series]) -> bytes:
    """Left: train loss per logged step and held-out loss per evaluation; right: train loss per source, as
    `report_training.source_loss` gives it (a running mean over the records that held the source: no gaps)."""
    fig = _figure(width=10.5, height=3.6)
    left, right = fig.subplots(1, 2, sharey=True)
    left.plot(*train, color=PALETTE[0], linewidth=1.4, label="train")
    if held_out[0]:
        left.plot(*held_out, color=PALETTE[3], marker="o", linewidth=1.4, label="held-out")
    left.set_title("loss", fontsize="medium")
    left.set_xlabel("step")
    left.set_ylabel("cross-entropy (nats / token)")
    left.legend(fontsize="small")
    for i, (name, (steps, values)) in enumerate(train_by_source.items()):
        right.plot(steps, values, color=PALETTE[i % len(PALETTE)], linewidth=1.2, label=name)
    right.set_title("train loss by source: running mean of its batches", fontsize="medium")
    right.set_xlabel("step")
    if train_by_source:
        right.legend(fontsize="small")
    return _png(fig)


def training_progress(held_out_by_source: dict[str, Series], lr: Series, tokens_per_s: Series) -> bytes:
    """Held-out loss per source at each evaluation, the learning rate, and throughput, by step."""
    fig = _figure(width=10.5, height=3.2)
    a, b, c = fig.subplots(1, 3)
    for i, (name, (steps, values)) in enumerate(held_out_by_source.items()):
        a.plot(steps, values, color=PALETTE[i % len(PALETTE)], marker="o", linewidth=1.2, label=name)
    a.set_title("held-out loss by source", fontsize="medium")
    if held_out_by_source:
        a.legend(fontsize="x-small")
    b.plot(*lr, color=PALETTE[4], linewidth=1.4)
    b.set_title("learning rate", fontsize="medium")
    b.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    c.plot(*tokens_per_s, color=PALETTE[5], linewidth=1.2)
    c.set_ylim(bottom=0)
    c.set_title("tokens / s", fontsize="medium")
    for ax in (a, b, c):
        ax.set_xlabel("step")
    return _png(fig)
