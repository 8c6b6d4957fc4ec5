"""Cutting a text into chunks changes none of the pieces, words, lowercase or paragraphs made from it."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from dolma_kit.taggers import chunks, ngrams
from dolma_kit.taggers.chunks import NEWLINE, WHITESPACE, paragraph_chunks, split_chunks
from dolma_kit.text import paragraph_spans
from tests.taggers.random_texts import random_texts

SEPARATORS = [NEWLINE, re.compile(r"\n+"), re.compile(r"\n\s*\n")]


@pytest.fixture(params=[1, 3, 17, 200])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(chunks, "CHUNK_CHARS", request.param)
    return request.param


def test_whitespace_is_what_str_split_splits_on() -> None:
    # WHITESPACE cuts must be places where str.split() breaks, for every code point
    text = "".join(map(chr, range(sys.maxunicode + 1)))
    spaces = {m.group() for m in WHITESPACE.finditer(text)}
    assert spaces == {c for c in text if c.isspace()}
    assert all(len(f"a{c}b".split()) == 2 for c in spaces)


def test_chunks_are_the_text_cut_after_a_boundary(chunk: int) -> None:
    for text in random_texts(seed=chunk, count=100, max_size=2000):
        for boundary in (WHITESPACE, *SEPARATORS):
            parts = list(chunks.chunks(text, boundary))
            assert "".join(c for _, c in parts) == text
            assert [offset for offset, _ in parts] == [
                sum(len(c) for _, c in parts[:i]) for i in range(len(parts))
            ]
            assert all(boundary.search(c[-1]) or c[-1] == "\n" for _, c in parts[:-1])
            assert all(c for _, c in parts[:-1]) and (len(parts) == 1 or parts[-1][1])


def test_pieces_words_and_lowercase_are_those_of_the_whole(chunk: int) -> None:
    for text in random_texts(seed=chunk + 1, count=100, max_size=2000):
        for separator in SEPARATORS:
            pieces = [p for batch in split_chunks(text, separator) for p in batch]
            assert pieces == separator.split(text), (separator, repr(text[:100]))
        words = list(chunks.chunks(text, WHITESPACE))
        assert [w for _, c in words for w in c.split()] == text.split()
        # Greek final sigma and dotted I: case context never reaches across whitespace
        text = text.replace("alpha", "ΟΔΟΣ").replace("beta", "ΣΑΣ")
        assert "".join(c.lower() for _, c in chunks.chunks(text, WHITESPACE)) == text.lower()
        assert "".join(c.lower() for _, c in chunks.chunks(text, NEWLINE)) == text.lower()


def test_paragraph_batches_are_paragraph_spans(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunks, "BATCH_PARAGRAPHS", 2)
    for text in random_texts(seed=chunk + 2, count=100, max_size=2000):
        batches = list(paragraph_chunks(text))
        assert [s for spans, _ in batches for s in spans] == paragraph_spans(text)
        assert all(texts == [text[s:e] for s, e in spans] for spans, texts in batches)
        assert all(1 <= len(spans) <= 2 for spans, _ in batches)


def test_word_arrays_grow_to_the_words_of_every_chunk() -> None:
    words = [f"w{i % 97}" * (i % 5 + 1) for i in range(10_000)]
    batches = [words[i : i + 7] for i in range(0, len(words), 7)] + [[]]
    arrays = ngrams.WordArrays.collect(iter(batches), max_chars=10**6)
    assert (
        arrays.hashes.tolist() == np.array([hash(w) for w in words], dtype=np.int64).view(np.uint64).tolist()
    )
    assert arrays.char_cumsum.tolist() == [0, *np.cumsum([len(w) for w in words]).tolist()]
    assert arrays.lengths.tolist() == [len(w) for w in words]
    empty = ngrams.WordArrays.collect(iter([]), max_chars=0)
    assert len(empty.hashes) == 0 and empty.char_cumsum.tolist() == [0]
