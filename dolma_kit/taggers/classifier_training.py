"""Train and evaluate fastText classifiers from labelled JSONL (`dolma-kit train-classifier`).

Input: one JSON object a line, `{"text": "...", "label": "hq"}` (or `"label": ["a", "b"]` for several
labels), in `.jsonl`, `.jsonl.gz` or `.jsonl.zst`. Training is reproducible: fastText's Hogwild SGD is
deterministic only with one thread, so we train with `thread=1` and a fixed `seed`; the same input, seed
and options give a byte-identical model. Evaluation metrics are computed here from the saved model's
top-1 predictions; fastText's own `test` numbers are kept beside them as a cross-check.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from dolma_kit import storage
from dolma_kit.documents import iter_raw_lines, parse_json_line
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.taggers.fasttext_models import LABEL_PREFIX, FastTextModel, forget, import_fasttext, load_model
from dolma_kit.text import single_line

LOSSES = ("softmax", "ova", "hs", "ns")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text and where it came from (for error messages)."""

    text: str
    labels: tuple[str, ...]
    where: str


@dataclass(kw_only=True)
class TrainParams:
    """fastText supervised hyper-parameters; defaults are fastText's own, so its documentation applies."""

    epoch: int = 5
    """Passes over the training data."""
    lr: float = 0.1
    """Learning rate (fastText suggests 0.1–1.0)."""
    word_ngrams: int = 1
    """Max length of word n-grams; > 1 hashes n-grams into `bucket` rows (model size ≈ bucket·dim·4 bytes)."""
    dim: int = 100
    """Size of word vectors."""
    min_count: int = 1
    """Ignore words seen fewer times than this."""
    bucket: int = 2_000_000
    """Hash buckets for word n-grams (unused when word_ngrams = 1)."""
    loss: str = "softmax"
    """`softmax` (one label per text), `ova` (one-vs-all, for several labels per text), `hs`, `ns`."""
    seed: int = 0
    """Random seed; with one thread, the same seed gives the same model."""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise DolmaKitError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("epoch", "word_ngrams", "dim", "min_count", "bucket"):
            if getattr(self, name) < (0 if name == "bucket" else 1):
                raise DolmaKitError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise DolmaKitError(f"lr must be positive, got {self.lr}")


@dataclass(kw_only=True)
class LabelMetrics:
    """Top-1 precision/recall/F1 for one label; `support` = test examples carrying the label."""

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


@dataclass(kw_only=True)
class Evaluation:
    """Metrics on a test set: accuracy = share of examples whose top-1 prediction is one of their labels."""

    n: int
    accuracy: float
    macro_f1: float
    per_label: dict[str, LabelMetrics]
    fasttext_precision_at_1: float | None = None
    fasttext_recall_at_1: float | None = None


@dataclass(kw_only=True)
class ClassifierReport:
    """What `train_classifier` did: inputs, options, label counts, model hash and (with a test set) metrics."""

    model_path: str
    model_sha256: str
    train_path: str
    test_path: str | None
    params: TrainParams
    quantized: bool
    n_train: int
    train_labels: dict[str, int]
    train_seconds: float
    labels: list[str] = field(default_factory=list)
    evaluation: Evaluation | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def report_path(model_path: str | Path) -> Path:
    """Where the report JSON goes: beside the model, `<model>.report.json`."""
    return Path(f"{model_path}.report.json")


