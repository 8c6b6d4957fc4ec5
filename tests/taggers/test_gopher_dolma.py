"""`gopher_dolma_v1`: Dolma 1.2.1 `gopher_v1`'s values, quirks included, checked by hand and against Dolma.

The hand-computed cases each isolate one documented quirk (docs/quality-taggers.md, "Differences from Dolma
1.2.1 `gopher_v1`"), so a regression names the quirk it broke. Where Dolma's venv from bench/tag.py exists,
Dolma's own tagger scores ~200 benchmark-corpus documents and every attribute must match ours.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dolma_kit.documents import Document
from dolma_kit.taggers.gopher_dolma import (
    MEASURES,
    NGRAM_MEASURES,
    SCALAR_MEASURES,
    GopherDolmaConfig,
    failed_dolma_rules,
    gopher_dolma_measures,
)
from dolma_kit.taggers.registry import build_tagger, registered_taggers

ROOT = Path(__file__).resolve().parents[2]
DOLMA_PYTHON = ROOT / "bench" / "out" / "dolma-venv" / "bin" / "python"
CONFIG = GopherDolmaConfig()


def _ngram(n: int) -> str:
    return f"fraction_of_characters_in_{'most_common' if n <= 4 else 'duplicate'}_{n}grams"


def test_lines_bullets_ellipsis_and_blank_duplicates() -> None:
    # 8 `\n` lines, 3 of them blank or whitespace-only; only `*`/`-` at column 0 are bullets, `•` is not
    text = "- one two\n\n* three\n \n- one two\n\n•\tfour…\nfive…"
    m = gopher_dolma_measures(text)
    # words: - one two * three - one two • four… five…  (lengths 1 3 3 1 5 1 3 3 1 5 5 = 31)
    assert m["character_count"] == len(text)
    assert m["word_count"] == 11
    assert m["median_word_length"] == 3.0
    assert m["symbol_to_word_ratio"] == 2 / 11  # four…, five…
    assert m["fraction_of_words_with_alpha_character"] == 7 / 11  # -, *, -, • have no letter
    assert m["required_word_count"] == 0
    assert m["fraction_of_lines_starting_with_bullet_point"] == 3 / 8
    assert m["fraction_of_lines_ending_with_ellipsis"] == 2 / 8
    assert m["fraction_of_duplicate_lines"] == 4 / 8  # "- one two" twice and "" twice
    assert m["fraction_of_characters_in_duplicate_lines"] == 18 / 31  # line chars over *word* chars
    # 2-grams: (-, one) and (one, two) both occur twice; the first seen wins although it has fewer chars
    assert m[_ngram(2)] == 2 * 4 / 31
    assert m[_ngram(3)] == 2 * 7 / 31
    assert m[_ngram(4)] == 8 / 31  # nothing repeats: the first 4-gram's share, not 0
    for n in range(5, 11):
        assert m[_ngram(n)] == 0.0


def test_gopher_v2_collapses_blank_line_runs() -> None:
    text = "alpha beta\n\n\ngamma delta\n\nepsilon"
    assert gopher_dolma_measures(text)["fraction_of_duplicate_lines"] == 3 / 6  # three "" lines
    v2 = gopher_dolma_measures(text, collapse_blank_lines=True)
    assert v2["fraction_of_duplicate_lines"] == 0.0


def test_ascii_dots_are_not_an_ellipsis_and_symbols_count_words() -> None:
    text = "wait...\n#tag ## x…y\nmore..."
    m = gopher_dolma_measures(text)
    assert m["symbol_to_word_ratio"] == 3 / 5  # #tag, ## (once), x…y; wait... and more... do not count
    assert m["fraction_of_lines_ending_with_ellipsis"] == 0.0
    assert gopher_dolma_measures("a…\nb… \nc…\r\nd…")["fraction_of_lines_ending_with_ellipsis"] == 2 / 4


def test_stop_words_are_exact_lowercase_occurrences() -> None:
    assert gopher_dolma_measures("The the the, of Of to to")["required_word_count"] == 4  # the, of, to, to
    assert gopher_dolma_measures("The That “the” With")["required_word_count"] == 0


def test_median_not_mean() -> None:
    m = gopher_dolma_measures("a bbb " + "c" * 26)
    assert m["median_word_length"] == 3.0  # the mean is 10
    assert gopher_dolma_measures("ab abcd")["median_word_length"] == 3.0  # even count: middle pair's mean


def test_overlapping_ngrams_are_counted_again() -> None:
    m = gopher_dolma_measures("ha ha ha ha ha")  # 10 word chars
    assert m[_ngram(2)] == 4 * 4 / 10
    assert m[_ngram(3)] == 3 * 6 / 10
    assert m[_ngram(4)] == 2 * 8 / 10
    assert m[_ngram(5)] == 0.0  # one window: nothing repeats
    assert not {_ngram(n) for n in range(6, 11)} & m.keys()  # fewer than n words: not emitted


def test_duplicate_ngrams_divide_by_unmerged_windows() -> None:
    m = gopher_dolma_measures("aa bb cc dd ee aa bb cc dd ee ff")
    assert m[_ngram(5)] == 20 / 70  # 7 windows of 10 chars, the repeated one twice
    assert m[_ngram(6)] == 0.0
    assert m[_ngram(10)] == 0.0


def test_empty_and_blank_texts() -> None:
    assert gopher_dolma_measures("") == dict.fromkeys(SCALAR_MEASURES, 0.0)
    m = gopher_dolma_measures("\n\n")
    assert m["character_count"] == 2
    assert m["fraction_of_duplicate_lines"] == 1.0  # three empty lines
    assert m["fraction_of_characters_in_duplicate_lines"] == 0.0
    assert not set(NGRAM_MEASURES) & m.keys()


def _prose(first: str = "the") -> str:
    return " ".join([first, "of", *(f"wordy{i:03d}" for i in range(58))])


def test_pass_uses_paper_thresholds_and_missing_attributes_do_not_fire() -> None:
    m = gopher_dolma_measures(_prose())
    assert m["word_count"] == 60
    assert failed_dolma_rules(m, CONFIG) == []
    assert failed_dolma_rules(gopher_dolma_measures(_prose("The")), CONFIG) == ["required_word_count"]
    two = ["word_count", "median_word_length", _ngram(2)]  # its only 2-gram is all of its characters
    assert failed_dolma_rules(gopher_dolma_measures("the of"), CONFIG) == two
    short = gopher_dolma_measures("hello")
    assert failed_dolma_rules(short, CONFIG) == ["word_count", "required_word_count"]
    assert failed_dolma_rules(short, GopherDolmaConfig(min_words=1, min_required_words=0)) == []
    # a threshold is inclusive; 0.2 top 2-gram share passes, just above fails
    at_limit = dict(m, **{_ngram(2): 0.2})
    assert failed_dolma_rules(at_limit, CONFIG) == []
    assert failed_dolma_rules(dict(m, **{_ngram(2): 0.2001}), CONFIG) == [_ngram(2)]


def test_registered_and_predicts_whole_document_spans() -> None:
    assert "gopher_dolma_v1" in registered_taggers()
    prefix, tagger = build_tagger("gopher_dolma:min_words=10")
    assert prefix == "gopher_dolma"
    doc = Document(id="d", source="s", text=_prose())
    spans = tagger.predict(doc)
    assert {s.type for s in spans} == {*MEASURES, "pass"} == set(tagger.attribute_names())
    assert all((s.start, s.end) == (0, len(doc.text)) for s in spans)
    assert next(s.score for s in spans if s.type == "pass") == 1.0
    assert build_tagger("gopher_dolma_v1:name=gopher_v1")[0] == "gopher_v1"  # Dolma recipes' keys
    with pytest.raises(ValueError, match="6 values"):
        GopherDolmaConfig(max_duplicate_ngram_chars_fraction=(0.1,))
    with pytest.raises(ValueError, match="larger than its maximum"):
        GopherDolmaConfig(min_median_word_length=11)


_DOLMA_SCRIPT = """
import json, sys
from dolma.core.data_types import Document
from dolma.taggers.gopher import GopherTagger, GopherTaggerV2
out = []
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    doc = Document(source="s", id=d["id"], text=d["text"])
    row = {}
    for key, tagger in (("v1", GopherTagger()), ("v2", GopherTaggerV2())):
        row[key] = {s.type: s.score for s in tagger.predict(doc).spans}
    out.append(row)
