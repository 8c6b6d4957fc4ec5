"""Language ID gives exactly the scores of predicting as before: the whole text as one `str` line for the
document level, all paragraphs in one batch for the paragraph level.

The document tagger now hands fastText the text's UTF-8 bytes (no `str` copies of a long text), and the
paragraph tagger predicts a chunk of lines at a time; the references are the `str` path of
`FastTextModel.predict_many` on the whole text and on all paragraphs at once.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dolma_kit.documents import Document
from dolma_kit.taggers import chunks
from dolma_kit.taggers.base import Span, whole_document
from dolma_kit.taggers.fasttext_models import bundled_lid_model, get_model, line_bytes
from dolma_kit.taggers.language import (
    FastTextLanguageId,
    FastTextParagraphLanguageId,
    ParagraphLanguageIdConfig,
)
from dolma_kit.text import paragraph_spans
from tests.taggers.random_texts import random_text, random_texts

FIXTURE = Path(__file__).parent.parent / "fixtures" / "lang" / "paragraphs.jsonl"


def texts(seed: int, count: int) -> list[str]:
    """Random texts, and paragraphs of 15 languages joined by assorted line breaks."""
    rows = [json.loads(line)["text"] for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    mixed = [
        rng.choice(("\n", "\n\n", "\r\n", " \n\t", "\x0b")).join(rng.sample(rows, 4)) for _ in range(count)
    ]
    return [*random_texts(seed, count, max_size=3000), *mixed, "broken \ud800 surrogate\r\nline\x0cfeed"]


def reference_paragraphs(doc: Document, language: str | None) -> list[Span]:
    paragraphs = paragraph_spans(doc.text)
    if not paragraphs:
        return []
    model = get_model(str(bundled_lid_model()))
    preds = model.predict_many([doc.text[s:e] for s, e in paragraphs], k=1 if language is None else -1)
    total = sum(e - s for s, e in paragraphs)
    spans: list[Span] = []
    weighted: dict[str, float] = {}
    for (start, end), pred in zip(paragraphs, preds, strict=True):
        lang, score = pred[0] if language is None else (language, dict(pred).get(language, 0.0))
        spans.append(Span(start, end, lang, score))
        if language is not None:
            spans.append(Span(start, end, "not_" + lang, 1.0 - score))
        weighted[lang] = weighted.get(lang, 0.0) + (end - start) * score
    if language is None:
        shares = sorted(weighted.items(), key=lambda kv: (-kv[1], kv[0]))
        return spans + [whole_document(doc, "doc_" + lang, w / total) for lang, w in shares]
    doc_score = weighted[language] / total
    spans.append(whole_document(doc, "doc_" + language, doc_score))
    spans.append(whole_document(doc, "doc_not_" + language, 1.0 - doc_score))
    return spans


def test_document_scores_equal_the_str_path() -> None:
    model = get_model(str(bundled_lid_model()))
    for text in texts(seed=1, count=60):
        for k in (1, 3, -1):
            assert model.predict(text, k=k) == model.predict_many([text], k=k)[0], repr(text[:100])


def test_line_bytes_are_what_the_str_path_sends() -> None:
    for text in texts(seed=2, count=40):
        cleaned = text.replace("\n", " ").replace("\r", " ").replace("\x0b", " ").replace("\x0c", " ")
        expected = (cleaned + "\n").encode("utf-8", "replace")
        assert line_bytes(text) == expected
        for piece in (1, 5, 64):  # piece boundaries inside multi-byte text, surrogates and line breaks
            assert line_bytes(text, piece=piece) == expected


class _Recorder:
    """Stands in for the binding: reads the batch as pybind11 does (item by item) and notes who holds it."""

    def __init__(self, real: object) -> None:
        self.real: Any = real
        self.holders: list[int] = []

    def multilinePredict(self, lines: Sequence[bytes], k: int, threshold: float, on_error: str) -> Any:
        converted = []
        for i in range(len(lines)):
            item = lines[i]
            self.holders.append(sys.getrefcount(item) - 2)  # minus `item` and getrefcount's argument
            converted.append(bytes(item))
            del item
        return self.real.multilinePredict(converted, k, threshold, on_error)


def test_no_python_copy_of_the_line_outlives_its_conversion() -> None:
    """The line is made as the binding reads it, so nothing else keeps a long text's UTF-8 alive while the
    C++ side predicts (a list would: one more copy of a 50 MB line at the peak)."""
    model = get_model(str(bundled_lid_model()))
    recorder = _Recorder(model.model.f)
    fake = replace(model, model=type("M", (), {"f": recorder})())
    text = "Ein kurzer deutscher Satz.\nUnd noch einer."
    assert fake.predict(text, k=3) == model.predict_many([text], k=3)[0]
    assert recorder.holders == [0]


def test_a_long_document() -> None:
    text = random_text(random.Random(3), 3 * chunks.CHUNK_CHARS)
    tagger = FastTextLanguageId()
    model = get_model(tagger.model_path)
    spans = tagger.predict(Document(id="d", text=text))
    assert [(s.type, s.score) for s in spans] == model.predict_many([text], k=3)[0]
    assert tagger.predict(Document(id="w", text=" \n\t" * 1000)) == []


@pytest.mark.parametrize("chunk", [chunks.CHUNK_CHARS, 200, 1])
@pytest.mark.parametrize("language", [None, "en"])
def test_paragraph_spans_equal_one_batch(
    chunk: int, language: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "CHUNK_CHARS", chunk)
    monkeypatch.setattr(chunks, "BATCH_PARAGRAPHS", 3)
    tagger = FastTextParagraphLanguageId(ParagraphLanguageIdConfig(language=language))
    for text in texts(seed=chunk, count=25):
        doc = Document(id="d", text=text)
        assert tagger.predict(doc) == reference_paragraphs(doc, language), repr(text[:100])
