"""A Dolma stream decodes the attributes only span_replacement reads for kept documents alone
(`rows.LateAttributes`): what it writes and reports must not change."""

from __future__ import annotations

import json
from pathlib import Path

from dolma_kit.mix import stage as mix
from dolma_kit.mix.recipe import load_recipe
from tests.mix.helpers import read_output, write_recipe, write_source

DOCS = [
    {"id": "keep", "text": "mail me at a@b.c now"},
    {"id": "drop", "text": "short"},
    {"id": "keep2", "text": "nothing to mask here"},
]
ROWS_A = [
    {"a__q": [[0, 20, 1.0]], "a__email": [[11, 16, 1.0]]},
    {"a__q": [[0, 5, 0.0]], "a__url": [[0, 1, 1]]},
    {"a__q": [[0, 20, 1.0]]},
]
ROWS_B = [{"a__email": [[0, 4, 1.0]]}, {}, {}]  # a later experiment: its span wins for the same name


def _run(tmp_path: Path, discard: list[str]) -> tuple[list[dict], dict]:
    write_source(tmp_path, "s", DOCS, {"a": ROWS_A, "b": ROWS_B}, shard="x")
    stream = {
        "name": "s",
        "documents": [f"{tmp_path}/documents/s/*.jsonl.gz"],
        "attributes": ["a", "b"],
        "output": {"path": f"{tmp_path}/out", "max_size_in_bytes": 100000, "discard_fields": discard},
        "filter": {"exclude": ["$.attributes[?(@.a__q && @.a__q[0] && @.a__q[0][2] < 0.5)]"]},
        "span_replacement": [
            {"span": "$.attributes.a__email", "min_score": 0.5, "replacement": "|||EMAIL|||"},
            {"span": "$.attributes.a__url", "min_score": 0.5, "replacement": "|||URL|||"},
        ],
    }
    cfg = {"streams": [stream], "work_dir": {"input": "/tmp/i", "output": "/tmp/o"}, "processes": 1}
    path = write_recipe(tmp_path / "cfg.json", json.dumps(cfg))
    result = mix.mix(load_recipe(str(path)), processes=1)
    return read_output(tmp_path / "out"), result.streams[0]


def test_late_spans_replace_as_eager_ones_and_names_on_dropped_rows_count(tmp_path: Path) -> None:
    plan = mix.resolve(load_recipe(str(_write(tmp_path))))[0][0]
    assert plan.dolma is not None and plan.dolma.late == {"a__email", "a__url"}
    assert plan.picks == (("a__q",), ("a__q",))  # the filter's name alone is decoded for every row
    docs, summary = _run(tmp_path, ["attributes"])
    assert [(d["id"], d["text"]) for d in docs] == [
        ("keep", "|||EMAIL||| me at a@b.c now"),
        ("keep2", DOCS[2]["text"]),
    ]
    assert summary["spans_replaced"] == {"$.attributes.a__email": 1, "$.attributes.a__url": 0}
    assert summary["dolma"]["absent"] == []  # a__url is only on the dropped row, and was seen there


def test_kept_attributes_are_decoded_whole(tmp_path: Path) -> None:
    """Without `discard_fields: [attributes]` every name is written, so none is late."""
    docs, _ = _run(tmp_path, [])
    assert docs[0]["attributes"] == {"a__q": [[0, 20, 1.0]], "a__email": [[0, 4, 1.0]]}


def _write(tmp_path: Path) -> Path:
    _run(tmp_path / "plan", ["attributes"])
    return tmp_path / "plan" / "cfg.json"
