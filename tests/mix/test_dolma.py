"""Dolma mixer configs run with Dolma 1.2.1's semantics: the expected values below were measured with
`dolma mix` 1.2.1 on the same documents and filters (bench/dolma_mix.py repeats that on real text)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from dolma_kit.config import ConfigError
from dolma_kit.mix import jsonpath
from dolma_kit.mix import stage as mix
from dolma_kit.mix.dolma_run import OVERLAP, PAST_END, _replace_by_character, replace_spans
from dolma_kit.mix.recipe import load_recipe
from dolma_kit.mix.report import dolma_lines
from tests.mix.helpers import read_output, write_recipe, write_source

DOCS: list[dict[str, Any]] = [
    {"id": "int1", "text": "a", "metadata": {"len": 5, "lang": "en"}},
    {"id": "float1", "text": "b", "metadata": {"len": 50, "lang": "de"}},
    {"id": "empty", "text": "c", "metadata": {"len": 5.0}},
    {"id": "missing", "text": "d"},
    {"id": "half", "text": "e", "metadata": {}},
    {"id": "zero", "text": "e", "metadata": {"len": 0}},
]
ATTRS: list[dict[str, Any]] = [
    {"k": [[0, 1, 1]], "n": {"e": [[0, 1, 1.0]]}},
    {"k": [[0, 1, 1.0]]},
    {"k": []},
    {},
    {"k": [[0, 1, 0.5], [0, 1, 2]]},
    {"k": [[0, 1, 0]]},
]
# (include filter, ids `dolma mix` 1.2.1 kept): measured
MEASURED = [
    ("$.attributes[?(@.k)]", ["int1", "float1", "empty", "half", "zero"]),
    ("$.attributes[?(@.k[0])]", ["int1", "float1", "half", "zero"]),
    ("$.attributes[?(@.k[0][2] >= 1.0)]", ["float1"]),
    ("$.attributes[?(@.k[0][2] >= 1)]", ["int1"]),
    ("$.attributes[?(@.k[0][2] == 1)]", ["int1"]),
    ("$.attributes[?(@.k[0][2] > 0.9)]", ["int1", "float1"]),
    ("$.attributes[?(@.k[0][2] <= 1.0)]", ["float1", "half", "zero"]),
    ("$.attributes[?(@.k[0][2] != 1.0)]", ["int1", "empty", "missing", "half", "zero"]),
    ("$.attributes[?(@.k[1][2] > 1)]", ["half"]),
    ("$.attributes[?(!@.k)]", ["missing"]),
    ("$.attributes[?(@.k[0][2] < 0.6 || @.k[0][2] > 0.9)]", ["int1", "float1", "half", "zero"]),
    ("$.metadata[?(@.len > 10)]", ["float1"]),
    ("$.metadata[?(@.len >= 5)]", ["int1", "float1"]),
    ("$.metadata[?(@.lang == 'en')]", ["int1"]),
    ("$.metadata[?(@.len)]", ["int1", "float1", "empty", "zero"]),
    ("$.attributes[?(@.n.e[0][2] > 0.5)]", ["int1"]),
    ("$.attributes.k", ["int1", "float1", "empty", "half", "zero"]),
    ("$.attributes.k[0]", ["int1", "float1", "half", "zero"]),
    ("$.metadata.lang", ["int1", "float1"]),
    ("$[?(@.text == 'a')]", ["int1"]),
    ("$.attributes[?(@.k && @.k[0] && @.k[0][2] > 0.1)]", ["int1", "float1", "half"]),
    ("$.attributes[?(@.k[0][2] > 0.9 && (@.k[0][2] < 0.95 || @.k[0][2] > 0.99))]", ["int1", "float1"]),
]


def merged() -> list[dict[str, Any]]:
    return [{**d, "attributes": a} for d, a in zip(DOCS, ATTRS, strict=True)]


@pytest.mark.parametrize(("query", "kept"), MEASURED)
def test_jsonpath_decides_as_dolma(query: str, kept: list[str]) -> None:
    test = jsonpath.compile_query(jsonpath.parse(query), dolma_numbers=True)
    assert [d["id"] for d in merged() if test(d, [])] == kept


def test_integer_and_float_differ_only_under_dolma_numbers() -> None:
    """Ours: 1 >= 1.0 holds (and the disagreement is noted); Dolma's: it does not."""
    query = jsonpath.parse("$.attributes[?(@.k[0][2] >= 1.0)]")
    ours, theirs = (jsonpath.compile_query(query, dolma_numbers=flag) for flag in (False, True))
    hits: list[str] = []
    assert ours(merged()[0], hits) and hits == [jsonpath.INT_FLOAT]
    assert not theirs(merged()[0], [])
    assert ours(merged()[1], []) and theirs(merged()[1], [])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("$.attributes[?(@.k[-1][2] > 1)]", "negative index"),
        ('$.metadata[?(@.lang == "en")]', "double-quoted string"),
        ("$..k", "recursive descent"),
        ("$.attributes[?(@.k)].x", "a filter must end the query"),
        ("$.attributes[?(@.k >)]", "expected @.path, a number or a 'string'"),
    ],
)
def test_unsupported_jsonpath_is_named(query: str, message: str) -> None:
    with pytest.raises(jsonpath.PathError, match=message):
        jsonpath.parse(query)


