"""Content classifiers: any supervised fastText model (quality, toxicity, NSFW, or one from `train-classifier`).

Configured as `fasttext_classifier:name=quality,model=models/q.bin`; the `name` becomes the attribute prefix,
so each label is written as `<experiment>__quality__<label>` and several classifiers can share an experiment.
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

LEVELS = ("document", "paragraph")


@dataclass(kw_only=True)
class ClassifierConfig(TaggerConfig):
    """Options of `fasttext_classifier`. `name` and `model` are required."""

    name: str = ""
    """Attribute prefix replacing the tagger name (e.g. `quality` → `<exp>__quality__<label>`)."""
    model: str = ""
    """Path to a supervised fastText model (.bin or .ftz)."""
    level: str = "document"
    """`document`: one whole-document span per label; `paragraph`: spans per non-empty line."""
    k: int = -1
    """Number of most likely labels to score (-1: every label of the model)."""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if self.k == 0 or self.k < -1:
            raise ValueError(f"k must be -1 (all labels) or ≥ 1, got {self.k}")
        if "__" in self.name:
            raise ValueError(f"name {self.name!r} must not contain '__' (it separates attribute name parts)")


@register_tagger("fasttext_classifier_v1", alias="fasttext_classifier")
class FastTextClassifier(Tagger):
    """Scores documents (or paragraphs) with a fastText classifier: one span per label among the top `k`.

    Whitespace-only documents (and, at paragraph level, documents without a non-empty line) get no spans.
    """

    Config = ClassifierConfig
    config: ClassifierConfig

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__(config)
        if not self.config.name:
            raise DolmaKitError(
                f"{self.name} needs name=PREFIX (the attribute prefix), e.g. "
                f"`{self.name}:name=quality,model=models/quality.bin`"
            )
        if not self.config.model:
            raise DolmaKitError(
                f"{self.name}:name={self.config.name} needs model=PATH (a fastText .bin/.ftz)"
            )
        self.model_path = resolve_model_path(self.config.model, what=f"{self.name}:name={self.config.name}")

    def predict(self, doc: Document) -> list[Span]:
        model = get_model(self.model_path)
        k = self.config.k
        if self.config.level == "document":
            if not doc.text or doc.text.isspace():  # `not text.strip()`, without copying a long text
                return []
            return [whole_document(doc, label, p) for label, p in model.predict(doc.text, k=k)]
        # a chunk of lines at a time: one batch for an ordinary document, bounded batches for a long one
        return [
            Span(start, end, label, p)
            for paragraphs, texts in paragraph_chunks(doc.text)
            for (start, end), pred in zip(paragraphs, model.predict_many(texts, k=k), strict=True)
            for label, p in pred
        ]

    def attribute_names(self) -> list[str]:
        return list(get_model(self.model_path).labels)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model_path": self.model_path}
