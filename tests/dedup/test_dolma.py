"""Dolma dedupe configs (`dolma-kit dedup dolma -c FILE`): Dolma's attribute names and values, exactly.

The expected values in the end-to-end tests are what `dolma dedupe` 1.2.1 wrote for these very documents
(checked by hand against its source, src/deduper.rs); bench/dolma_dedup.py compares on real text.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app, main
from dolma_kit.dedup import dolma as rules
from dolma_kit.dedup.dolma import DolmaDedupe
from dolma_kit.documents import Document
from tests.conftest import write_lines

runner = CliRunner()

DOCS = [
    {
        "id": "a",
        "text": "Hello world.\nThis is a test paragraph with several words in it.\n\nAnother one here.\n",
        "metadata": {"url": "http://x.com/a#f"},
    },
    {
        "id": "b",
        "text": "This is a test paragraph with several words in it.\nNew stuff café naïve.\n",
        "metadata": {"url": "http://x.com/a"},
    },
    {"id": "c", "text": "Hello world.\n\nAnother one here.", "metadata": {"url": "http://x.com/a#f"}},
    {"id": "d", "text": "", "metadata": {"url": "http://x.com/d"}},
    {"id": "e", "text": "naïve café\nnaïve café\n", "metadata": {"url": "http://x.com/e"}},
]


def corpus(tmp_path: Path) -> Path:
    write_lines(tmp_path / "documents" / "src" / "000.jsonl", [{**d, "source": "src"} for d in DOCS])
    return tmp_path


def dolma_config(root: Path, name: str, dedupe: dict[str, Any], suffix: str = ".json") -> Path:
    cfg = {
        "documents": [f"{root}/documents/*/*.jsonl"],
        "dedupe": {"name": name, **dedupe},
        "bloom_filter": {"file": f"{root}/{name}.bloom", "read_only": False, "size_in_bytes": 1 << 20},
        "processes": 1,
    }
    path = root / f"{name}{suffix}"
    path.write_text(json.dumps(cfg) if suffix == ".json" else _yaml(cfg))
    return path


def _yaml(cfg: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(cfg)


def values(root: Path, name: str, attribute: str) -> dict[str, Any]:
    rows = [
        json.loads(line)
        for line in (root / "attributes" / name / "src" / "000.jsonl").read_text().splitlines()
    ]
    return {r["id"]: r["attributes"].get(attribute, "absent") for r in rows}


def run_cli(config: Path, *extra: str) -> str:
    result = runner.invoke(app, ["dedup", "dolma", "-c", str(config), "-p", "1", *extra])
    assert result.exit_code == 0, (result.exception, result.output)
    return result.output


URL = {"documents": {"attribute_name": "bff_duplicate_url", "key": "$.metadata.url"}}
PARAGRAPHS = {"paragraphs": {"attribute_name": "bff_duplicate_paragraph_spans"}}
NGRAMS = {
    "paragraphs": {
        "attribute_name": "bff_duplicate_paragraph_spans",
        "by_ngram": {"ngram_length": 3, "stride": 2, "overlap_threshold": 0.3},
    }
}


def test_url_dedup_compat_writes_dolmas_values(tmp_path: Path) -> None:
    root = corpus(tmp_path)
    output = run_cli(dolma_config(root, "dedupe_url", URL), "--dolma-compat")
    assert values(root, "dedupe_url", "bff_duplicate_url") == {
        "a": "absent",
        "b": "absent",  # raw URLs: `a` and `a#f` differ for Dolma
        "c": [[0, 16, 1]],  # the span ends at the URL's length, not the text's
        "d": "absent",
        "e": "absent",
    }
    assert "Dolma 1.2.1 mode: reproducing document spans" in " ".join(output.split())


def test_url_dedup_default_drops_the_fragment_and_spans_the_text(tmp_path: Path) -> None:
    root = corpus(tmp_path)
    output = run_cli(dolma_config(root, "dedupe_url", URL, ".yaml"))
    got = values(root, "dedupe_url", "bff_duplicate_url")
    assert got["b"] == [[0, len(DOCS[1]["text"]), 1]]
    assert got["c"] == [[0, len(DOCS[2]["text"]), 1]]
    assert got["a"] == got["d"] == got["e"] == "absent"
    assert "differs from Dolma 1.2.1 (pass --dolma-compat to reproduce)" in " ".join(output.split())


def test_paragraph_dedup_compat_writes_dolmas_spans(tmp_path: Path) -> None:
    root = corpus(tmp_path)
    run_cli(dolma_config(root, "dedupe_para", PARAGRAPHS), "--dolma-compat")
    assert values(root, "dedupe_para", "bff_duplicate_paragraph_spans") == {
        "a": [[82, 82, 1]],  # the empty piece after the final newline repeats the blank line
        "b": [[0, 51, 1], [73, 74, 1]],
        "c": [[0, 13, 1], [13, 14, 1], [14, 31, 1]],
        "d": "absent",  # empty text: Dolma writes nothing
        "e": [[11, 22, 1], [22, 23, 1]],  # bytes vs characters: the last span runs past the text (22)
    }


def test_paragraph_dedup_default_spans_include_their_newline(tmp_path: Path) -> None:
    root = corpus(tmp_path)
    run_cli(dolma_config(root, "dedupe_para", PARAGRAPHS))
    got = values(root, "dedupe_para", "bff_duplicate_paragraph_spans")
    assert got["b"] == [[0, 51, 1]]
    assert got["c"] == [[0, 13, 1], [13, 14, 1], [14, 31, 1]]  # keys exclude the separator
    assert got["e"] == [[11, 22, 1]]
    assert got["a"] == []


def test_ngram_dedup_compat_writes_dolmas_scores(tmp_path: Path) -> None:
    root = corpus(tmp_path)
    run_cli(dolma_config(root, "dedupe_ngram", NGRAMS), "--dolma-compat")
    assert values(root, "dedupe_ngram", "bff_duplicate_paragraph_spans") == {
        "a": [[82, 82, 1.0]],
        "b": [[0, 51, 1.0], [73, 74, 1.0]],
        "c": [[0, 13, 1.0], [13, 14, 1.0], [14, 31, 1.0]],
        "d": "absent",
        "e": [[11, 22, 1.0], [22, 23, 1.0]],
    }


def test_config_errors_name_the_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = corpus(tmp_path)
    bad = {
        "unknown key 'colour'": {**URL, "colour": 1},
        "num_partitions": {**URL, "num_partitions": 2},
        "exactly one of": {**URL, **PARAGRAPHS},
        "only field paths": {"documents": {"attribute_name": "x", "key": "$..url"}},
    }
    for message, dedupe in bad.items():
        path = dolma_config(root, "bad", dedupe)
        with pytest.raises(SystemExit) as exit_info:
            main(["dedup", "dolma", "-c", str(path)])
        assert exit_info.value.code == 2
        err = " ".join(capsys.readouterr().err.split())
        assert str(path) in err and message in err, err
    cfg = json.loads(dolma_config(root, "ro", URL).read_text())
    cfg["bloom_filter"]["read_only"] = True
    (root / "ro.json").write_text(json.dumps(cfg))
    with pytest.raises(SystemExit):
        main(["dedup", "dolma", "-c", str(root / "ro.json")])
    assert "decontaminate" in capsys.readouterr().err


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    root = corpus(tmp_path)
    output = run_cli(dolma_config(root, "dedupe_url", URL), "--dry-run")
    assert '"key": "dolma"' in output and "bff_duplicate_url" in output
    assert not (root / "attributes").exists()


# --------------------------------------------------------------------------------------------- the rules


def _cfg(**kw: Any) -> DolmaDedupe:
    return DolmaDedupe(attribute_name="x", **kw)


def test_paragraph_spans_ours_and_dolmas() -> None:
    text = "ab\ncd\n"
    assert list(rules.paragraph_spans(text, _cfg())) == [(0, 3, "ab"), (3, 6, "cd")]
    assert list(rules.paragraph_spans(text, _cfg(compat=True))) == [(0, 3, "ab"), (3, 5, "cd"), (5, 5, "")]
    two = "ab\n\ncd"
    assert list(rules.paragraph_spans(two, _cfg(paragraph_separator="\n\n"))) == [(0, 4, "ab"), (4, 6, "cd")]
    first = next(iter(rules.paragraph_spans(two, _cfg(paragraph_separator="\n\n", compat=True))))
    assert first == (0, 3, "ab")


def test_stride_ours_and_dolmas() -> None:
    assert rules._ngram_starts(8, _cfg(stride=3)) == [0, 3, 6]
    assert rules._ngram_starts(8, _cfg(stride=3, compat=True)) == [0, 1, 4, 7]
    assert rules._ngram_starts(3, _cfg(stride=0)) == rules._ngram_starts(3, _cfg(stride=0, compat=True))


def test_min_words_checks_long_enough_keys_unless_compat() -> None:
    doc = Document(id="1", text="one two three four", metadata={"url": "u"})
    names = ("text",)
    assert rules.check_document(doc, _cfg(documents_key="$.text", min_words=2), names) == ("check", doc.text)
    assert (
        rules.check_document(doc, _cfg(documents_key="$.text", min_words=2, compat=True), names)[0] == "none"
    )
    assert rules.check_document(doc, _cfg(documents_key="$.text", min_words=9), names)[0] == "skip"
    planned = list(rules.plan_paragraphs("one two three\nfour\n", _cfg(min_words=2)))
    assert [p.keys for p in planned] == [[rules.digest(("one two three",))]]
    assert list(rules.plan_paragraphs("one two three\nfour\n", _cfg(min_words=2, compat=True))) == []


def test_digests_separate_parts_and_one_word_ngrams_equal_their_paragraph() -> None:
    assert rules.digest(("a b",)) != rules.digest(("a", "b"))
    assert rules.digest(("ab",)) != rules.digest(("a", "b"))
    planned = list(rules.plan_paragraphs("word\n", _cfg(ngram_length=1, skip_short_paragraphs=True)))
    assert planned[0].keys == [rules.digest(("word",))]


def test_long_texts_split_and_measure_like_short_ones() -> None:
    text = "é\n" * 3 + "ab\n\n" + "x" * 10
    for compat in (False, True):
        cfg = _cfg(compat=compat)
        spans = list(rules.paragraph_spans(text, cfg))
        assert [p for _, _, p in spans] == text.split("\n")
        assert spans[-1][1] == len(text) + compat  # Dolma: "+1 for the newline" even after the last piece
    assert rules.utf8_length("é" * (1 << 21) + "a") == len(("é" * (1 << 21) + "a").encode())


def test_words_are_unicode_word_segments() -> None:
    assert rules.words("U.S.A. costs 3,000.5 — don't!") == [
        "U.S.A",
        ".",
        "costs",
        "3,000.5",
        "—",
        "don't",
        "!",
    ]


def test_overlap_fraction_is_float32_as_dolma_computes_it() -> None:
    paragraph = rules.Paragraph(0, 5, "ngram", [rules.digest((w,)) for w in "abc"])
    assert rules.paragraph_value(paragraph, [True, False, False], _cfg(overlap_threshold=0.3)) == [
        0,
        5,
        0.3333333432674408,
    ]
    assert rules.paragraph_value(paragraph, [True, False, False], _cfg(overlap_threshold=0.5)) is None


def test_only_a_url_key_loses_its_fragment() -> None:
    assert rules.without_fragment("https://x.org/a?b=1#top") == "https://x.org/a?b=1"
    text = "https://x.org/a#b is where the talk was. #notes"
    assert rules.without_fragment(text) == text
    assert rules.without_fragment("ftp://x.org/a#b") == "ftp://x.org/a#b"


def test_json_path() -> None:
    assert rules.json_path("$.metadata.url") == ("metadata", "url")
    assert rules.json_path("$['metadata']['url']") == ("metadata", "url")
    for bad in ("metadata.url", "$.attributes.x", "$.metadata[0]"):
        with pytest.raises(ValueError):
            rules.json_path(bad)


def test_gzip_shards_and_processes_give_the_same_attributes(tmp_path: Path) -> None:
    root = tmp_path / "gz"
    (root / "documents" / "src").mkdir(parents=True)
    for i, part in enumerate((DOCS[:3], DOCS[3:])):
        with gzip.open(root / "documents" / "src" / f"{i:03d}.jsonl.gz", "wt") as f:
            for d in part:
                f.write(json.dumps({**d, "source": "src"}) + "\n")
    path = dolma_config(root, "dedupe_para", PARAGRAPHS)
    path.write_text(path.read_text().replace("*.jsonl", "*.jsonl.gz"))
    result = runner.invoke(app, ["dedup", "dolma", "-c", str(path), "-p", "2", "--dolma-compat"])
    assert result.exit_code == 0, result.output
    second = root / "attributes" / "dedupe_para" / "src" / "001.jsonl.gz"
    with gzip.open(second, "rt") as f:
        rows = [json.loads(line) for line in f]
    assert [r["attributes"].get("bff_duplicate_paragraph_spans", "absent") for r in rows] == [
        "absent",
        [[11, 22, 1], [22, 23, 1]],
    ]


def test_a_pipeline_stage_takes_the_dolma_section(tmp_path: Path) -> None:
    """`dedup exact` with `key: dolma` in a pipeline file: the same run as the Dolma config front end."""
    from dolma_kit.config import Where, from_dict
    from dolma_kit.dedup.exact import ExactDedupConfig, dedup_exact

    root = corpus(tmp_path)
    raw = {
        "documents": [f"{root}/documents/*/*.jsonl"],
        "experiment": "dedupe_url",
        "key": "dolma",
        "processes": 1,
        "dolma": {"attribute_name": "bff_duplicate_url", "documents_key": "$.metadata.url", "compat": True},
    }
    dedup_exact(from_dict(ExactDedupConfig, raw, Where(context="test")))
    assert values(root, "dedupe_url", "bff_duplicate_url")["c"] == [[0, 16, 1]]
    with pytest.raises(Exception, match="go together"):
        from_dict(ExactDedupConfig, {**raw, "key": "url"}, Where(context="test"))
