"""Cheap document statistics, mostly as a sanity check on a corpus and for length filters in mixes."""

from __future__ import annotations

from dolma_kit.documents import Document
from dolma_kit.taggers.base import Span, Tagger, whole_document
from dolma_kit.taggers.registry import register_tagger
from dolma_kit.text import paragraph_spans


@register_tagger("char_length_v1", alias="char_length")
class CharLength(Tagger):
    """Number of characters (Unicode code points) in the text, as Dolma's `char_length_v1`."""

    def predict(self, doc: Document) -> list[Span]:
        return [whole_document(doc, "length", len(doc.text))]

    def attribute_names(self) -> list[str]:
        return ["length"]


@register_tagger("paragraph_count_v1", alias="paragraph_count")
class ParagraphCount(Tagger):
    """Number of non-empty lines, plus one span per paragraph (score = its length) for later masking."""

    def predict(self, doc: Document) -> list[Span]:
        spans = paragraph_spans(doc.text)
        out = [whole_document(doc, "count", len(spans))]
        out.extend(Span(s, e, "paragraph", float(e - s)) for s, e in spans)
        return out

    def attribute_names(self) -> list[str]:
        return ["count", "paragraph"]