def test_attribute_names_read() -> None:
    assert jsonpath.parse("$.attributes[?(@.a[0][2] > 1 && !@.b)]").attribute_names() == {"a", "b"}
    assert jsonpath.parse("$.attributes.pii.email").attribute_names() == {"pii"}
    assert jsonpath.parse("$.metadata[?(@.x)]").attribute_names() == set()
    assert jsonpath.parse("$[?(@.attributes)]").attribute_names() is None


# --------------------------------------------------------------------------------------------- spans


@pytest.mark.parametrize(
    ("text", "spans", "expected", "notes"),
    [  # measured with dolma mix 1.2.1
        ("para one\npara two\npara three", [(0, 9, ""), (18, 29, ""), (0, 4, "<E>")], "para two\n", {PAST_END, OVERLAP}),
        ("überall ünïcode\nzwei", [(0, 16, ""), (16, 21, "")], "", {PAST_END}),
        ("abcdef", [(1, 3, "|E|"), (2, 5, "|E|")], "a|E|def", {OVERLAP}),
        ("a b c", [(2, 3, "<{}>")], "a <b> c", set()),
    ],
)  # fmt: skip
def test_span_replacement_as_dolma(text: str, spans: list, expected: str, notes: set[str]) -> None:
    assert replace_spans(text, spans) == (expected, notes)


def test_span_jumps_equal_dolmas_character_walk() -> None:
    rng = random.Random(1)
    for _ in range(3000):
        text = "".join(rng.choice("ab\nü") for _ in range(rng.randint(0, 12)))
        spans = []
        for _ in range(rng.randint(0, 4)):
            start = rng.randint(0, len(text) + 2)
            spans.append((start, start + rng.randint(0, 5), rng.choice(["", "X", "<{}>"])))
        expected = _replace_by_character(text, sorted(spans, key=lambda s: s[0]))
        assert replace_spans(text, spans)[0] == expected, (text, spans)


# --------------------------------------------------------------------------------------------- end to end


def dolma_config(root: Path, out: str, stream: dict[str, Any]) -> Path:
    """A Dolma mixer config in JSON, as Dolma users write them."""
    data = {
        "streams": [
            {
                "name": "s",
                "documents": [f"{root}/documents/s/*.jsonl.gz"],
                "attributes": ["a"],
                "output": {"path": f"{root}/{out}", "max_size_in_bytes": 100000},
                **stream,
            }
        ],
        "work_dir": {"input": "/tmp/unused-in", "output": "/tmp/unused-out"},
        "processes": 1,
    }
    return write_recipe(root / f"{out}.json", json.dumps(data, indent=1))


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    write_source(tmp_path, "s", DOCS, {"a": [{"a__" + k: v for k, v in a.items()} for a in ATTRS]}, shard="x")
    return tmp_path


def test_output_has_provenance_and_attributes(corpus: Path) -> None:
    cfg = dolma_config(corpus, "out", {"filter": {"exclude": ["$.metadata[?(@.len > 10)]"]}})
    result = mix.mix(load_recipe(str(cfg)), processes=1)
    docs = read_output(corpus / "out")
    assert [d["id"] for d in docs] == ["int1", "empty", "missing", "half", "zero"]
    assert docs[0]["metadata"] == {"len": 5, "lang": "en", "provenance": "x.jsonl.gz:1"}
    assert docs[2]["metadata"] == {"provenance": "x.jsonl.gz:4"}
    assert docs[0]["attributes"] == {"a__k": [[0, 1, 1]], "a__n": {"e": [[0, 1, 1.0]]}}
    assert docs[2]["attributes"] == {}  # Dolma writes the object even when a row has nothing
    stream = result.streams[0]
    assert stream["removed_by"] == {"$.metadata[?(@.len > 10)]": 1}
    assert stream["documents_in"] == stream["kept"] + stream["removed"] == 6