def write_report(report: ClassifierReport, path: str | Path) -> None:
    storage.write_text(str(path), json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")


def _labels(value: Any, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise DolmaKitError(
            f"{where}: `label` must be a string or a non-empty list of strings, got {value!r}"
        )
    out = []
    for label in values:
        if not isinstance(label, str) or not label.strip():
            raise DolmaKitError(f"{where}: labels must be non-empty strings, got {label!r}")
        label = label.strip().removeprefix(LABEL_PREFIX)
        if any(c.isspace() for c in label) or "__" in label:
            raise DolmaKitError(f"{where}: label {label!r} must not contain whitespace or '__'")
        out.append(label)
    return tuple(dict.fromkeys(out))


def read_labelled(path: str | Path) -> Iterator[Example]:
    """Stream labelled examples; any malformed line raises a `DolmaKitError` naming `file:line`."""
    path = str(path)
    if not storage.exists(path):
        raise DolmaKitError(f"labelled file {path} does not exist")
    try:
        for lineno, raw in iter_raw_lines(path):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            record = parse_json_line(path, lineno, raw)
            if not isinstance(record, dict):
                raise DolmaKitError(f"{where}: expected a JSON object, got {type(record).__name__}")
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                raise DolmaKitError(f"{where}: missing or empty `text` (a non-empty string)")
            if "label" not in record:
                raise DolmaKitError(f"{where}: missing `label` (a string or a list of strings)")
            yield Example(text, _labels(record["label"], where), where)
    except BadRecordError as exc:
        if exc.line == 0 and "empty file" in exc.reason:
            return  # the caller reports "no labelled examples", the clearer message for this command
        raise DolmaKitError(f"{path}:{exc.line}: {exc.reason}") from None
    except OSError as exc:
        raise DolmaKitError(f"{path}: cannot read ({exc})") from exc


def to_fasttext(examples: Iterator[Example], out: IO[str]) -> tuple[int, Counter[str]]:
    """Write fastText's format (`__label__a __label__b text`, one line each); returns (examples, label counts)."""
    n = 0
    counts: Counter[str] = Counter()
    for ex in examples:
        labels = " ".join(LABEL_PREFIX + label for label in ex.labels)
        out.write(f"{labels} {single_line(ex.text).strip()}\n")
        counts.update(ex.labels)
        n += 1
    return n, counts


def evaluate(model: FastTextModel, examples: list[Example]) -> Evaluation:
    """Top-1 accuracy and per-label precision/recall/F1 over `examples` (labels unseen in training count)."""
    preds = [p[0][0] if p else "" for p in model.predict_many([ex.text for ex in examples], k=1)]
    labels = sorted({*model.labels, *(label for ex in examples for label in ex.labels)})
    per_label: dict[str, LabelMetrics] = {}
    for label in labels:
        tp = sum(1 for ex, p in zip(examples, preds, strict=True) if p == label and label in ex.labels)
        predicted = sum(1 for p in preds if p == label)
        support = sum(1 for ex in examples if label in ex.labels)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = LabelMetrics(
            precision=precision, recall=recall, f1=f1, support=support, predicted=predicted
        )
    correct = sum(1 for ex, p in zip(examples, preds, strict=True) if p in ex.labels)
    scored = [m.f1 for m in per_label.values() if m.support]
    return Evaluation(
        n=len(examples),
        accuracy=correct / len(examples) if examples else 0.0,
        macro_f1=sum(scored) / len(scored) if scored else 0.0,
        per_label=per_label,
    )


def _save_atomic(model: Any, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        model.save_model(str(tmp))
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train_classifier(
    train_path: str | Path,
    output_path: str | Path,
    *,
    test_path: str | Path | None = None,
    params: TrainParams | None = None,
    quantize: bool = False,
) -> ClassifierReport:
    """Train a fastText classifier on labelled JSONL, save it atomically to `output_path`, and evaluate it.

    With `quantize`, the saved model is product-quantized (fastText's `.ftz`: ~10-100x smaller, slightly
    less accurate). The evaluation runs on the saved file, so it measures exactly what taggers will load.
    """
    params = params or TrainParams()
    output = Path(output_path)
    if storage.is_remote(str(output_path)):
        raise DolmaKitError(
            f"--output {output_path}: models are written to a local path; copy them afterwards"
        )
    if output.is_dir():
        raise DolmaKitError(f"--output {output_path} is a directory; give a file name such as model.bin")
    fasttext = import_fasttext()
    if not hasattr(fasttext, "train_supervised"):
        raise DolmaKitError(
            "the installed `fasttext` module cannot train (fasttext-predict replaced it): "
            "`pip install --force-reinstall --no-deps fasttext-community`"
        )
    test_examples = list(read_labelled(test_path)) if test_path is not None else None
    if test_examples is not None and not test_examples:
        raise DolmaKitError(f"{test_path}: no labelled examples")
    with tempfile.TemporaryDirectory(prefix="dolma-kit-ft-") as tmp:
        train_file = Path(tmp) / "train.txt"
        with open(train_file, "w", encoding="utf-8") as out:
            n_train, counts = to_fasttext(read_labelled(train_path), out)
        if not n_train:
            raise DolmaKitError(f"{train_path}: no labelled examples")
        start = time.perf_counter()
        model = fasttext.train_supervised(
            input=str(train_file),
            epoch=params.epoch,
            lr=params.lr,
            wordNgrams=params.word_ngrams,
            dim=params.dim,
            minCount=params.min_count,
            bucket=params.bucket,
            loss=params.loss,
            seed=params.seed,
            thread=1,
            verbose=0,
        )
        if quantize:
            model.quantize(input=str(train_file), retrain=False, qnorm=True, thread=1)
        train_seconds = time.perf_counter() - start
        _save_atomic(model, output)
        forget(str(output.resolve()))
        saved = load_model(str(output))
        evaluation = None
        if test_examples is not None:
            evaluation = evaluate(saved, test_examples)
            test_file = Path(tmp) / "test.txt"
            with open(test_file, "w", encoding="utf-8") as out:
                to_fasttext(iter(test_examples), out)
            _, p_at_1, r_at_1 = saved.model.test(str(test_file), k=1)
            evaluation.fasttext_precision_at_1 = float(p_at_1)
            evaluation.fasttext_recall_at_1 = float(r_at_1)
    return ClassifierReport(
        model_path=str(output),
        model_sha256=_sha256(output),
        train_path=str(train_path),
        test_path=str(test_path) if test_path is not None else None,
        params=params,
        quantized=quantize,
        n_train=n_train,
        train_labels=dict(sorted(counts.items())),
        train_seconds=round(train_seconds, 3),
        labels=list(saved.labels),
        evaluation=evaluation,
    )
