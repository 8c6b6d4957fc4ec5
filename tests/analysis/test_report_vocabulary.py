"""Issue 16 item 2 on the report's side: readable details, gap-free per-source loss, a stage chart that adds up."""

from __future__ import annotations

import math

from dolma_kit.analysis.plots import stage_segments
from dolma_kit.analysis.report_stages import _details
from dolma_kit.analysis.report_training import source_loss


def test_mix_details_say_how_many_spans_were_replaced_not_spans_equals() -> None:
    row = {
        "action": "removes",
        "removed_by": {"gopher": 12},
        "spans": 1204,
        "spans_what": "spans replaced",
        "written": 50,
        "kept": 50,
        "extra": {},
    }
    details = _details(row, {})
    assert "spans =" not in details
    assert details == "gopher: 12; 1,204 spans replaced"


def test_per_source_train_loss_is_a_running_mean_without_gaps() -> None:
    losses = [{"web": 4.0, "code": 2.0}, {"web": 3.0}, {"web": 2.0, "code": None}, {"code": 1.0}]
    train = [{"step": i + 1, "loss_by_source": d} for i, d in enumerate(losses)]
    assert source_loss(train, "code") == ([1, 4], [2.0, 1.5])  # only the steps whose batch held code
    steps, values = source_loss(train, "web", window=2)
    assert steps == [1, 2, 3] and values == [4.0, 3.5, 2.5]
    assert not any(math.isnan(v) for v in values)


def test_stage_chart_keeps_removed_inside_the_input_of_an_upsampled_stream() -> None:
    """A mix stream: 10 in, 6 kept, 3 removed, 1 rejected, written twice (6 copies more)."""
    documents_in = 10
    segments = {
        name: (widths, lefts) for name, _, _, widths, lefts in stage_segments([6], [3], [1], None, [6])
    }
    removed_w, removed_left = segments["removed"]
    rejected_w, rejected_left = segments["rejected"]
    assert removed_left[0] + removed_w[0] <= documents_in
    assert rejected_left[0] + rejected_w[0] == documents_in
    again = segments["written again (up-sampling, beyond in)"]
    assert again == ([6], [documents_in])
