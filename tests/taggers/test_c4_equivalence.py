"""`c4_v1` gives exactly the spans of its definition, however the text is cut into chunks of lines.

The tagger reads a long text a chunk of lines at a time (no lowercase copy or line list of the whole text);
the reference reads it whole. Chunk sizes are shrunk so that random texts are cut everywhere.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from dolma_kit.documents import Document
from dolma_kit.taggers import chunks
from dolma_kit.taggers.base import Span, whole_document
from dolma_kit.taggers.c4 import C4Config, C4Tagger
from tests.taggers.random_texts import random_text, random_texts

BAD_WORDS = Path(__file__).resolve().parents[1] / "fixtures" / "quality" / "bad_words.txt"
CONFIGS = [{}, {"bad_words_file": str(BAD_WORDS)}, {"min_words_per_line": 2, "min_sentences": 1}]


def reference_c4(tagger: C4Tagger, doc: Document) -> list[Span]:
    """The whole text at once: every line judged by the tagger's own line rule, flags on the whole text."""
    text = doc.text
    lowered = text.lower()
    spans: list[Span] = []
    kept: list[str] = []
    lines = 0
    start = 0
    for raw in text.split("\n"):
        line = raw.strip()
        if line:
            lines += 1
            reason = tagger.line_reason(line)
            if reason is None:
                kept.append(line)
            else:
                spans.append(Span(start, start + len(raw.removesuffix("\r")), reason))
        start += len(raw) + 1
    sentences = len(kept) + sum(len(re.findall(r"[.!?][\"'”’)\]]*\s", line)) for line in kept)
    flags = {
        "has_lorem_ipsum": "lorem ipsum" in lowered,
        "has_curly_brace": "{" in text,
        "too_few_sentences": sentences < tagger.config.min_sentences,
    }
    if tagger.config.bad_words_file:
        words = [w.strip().lower() for w in BAD_WORDS.read_text(encoding="utf-8").splitlines()]
        words = [w for w in words if w and not w.startswith("#")]
        flags["has_bad_word"] = any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", lowered) for w in words)
    spans += [whole_document(doc, name, float(value)) for name, value in flags.items()]
    spans.append(whole_document(doc, "line_count", lines))
    spans.append(whole_document(doc, "removed_line_fraction", (lines - len(kept)) / lines if lines else 0.0))
    spans.append(whole_document(doc, "sentence_count", sentences))
    spans.append(whole_document(doc, "pass", float(bool(kept) and not any(flags.values()))))
    return spans


@pytest.mark.parametrize("chunk", [chunks.CHUNK_CHARS, 64, 9, 1])
def test_c4_equals_its_reference(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunks, "CHUNK_CHARS", chunk)
    taggers = [C4Tagger(C4Config(**config)) for config in CONFIGS]
    for i, text in enumerate(random_texts(seed=chunk, count=150, max_size=4000)):
        if i % 5 == 0:  # words of the bad-words fixture, in any case
            text = (
                text.replace("alpha", "Zorblax").replace("beta", "frob NITZ").replace("gamma", "glimmerfangs")
            )
        doc = Document(id="d", text=text)
        for tagger in taggers:
            assert tagger.predict(doc) == reference_c4(tagger, doc), (tagger.config, repr(text[:200]))


def test_a_text_of_several_real_chunks() -> None:
    text = random_text(random.Random(5), 3 * chunks.CHUNK_CHARS)
    doc = Document(id="d", text=text)
    tagger = C4Tagger()
    assert len(text) > 3 * chunks.CHUNK_CHARS
    assert tagger.predict(doc) == reference_c4(tagger, doc)