def test_discard_fields_nested_spans_and_min_text_length(corpus: Path) -> None:
    stream = {
        "filter": {"include": ["$.attributes[?(@.a__k)]"]},
        "span_replacement": [{"span": "$.attributes.a__n.e", "min_score": 0.5, "replacement": "[{}]"}],
        "output": {
            "path": f"{corpus}/out",
            "max_size_in_bytes": 1000,
            "discard_fields": ["attributes", "metadata"],
            "min_text_length": 1,
        },
    }
    cfg = dolma_config(corpus, "out", stream)
    result = mix.mix(load_recipe(str(cfg)), processes=1)
    docs = read_output(corpus / "out")
    assert [d["id"] for d in docs] == ["int1", "float1", "empty", "half", "zero"]
    assert docs[0] == {"id": "int1", "text": "[a]", "source": "s", "metadata": {"provenance": "x.jsonl.gz:1"}}
    assert result.streams[0]["spans_replaced"] == {"$.attributes.a__n.e": 1}


def test_a_name_no_row_has_is_no_match_and_said(corpus: Path) -> None:
    """Dolma writes `bff_duplicate_url` only on duplicates: a config naming it must run (it was refused)."""
    cfg = dolma_config(
        corpus, "out", {"filter": {"exclude": ["$.attributes[?(@.bff_duplicate_url[0][2] > 0)]"]}}
    )
    result = mix.mix(load_recipe(str(cfg)), processes=1)
    assert len(read_output(corpus / "out")) == 6
    assert result.streams[0]["dolma"]["absent"] == ["bff_duplicate_url"]
    assert any("never matched: bff_duplicate_url" in line for line in dolma_lines(result.streams[0]["dolma"]))


def test_integer_scores_are_reported_and_reproduced_on_request(corpus: Path) -> None:
    cfg = dolma_config(corpus, "out", {"filter": {"exclude": ["$.attributes[?(@.a__k[0][2] >= 1.0)]"]}})
    ours = mix.mix(load_recipe(str(cfg)), processes=1)
    assert [d["id"] for d in read_output(corpus / "out")] == ["empty", "missing", "half", "zero"]
    assert ours.streams[0]["dolma"]["notes"] == {jsonpath.INT_FLOAT: 1}
    assert "--dolma-compatible reproduces Dolma" in " ".join(dolma_lines(ours.streams[0]["dolma"]))
    theirs = mix.mix(load_recipe(str(cfg)), processes=1, force=True, dolma_compatible=True)
    assert [d["id"] for d in read_output(corpus / "out")] == ["int1", "empty", "missing", "half", "zero"]
    assert "reproduced Dolma: 1 documents" in " ".join(dolma_lines(theirs.streams[0]["dolma"]))


def test_jq_filters(corpus: Path) -> None:
    pytest.importorskip("jq")
    stream = {
        "filter": {
            "syntax": "jq",
            "include": [".attributes.a__k | length > 0"],
            "exclude": ['.metadata.lang == "de"', "(.attributes.a__k // [[0, 0, 0]])[0][2] > 1.5"],
        }
    }
    mix.mix(load_recipe(str(dolma_config(corpus, "out", stream))), processes=1)
    assert [d["id"] for d in read_output(corpus / "out")] == ["int1", "half", "zero"]


def test_jq_errors_name_file_and_line(corpus: Path) -> None:
    pytest.importorskip("jq")
    bad = dolma_config(corpus, "bad", {"filter": {"syntax": "jq", "include": [".attributes | sum("]}})
    with pytest.raises(ConfigError, match=r"bad.json:\d+:\d+: jq filter does not compile"):
        load_recipe(str(bad))
    failing = dolma_config(corpus, "fails", {"filter": {"syntax": "jq", "include": [".attributes.a__k.x"]}})
    with pytest.raises(Exception, match=r"x.jsonl.gz:1: jq filter '.attributes.a__k.x' failed"):
        mix.mix(load_recipe(str(failing)), processes=1)


def test_explain_shows_the_dolma_rules(corpus: Path) -> None:
    from rich.console import Console

    from dolma_kit.mix.report import explain

    cfg = dolma_config(corpus, "out", {"filter": {"exclude": ["$.metadata[?(@.len > 10)]"]}})
    recipe = load_recipe(str(cfg))
    plans, _ = mix.resolve(recipe)
    console = Console(record=True, width=200)
    console.print(explain(recipe, plans, {"s": 1}))
    shown = console.export_text()
    assert "Dolma 1.2.1 mixer (jsonpath)" in shown
    assert "$.metadata[?(@.len > 10)]" in shown


