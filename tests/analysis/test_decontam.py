"""Decontamination on planted leaks: contaminated documents and exact paragraph spans; clean documents stay clean."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dolma_kit.analysis.decontam import DecontamConfig, decontaminate, match_documents
from dolma_kit.analysis.evalset import EvalSet, build_eval_set
from dolma_kit.cli import app
from dolma_kit.errors import DolmaKitError
from tests.analysis.conftest import FORUM_LEAK, LEAK, SHORT_EVAL, Pipeline, read_jsonl
from tests.conftest import write_lines

PASSAGE_B = (
    "In 1887 the observatory recorded forty-two clear nights, more than in any year since its founding, "
    "and the director wrote that the new lens had repaid its cost."
)


def attributes(root: Path, experiment: str) -> dict[str, dict]:
    out = {}
    for path in sorted((root / "attributes" / experiment).glob("*/*.jsonl")):
        for row in read_jsonl(path):
            out[row["id"]] = row["attributes"]
    return out


def test_planted_leaks_in_the_pipeline_corpus(pipeline: Pipeline) -> None:
    attrs = attributes(pipeline.root, "dc")
    contaminated = {i for i, a in attrs.items() if a["dc__decontam__contaminated"][0][2] == 1.0}
    assert contaminated == {"web-leak-1", "forum-leak-1"}
    # exact paragraph spans: the planted paragraph only, not its neighbours
    web_text = next(
        d for d in read_jsonl(pipeline.root / "documents/web/part-0001.jsonl") if d["id"] == "web-leak-1"
    )
    start = web_text["text"].index("THE COMMITTEE")
    end = web_text["text"].index("\n", start)
    assert attrs["web-leak-1"]["dc__decontam__contaminated_paragraph"] == [[start, end, 1.0]]
    assert attrs["web-leak-1"]["dc__decontam__overlap_ngrams"][0][2] == len(LEAK.split()) - 13 + 1
    forum = FORUM_LEAK["text"]
    start = forum.index("which RIVER")
    assert attrs["forum-leak-1"]["dc__decontam__contaminated_paragraph"] == [
        [start, forum.index("\n", start), 1.0]
    ]
    # a clean document sharing words (not 13 in a row) with the passage stays clean
    assert attrs["web-clean-1"]["dc__decontam__overlap_ngrams"][0][2] == 0.0
    assert "dc__decontam__contaminated_paragraph" not in attrs["web-clean-1"]


def test_report_lists_leaks_per_source(pipeline: Pipeline) -> None:
    report = json.loads((pipeline.root / "attributes/dc/decontamination_report.json").read_text())
    assert report["contaminated"] == 2 and report["documents"] == 17
    assert report["eval_files"][0]["texts"] == 3 and report["eval_files"][0]["texts_skipped_short"] == 1
    assert report["gram_lengths"] == [13, len(SHORT_EVAL.split())]
    (web,) = report["per_source"]["web"]["leaks"]
    assert (web["id"], web["line"], web["eval_files"]) == ("web-leak-1", 3, [str(pipeline.eval_file)])
    assert web["snippet"].startswith("THE COMMITTEE AGREED")
    assert report["per_source"]["wiki"] == {"documents": 4, "contaminated": 0, "leaks": []}


def test_matching_is_normalised_and_per_paragraph(tmp_path: Path) -> None:
    eval_file = write_lines(tmp_path / "a.jsonl", [{"q": {"text": LEAK}}, {"q": {"text": PASSAGE_B}}])
    evals = build_eval_set([str(eval_file)], field="q.text", ngram=13, min_words=8)
    assert evals.hashes.dtype == np.uint64 and np.all(np.diff(evals.hashes.astype(np.float64)) >= 0)
    texts = [
        "Intro.\n" + PASSAGE_B.replace(" ", "   ").replace("1887", "1888") + "\nOutro line here.",
        "Nothing here that matches anything at all in the evaluation data, just words.",
        "",
        "Half: "
        + " ".join(LEAK.split()[:14])
        + "\n"
        + " ".join(LEAK.split()[14:]),  # a leak split in two lines
    ]
    m = match_documents(texts, evals, 13)
    # digits normalise to 0, so 1887 → 1888 still matches; runs of spaces collapse
    assert m[0].grams == len(PASSAGE_B.split()) - 12 and m[0].paragraphs == [
        (7, 7 + len(texts[0].split("\n")[1]))
    ]
    assert m[1].grams == 0 and m[1].paragraphs == [] and m[2].words == 0
    # grams across the line break mark both paragraphs: 16 of 28 words' grams still match
    assert m[3].grams == len(LEAK.split()) - 12 and len(m[3].paragraphs) == 2
    assert m[3].covered_words == len(LEAK.split())


def test_eval_formats_and_file_attribution(tmp_path: Path) -> None:
    txt = tmp_path / "b.txt"
    txt.write_text(f"{PASSAGE_B[:60]}\n{PASSAGE_B[60:]}\n\nshort\n")
    pq.write_table(pa.table({"prompt": [LEAK]}), tmp_path / "c.parquet")
    docs = write_lines(
        tmp_path / "corpus/documents/s/p.jsonl",
        [
            {"id": "1", "text": "x\n" + PASSAGE_B},
            {"id": "2", "text": LEAK.lower()},
            {"id": "3", "text": "clean"},
        ],
    )
    txt_result = decontaminate(
        DecontamConfig(eval=[str(txt)], documents=[str(docs)], experiment="t", processes=1)
    )
    assert txt_result.report["eval_files"][0]["texts"] == 2  # blank-line separated blocks
    assert [leak["id"] for leak in txt_result.report["per_source"]["s"]["leaks"]] == ["1"]
    (tmp_path / "array.json").write_text(json.dumps([{"text": LEAK}], indent=1))
    with pytest.raises(
        DolmaKitError, match=r"array\.json:1: malformed JSON.*JSON Lines, parquet or \.txt\)$"
    ):
        decontaminate(
            DecontamConfig(eval=[str(tmp_path / "array.json")], documents=[str(docs)], experiment="j")
        )
    with pytest.raises(DolmaKitError, match="no column 'text'"):
        decontaminate(
            DecontamConfig(eval=[str(tmp_path / "c.parquet")], documents=[str(docs)], experiment="p")
        )
    result = decontaminate(
        DecontamConfig(
            eval=[str(txt), str(tmp_path / "c.parquet")],
            documents=[str(docs)],
            experiment="p",
            eval_field="prompt",
            processes=1,
        )
    )
    leaks = {leak["id"]: leak["eval_files"] for leak in result.report["per_source"]["s"]["leaks"]}
    assert leaks == {"1": [str(txt)], "2": [str(tmp_path / "c.parquet")]}


def test_min_overlap_and_changed_settings(tmp_path: Path) -> None:
    eval_file = write_lines(tmp_path / "e.jsonl", [{"text": LEAK}])
    half = " ".join(LEAK.split()[:15])  # 3 matching 13-grams
    docs = write_lines(
        tmp_path / "corpus/documents/s/p.jsonl", [{"id": "1", "text": half}, {"id": "2", "text": LEAK}]
    )
    config = DecontamConfig(
        eval=[str(eval_file)], documents=[str(docs)], experiment="m", min_overlap=4, processes=1
    )
    result = decontaminate(config)
    assert [leak["id"] for leak in result.report["per_source"]["s"]["leaks"]] == ["2"]
    assert result.run.total.removed_by == {"contaminated": 1}
    again = decontaminate(config)
    assert [s.status for s in again.run.shards] == ["skipped"] and again.report["contaminated"] == 1
    with pytest.raises(DolmaKitError, match="other evaluation data or settings"):
        decontaminate(DecontamConfig(eval=[str(eval_file)], documents=[str(docs)], experiment="m", ngram=8))
    with pytest.raises(DolmaKitError, match="--min-words"):
        DecontamConfig(eval=[str(eval_file)], documents=[str(docs)], experiment="m", min_words=20)


def test_bad_records_are_skipped_like_every_stage(tmp_path: Path) -> None:
    eval_file = write_lines(tmp_path / "e.jsonl", [{"text": LEAK}])
    docs = write_lines(
        tmp_path / "corpus/documents/s/p.jsonl",
        [{"id": "1", "text": LEAK}, b"{bad", {"id": "3", "text": "ok"}],
    )
    config = DecontamConfig(eval=[str(eval_file)], documents=[str(docs)], experiment="b", processes=1)
    with pytest.raises(DolmaKitError, match=r"p\.jsonl:2"):
        decontaminate(config)
    config.skip_bad = config.force = True
    result = decontaminate(config)
    assert (result.run.total.removed, result.run.total.kept, result.run.total.rejected) == (1, 1, 1)
    assert [r["id"] for r in read_jsonl(tmp_path / "corpus/attributes/b/s/p.jsonl")] == ["1", "3"]


def test_cli_end_to_end(tmp_path: Path) -> None:
    eval_file = write_lines(tmp_path / "eval.jsonl", [{"text": PASSAGE_B}])
    docs = tmp_path / "corpus/documents"
    write_lines(
        docs / "a/p.jsonl",
        [{"id": "a1", "text": "Header\n" + PASSAGE_B.upper()}, {"id": "a2", "text": "clean"}],
    )
    write_lines(docs / "b/p.jsonl", [{"id": "b1", "text": "clean too"}])
    result = CliRunner().invoke(
        app,
        [
            "decontaminate",
            "--eval",
            str(eval_file),
            "--documents",
            str(docs / "a/*.jsonl"),
            str(docs / "b/*.jsonl"),
            "--experiment",
            "cli",
            "--ngram",
            "10",
            "-p",
            "1",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "1 of 3 documents contaminated" in result.output
    report = json.loads((tmp_path / "corpus/attributes/cli/decontamination_report.json").read_text())
    assert report["ngram"] == 10 and [leak["id"] for leak in report["per_source"]["a"]["leaks"]] == ["a1"]
    schema = json.loads((tmp_path / "corpus/attributes/cli/attributes_schema.json").read_text())
    assert "cli__decontam__contaminated_paragraph" in schema["decontam"]["attributes"]


def test_lookup_equals_isin() -> None:
    """The bitmap pre-filter never loses a hit: lookup agrees with np.isin, and indices point at the gram."""
    rng = np.random.default_rng(0)
    hashes = np.unique(rng.integers(0, 2**63, 5000, dtype=np.int64).astype(np.uint64) * np.uint64(2))
    evals = EvalSet(hashes, np.zeros(len(hashes), dtype=np.uint16), [13], ["e"], [])
    queries = np.concatenate([rng.integers(0, 2**63, 50_000, dtype=np.int64).astype(np.uint64), hashes[::7]])
    hit, idx = evals.lookup(queries)
    assert np.array_equal(hit, np.isin(queries, hashes)) and hit.sum() >= len(hashes[::7])
    assert np.array_equal(evals.hashes[idx], queries[hit])
    empty = EvalSet(np.zeros(0, np.uint64), np.zeros(0, np.uint16), [13], [], [])
    assert not empty.lookup(queries)[0].any()


def test_whole_text_normalisation_equals_per_paragraph() -> None:
    """normalize_paragraphs (one pass over the text) gives what normalize_text gives paragraph by paragraph."""
    import random

    from dolma_kit.analysis.decontam import normalize_paragraphs
    from dolma_kit.dedup.normalize import normalize_text
    from dolma_kit.text import paragraph_spans

    rng = random.Random(0)
    alphabet = [
        10,
        10,
        13,
        0x85,
        0x2028,
        0x3000,
        0x301,
        0xFB01,
        0x1E9B,
        0x323,
        0x2126,
    ]  # breaks, marks, ligatures
    texts = ["a\r\nb  \n\n\u3000\nÉcole ﬁnal\u00a0x\n\t\n\u2028y\n…!", "ﬀ\u0301\nx\u0301", "\n\n", ""]
    for _ in range(500):
        texts.append(
            "".join(chr(rng.choice([*alphabet, rng.randint(32, 0x2FFF)])) for _ in range(rng.randint(0, 60)))
        )
    for text in texts:
        spans = paragraph_spans(text)
        assert normalize_paragraphs(text, spans) == [normalize_text(text[s:e]) for s, e in spans], repr(text)
