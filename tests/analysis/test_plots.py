"""The stage panels line up: every waterfall and the stage chart put their axes at the same place."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from dolma_kit.analysis import plots


def axes_left_edge(png: bytes) -> tuple[int, int]:
    """(image width, x of the left spine): the leftmost column that is dark over most of the axes' height."""
    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    dark = (gray < 80).sum(axis=0)
    return gray.shape[1], int(np.flatnonzero(dark > 0.5 * dark.max())[0])


def test_waterfall_panels_share_their_geometry() -> None:
    short = plots.waterfall("mix (code)", 600, [("exact duplicate", 66)], 534)
    long_rule = "gopher measures (other languages) and a rule with a much longer name than any other rule"
    long = plots.waterfall("mix (web)", 1800, [(long_rule, 400), ("c4", 3)], 1397)
    upsampled = plots.waterfall("mix (wiki)", 800, [("near duplicate", 84)], 716, written=1432)
    chart = plots.stage_bars(["tag (demo)", "mix (wiki)"], [4000, 716], [0, 84], [0, 0], [413, 0], [0, 716])
    edges = {axes_left_edge(png) for png in (short, long, upsampled, chart)}
    assert len(edges) == 1, edges  # same width, same left spine, whatever the labels


def test_long_labels_are_wrapped_to_two_lines() -> None:
    assert plots._wrap("short") == "short"
    wrapped = plots._wrap("word " * 40, width=20)
    assert wrapped.count("\n") == 1 and wrapped.endswith("…")
