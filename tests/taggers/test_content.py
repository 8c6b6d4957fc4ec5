"""`fasttext_classifier` with a model trained here on tests/fixtures/classifier (wiki / spam / forum)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from dolma_kit.documents import Document
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.classifier_training import TrainParams, train_classifier
from dolma_kit.taggers.content import ClassifierConfig, FastTextClassifier
from dolma_kit.text import paragraph_spans

FIXTURES = Path(__file__).parent.parent / "fixtures" / "classifier"
WIKI = "The castle of the upper valley was first described in the twelfth century and is listed as a protected site."
SPAM = "CLICK HERE cheap pills shipped free, act now and save 90 percent on pills tonight, 100% free"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("model") / "content.bin"
    train_classifier(FIXTURES / "train.jsonl", out, params=TrainParams(epoch=10, lr=0.5, dim=16))
    return str(out)


def doc(text: str) -> Document:
    return Document(id="d", text=text, source="test")


def test_document_level_scores_every_label(model_path: str) -> None:
    tagger = FastTextClassifier(ClassifierConfig(name="quality", model=model_path))
    spans = tagger.predict(doc(SPAM))
    assert {s.type for s in spans} == {"wiki", "spam", "forum"}
    assert spans[0].type == "spam" and spans[0].score > 0.5
    assert all(s.start == 0 and s.end == len(SPAM) and 0.0 <= s.score <= 1.0 for s in spans)
    assert abs(sum(s.score for s in spans) - 1.0) < 1e-3
    assert sorted(tagger.attribute_names()) == ["forum", "spam", "wiki"]
    assert tagger.predict(doc(" \n ")) == []


def test_k_limits_labels(model_path: str) -> None:
    spans = FastTextClassifier(ClassifierConfig(name="q", model=model_path, k=1)).predict(doc(WIKI))
    assert [s.type for s in spans] == ["wiki"]


def test_paragraph_level(model_path: str) -> None:
    text = f"{WIKI}\n\n{SPAM}\n"
    tagger = FastTextClassifier(ClassifierConfig(name="q", model=model_path, level="paragraph", k=1))
    spans = tagger.predict(doc(text))
    assert [(s.start, s.end) for s in spans] == paragraph_spans(text)
    assert [s.type for s in spans] == ["wiki", "spam"]


def test_config_errors(model_path: str, tmp_path: Path) -> None:
    with pytest.raises(DolmaKitError, match="name="):
        FastTextClassifier(ClassifierConfig(model=model_path))
    with pytest.raises(DolmaKitError, match="model=PATH"):
        FastTextClassifier(ClassifierConfig(name="q"))
    missing = tmp_path / "nope.bin"
    with pytest.raises(DolmaKitError, match=re.escape(str(missing))):
        FastTextClassifier(ClassifierConfig(name="q", model=str(missing)))
    garbage = tmp_path / "garbage.bin"
    garbage.write_text("not a model")
    tagger = FastTextClassifier(ClassifierConfig(name="q", model=str(garbage)))
    with pytest.raises(DolmaKitError, match=re.escape(str(garbage.resolve())) + ".*not a fastText model"):
        tagger.predict(doc(WIKI))
    with pytest.raises(ValueError, match="level"):
        ClassifierConfig(name="q", model=model_path, level="sentence")
    with pytest.raises(ValueError, match="__"):
        ClassifierConfig(name="a__b", model=model_path)


def test_tagger_pickles_small(model_path: str) -> None:
    tagger = FastTextClassifier(ClassifierConfig(name="q", model=model_path))
    tagger.predict(doc(WIKI))
    clone = pickle.loads(pickle.dumps(tagger))
    assert clone.predict(doc(WIKI)) == tagger.predict(doc(WIKI))
    assert clone.describe()["model_path"] == str(Path(model_path).resolve())


def test_registry_name_becomes_attribute_prefix(model_path: str) -> None:
    from dolma_kit.taggers import registry

    prefix, tagger = registry.build_tagger(f"fasttext_classifier:name=quality,model={model_path},k=2")
    assert prefix == "quality" and tagger.name == "fasttext_classifier_v1"
    assert len(tagger.predict(doc(WIKI))) == 2
