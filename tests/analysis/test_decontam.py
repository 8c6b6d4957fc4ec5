"""Decontamination on planted leaks: contaminated documents and exact paragraph spans; clean documents stay clean."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dolma_kit.analysis.decontam import (
    REPORT_NAME,
    DecontamConfig,
    decontaminate,
    match_documents,
    match_long_document,
)
from dolma_kit.analysis.evalset import EvalSet, build_eval_set, normalize_paragraphs, normalized_pieces
from dolma_kit.cli import app
from dolma_kit.errors import DolmaKitError
from dolma_kit.text import paragraph_spans
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


# --------------------------------------------------------------------------------------------- long documents

VOCAB = [
    "the", "a", "of", "river", "bridge", "north", "deck", "ferry", "lens", "night", "clear", "year", "École",
    "straße", "ΣΊΣΥΦΟΣ", "ﬁnal", "ﬀ\u0301", "e\u0301t\u0301e", "\u0301lead", "Ⅻ", "２０２４", "1887", "東京",
    "naïve", "ǅemal", "word,", "(x)", "«quoted»", "don't", "3.14", "#tag", "@user", "¿qué?", "—", "...", "!!",
]  # fmt: skip
"""Words of the random texts: non-ASCII, ligatures and compatibility forms, combining marks (one leading its
word), digits, and tokens that are punctuation only (they normalise to nothing)."""
SPACES = [" "] * 12 + [
    "  ", "\t", "\u00a0", "\u3000", " \u0301", "\n", "\n", "\r\n", "\n\n", "\n \n", "\n!!\n", "\n‼ —\n",
]  # fmt: skip
"""Separators: spaces that normalise to a space, a combining mark after a space, line breaks, blank lines and
punctuation-only lines."""


def random_text(rng: random.Random, passages: list[list[str]]) -> str:
    """Random words and separators, with evaluation passages planted (case changed, a break inside some)."""
    parts: list[str] = []
    long_line = rng.random() < 0.3  # one paragraph of many words, longer than any piece
    for _ in range(rng.randint(0, 120)):
        if rng.random() < 0.1:
            words = rng.choice(passages)
            words = [w.upper() if rng.random() < 0.3 else w for w in words]
            parts.append(
                " ".join(words[: (k := rng.randint(1, len(words)))])
                + rng.choice(SPACES)
                + " ".join(words[k:])
            )
        else:
            parts.append(rng.choice(VOCAB))
        parts.append(" " if long_line else rng.choice(SPACES))
    return "".join(parts).strip(" ") if rng.random() < 0.5 else "".join(parts)


def random_eval_set(tmp_path: Path, rng: random.Random) -> tuple[EvalSet, list[list[str]]]:
    """Passages of 3 to 9 words: with ngram 6 and min_words 3 the set holds 6-grams and 3-, 4- and 5-grams."""
    passages = [[rng.choice(VOCAB) for _ in range(rng.randint(3, 9))] for _ in range(12)]
    paths = [
        str(write_lines(tmp_path / f"eval-{i}.jsonl", [{"text": " ".join(p)} for p in passages[i::2]]))
        for i in range(2)
    ]
    return build_eval_set(paths, field="text", ngram=6, min_words=3), passages


def test_long_documents_match_piecewise_as_whole(tmp_path: Path) -> None:
    """In pieces of a few characters (cut inside lines, before combining marks, between the words of a gram),
    a document gives the very Match (counts, paragraph spans, files) and the words that the whole text gives."""
    rng = random.Random(7)
    evals, passages = random_eval_set(tmp_path, rng)
    assert sorted(evals.lengths) == [3, 4, 5, 6]
    contaminated = across = 0
    files: set[int] = set()
    for _ in range(120):
        text = random_text(rng, passages)
        (whole,) = match_documents([text], evals, 6, max_chars=len(text) + 1)
        for budget in (rng.randint(1, 6), rng.randint(7, 80)):
            assert match_long_document(text, evals, budget) == whole, (budget, text)
        words = " ".join(n for norms, _ in normalized_pieces(text, rng.randint(1, 30)) for n in norms)
        assert words == " ".join(n for n in normalize_paragraphs(text, paragraph_spans(text)) if n)
        contaminated += whole.grams > 0
        across += whole.grams > 0 and len(whole.paragraphs) > 1
        files.update(whole.eval_files)
    assert contaminated > 50 and across > 20 and files == {0, 1}  # tested on matches, not only on misses
    # a batch routes its long texts to the piecewise path, the others stay batched, in order
    texts = [random_text(rng, passages) for _ in range(20)]
    assert match_documents(texts, evals, 6, max_chars=40) == match_documents(
        texts, evals, 6, max_chars=1 << 30
    )


def test_cli_long_document_in_pieces_gives_the_whole_documents_files(tmp_path: Path, monkeypatch) -> None:
    """`dolma-kit run` with `--decontaminate.batch_chars` small: a 3 MB document (long lines, one of 1 MB,
    leaks across line breaks) is matched in pieces, and every attribute file and the report are byte for byte
    those of the whole-document computation."""
    import dolma_kit.analysis.decontam as decontam

    rng = random.Random(3)
    evals_rows = [{"text": LEAK}, {"text": PASSAGE_B}, {"text": SHORT_EVAL}]
    write_lines(tmp_path / "eval.jsonl", evals_rows)
    lines: list[str] = []
    size = 0
    while size < 2_000_000:
        line = " ".join(rng.choice(VOCAB) for _ in range(rng.choice([5, 40, 400])))
        if rng.random() < 0.05:
            leak = rng.choice([LEAK, PASSAGE_B, SHORT_EVAL]).split()
            k = rng.randint(0, len(leak))
            line += " " + " ".join(leak[:k]) + rng.choice(["\n", " "]) + " ".join(leak[k:]).upper()
        lines.append(line)
        size += len(line) + 1
    lines.insert(len(lines) // 2, " ".join([*VOCAB, LEAK] * 2800))  # one line of 1 MB
    text = "\n".join(lines)
    docs = tmp_path / "corpus/documents"
    write_lines(
        docs / "web/p.jsonl",
        [{"id": "s1", "text": LEAK}, {"id": "big", "text": text}, {"id": "s2", "text": "x"}],
    )
    write_lines(docs / "wiki/p.jsonl", [{"id": "w1", "text": PASSAGE_B.lower()}])
    (tmp_path / "p.yaml").write_text(
        f"work_dir: {tmp_path}/work\nstages:\n  - command: decontaminate\n    eval: [{tmp_path}/eval.jsonl]\n"
        f"    documents: ['{docs}/*/*.jsonl']\n    experiment: big\n"
    )
    pieces: list[int] = []
    long_match = decontam.match_long_document
    # the stage runs in this process, where the counter is patched (not in a stage process of its own)
    monkeypatch.setenv("DOLMA_KIT_STAGES_IN_PROCESS", "1")
    monkeypatch.setattr(
        decontam, "match_long_document", lambda t, *a: pieces.append(len(t)) or long_match(t, *a)
    )
    outputs = []
    for budget, extra in ((1 << 30, []), (4096, ["--force"])):
        result = CliRunner().invoke(
            app, ["run", str(tmp_path / "p.yaml"), f"--decontaminate.batch_chars={budget}", "-p", "1", *extra]
        )
        assert result.exit_code == 0, result.output
        root = tmp_path / "corpus/attributes/big"
        outputs.append(
            {str(p.relative_to(root)): p.read_bytes() for p in [*root.glob("*/*.jsonl"), root / REPORT_NAME]}
        )
    assert pieces == [len(text)]  # the whole path first, then the piecewise one, for the long document only
    assert sorted(outputs[0]) == [REPORT_NAME, "web/p.jsonl", "wiki/p.jsonl"] and outputs[0] == outputs[1]
    big = next(
        row for row in read_jsonl(tmp_path / "corpus/attributes/big/web/p.jsonl") if row["id"] == "big"
    )
    assert len(big["attributes"]["big__decontam__contaminated_paragraph"]) > 50
