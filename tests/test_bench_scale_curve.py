"""bench/scale_curve.py's logic that decides its figures: the verdict, the line fit, the planted copies.

The benchmark itself runs every stage at three sizes (minutes); these checks take milliseconds.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def scale_curve() -> ModuleType:
    """The script loaded by path; bench/ is on sys.path only while it imports its siblings."""
    spec = importlib.util.spec_from_file_location("bench_scale_curve", BENCH / "scale_curve.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_verdict_holds_cpu_per_document_to_ten_percent(scale_curve: ModuleType) -> None:
    assert scale_curve.verdict([2.0, 2.1, 2.19]) == ("linear", pytest.approx(0.095))
    assert scale_curve.verdict([2.0, 2.0, 1.78])[0] == "not linear"  # cheaper per document counts too
    assert scale_curve.verdict([2.0, 2.5, 3.0])[0] == "not linear"


def test_fit_line_separates_marginal_from_fixed_cost(scale_curve: ModuleType) -> None:
    # 6 CPU-s of start-up and 2 ms a document: the per-document figure falls, the slope does not
    docs = [5_000, 20_000, 80_000]
    slope, fixed = scale_curve.fit_line(docs, [6 + 0.002 * n for n in docs])
    assert slope == pytest.approx(0.002)
    assert fixed == pytest.approx(6.0)
    assert scale_curve.segment_slopes(docs, [6 + 0.002 * n for n in docs]) == [pytest.approx(0.002)] * 2
    # a resolve step that grows with n²: each segment dearer than the one before
    first, last = scale_curve.segment_slopes(docs, [6 + 1e-8 * n * n for n in docs])
    assert scale_curve.verdict([first, last])[0] == "not linear"


def test_planted_copies_point_at_earlier_documents(scale_curve: ModuleType) -> None:
    docs = [scale_curve.scale_document(0, i) for i in range(300)]
    assert docs == [scale_curve.scale_document(0, i) for i in range(300)]  # seeded: same bytes each time
    by_id = {d["id"]: d for d in docs}
    planted = [d for d in docs if "planted" in d["metadata"]]
    kinds = {d["metadata"]["planted"] for d in planted}
    assert kinds == {"exact_copy", "near_copy"} and 10 <= len(planted) <= 60
    for doc in planted:
        original = by_id[doc["metadata"]["copy_of"]]
        assert original["id"] < doc["id"]
        same = original["text"] == doc["text"]
        assert same == (doc["metadata"]["planted"] == "exact_copy")