json.dump(out, sys.stdout)
"""

_HAND_TEXTS = [
    "",
    "\n\n",
    "- one two\n\n* three\n \n- one two\n\n•\tfour…\nfive…",
    "wait...\n#tag ## x…y\nmore...",
    "The the the, of Of to to",
    "ha ha ha ha ha",
    "aa bb cc dd ee aa bb cc dd ee ff",
    "a\r\nb\r\n\r\na\r\n",
]


def _corpus_texts(count: int) -> list[str]:
    spec = importlib.util.spec_from_file_location("bench_corpus_for_test", ROOT / "bench" / "corpus.py")
    assert spec is not None and spec.loader is not None
    corpus = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = corpus  # its dataclasses look their module up while being defined
    spec.loader.exec_module(corpus)
    return [str(corpus.make_document(7, i, "gd")["text"]) for i in range(count)]


@pytest.mark.skipif(not DOLMA_PYTHON.exists(), reason="Dolma 1.2.1 venv not built (bench/tag.py builds it)")
def test_equals_dolma_on_benchmark_documents(tmp_path: Path) -> None:
    texts = _HAND_TEXTS + _corpus_texts(200)
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
    proc = subprocess.run(
        [str(DOLMA_PYTHON), "-c", _DOLMA_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    dolma = json.loads(proc.stdout)
    assert len(dolma) == len(texts)
    for i, (text, expected) in enumerate(zip(texts, dolma, strict=True)):
        for key, collapse in (("v1", False), ("v2", True)):
            ours = gopher_dolma_measures(text, collapse_blank_lines=collapse)
            assert ours.keys() == expected[key].keys(), (i, key)
            for name, value in expected[key].items():
                assert ours[name] == pytest.approx(value, abs=1e-9), (i, key, name, text[:80])