def test_the_run_says_where_it_differs_from_dolma(corpus: Path) -> None:
    """The quirk is told in the command's own table, not only in docs."""
    from typer.testing import CliRunner

    from dolma_kit.cli import app

    cfg = dolma_config(corpus, "out", {"filter": {"exclude": ["$.attributes[?(@.a__k[0][2] >= 1.0)]"]}})
    ran = CliRunner().invoke(app, ["mix", str(cfg), "--processes", "1"], terminal_width=250)
    assert ran.exit_code == 0, ran.output
    words = " ".join(ran.output.replace("│", " ").split())  # table cells fold at the console's width
    assert "differs from Dolma: 1 documents compared an integer with an equal float" in words
    again = CliRunner().invoke(
        app, ["mix", str(cfg), "--processes", "1", "--force", "--dolma-compatible"], terminal_width=250
    )
    assert again.exit_code == 0, again.output
    assert [d["id"] for d in read_output(corpus / "out")] == ["int1", "empty", "missing", "half", "zero"]
    assert "reproduced Dolma: 1 documents" in " ".join(again.output.replace("│", " ").split())


@pytest.mark.parametrize(
    "raw",
    [b'{"id": "a", "text": "x\\u00e9"}  ', b"{}", b'{"id":"b","attributes":{"own":[[0,1,1]]}}', b"[1]"],
)
def test_jq_reads_the_line_as_read_with_the_attributes_merged(raw: bytes) -> None:
    """What jq is given equals the merged document (or is made anew when the line cannot be reused)."""
    from dolma_kit.mix.dolma_run import _jq_input

    obj = json.loads(raw)
    attrs = {"k": [[0, 1, 0.5]]}
    text = _jq_input(obj, attrs, raw, True) if isinstance(obj, dict) else _jq_input({}, attrs, raw, True)
    if isinstance(obj, dict) and "attributes" not in obj:
        assert json.loads(text or "null") == {**obj, "attributes": attrs}
    else:
        assert text is None


def test_min_text_length_counts_bytes_and_max_score_is_exclusive(tmp_path: Path) -> None:
    """Measured with dolma mix 1.2.1: "  ünï  " (3 characters, 6 bytes stripped) passes min_text_length 5;
    a span scoring max_score is not replaced; a metadata that is not an object is replaced by the provenance."""
    docs = [
        {"id": "1", "text": "  ünï  "},
        {"id": "2", "text": "abcd", "metadata": "not an object"},
        {"id": "3", "text": "a b c d e", "metadata": {"x": 1}},
        {"id": "4", "text": ""},
    ]
    rows = [
        {"sp": [[0, 2, 0.2]]},
        {"sp": [[0, 1, 0.7], [1, 2, 0.9]]},
        {"sp": [[2, 3, 0.5], [4, 5, 0.95]]},
        {},
    ]
    write_source(tmp_path, "s", docs, {"a": rows}, shard="x")
    stream = {
        "output": {"path": f"{tmp_path}/out", "max_size_in_bytes": 100000, "min_text_length": 5,
                   "discard_fields": ["attributes"]},
        "span_replacement": [{"span": "$.attributes.sp", "min_score": 0.5, "max_score": 0.9, "replacement": "<{}>"}],
    }  # fmt: skip
    result = mix.mix(load_recipe(str(dolma_config(tmp_path, "out", stream))), processes=1)
    assert [(d["id"], d["text"], d["metadata"]) for d in read_output(tmp_path / "out")] == [
        ("1", "  ünï  ", {"provenance": "x.jsonl.gz:1"}),
        ("2", "<a>bcd", {"provenance": "x.jsonl.gz:2"}),
        ("3", "a <b> c d e", {"x": 1, "provenance": "x.jsonl.gz:3"}),
    ]
    assert result.streams[0]["removed_by"] == {"shorter than min_text_length": 1}


@pytest.mark.parametrize(
    ("key", "kept"),  # measured with dolma mix 1.2.1: "half" gives [false, true]
    [("include", ["int1", "float1"]), ("exclude", ["empty", "missing", "zero"])],
)
def test_jq_filters_with_several_outputs(corpus: Path, key: str, kept: list[str]) -> None:
    pytest.importorskip("jq")
    stream = {"filter": {"syntax": "jq", key: ["(.attributes.a__k // [])[] | .[2] > 0.9"]}}
    mix.mix(load_recipe(str(dolma_config(corpus, "out", stream))), processes=1)
    assert [d["id"] for d in read_output(corpus / "out")] == kept
