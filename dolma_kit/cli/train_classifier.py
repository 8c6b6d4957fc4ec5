"""`dolma-kit train-classifier`: a fastText classifier from labelled JSONL, with a per-label report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from dolma_kit.taggers.classifier_training import Evaluation

#: `classifier_training.LOSSES` spelled out, so that importing the CLI (every command, twice: the driver and
#: the worker forkserver) does not import the trainer and its fastText helpers (~0.09 CPU-s); a test keeps
#: the two equal
LOSS_METAVAR = "softmax|ova|hs|ns"


def train_classifier(
    train: Annotated[Path, typer.Option(help="Labelled JSONL ({'text': ..., 'label': ...}), .gz/.zst ok.")],
    output: Annotated[Path, typer.Option(help="Model file to write (.bin; .ftz with --quantize).")],
    test: Annotated[Path | None, typer.Option(help="Labelled JSONL to evaluate on.")] = None,
    seed: Annotated[
        int, typer.Option(help="Random seed (training is single-threaded: same seed, same model).")
    ] = 0,
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 5,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.1,
    word_ngrams: Annotated[int, typer.Option(help="Max word n-gram length (>1 hashes n-grams).")] = 1,
    dim: Annotated[int, typer.Option(help="Word vector size.")] = 100,
    min_count: Annotated[int, typer.Option(help="Ignore words seen fewer times.")] = 1,
    bucket: Annotated[int, typer.Option(help="Hash buckets for word n-grams.")] = 2_000_000,
    loss: Annotated[
        str,
        typer.Option(
            metavar=LOSS_METAVAR,
            help="Loss: ova for several labels per text; hs, ns: hierarchical softmax, negative sampling.",
        ),
    ] = "softmax",
    quantize: Annotated[bool, typer.Option(help="Product-quantize the model (fastText .ftz).")] = False,
) -> None:
    """Train a fastText classifier for `fasttext_classifier:name=...,model=OUTPUT`; report beside the model."""
    from dolma_kit.taggers import classifier_training as classifier

    params = classifier.TrainParams(
        epoch=epochs,
        lr=lr,
        word_ngrams=word_ngrams,
        dim=dim,
        min_count=min_count,
        bucket=bucket,
        loss=loss,
        seed=seed,
    )
    report = classifier.train_classifier(train, output, test_path=test, params=params, quantize=quantize)
    report_file = classifier.report_path(output)
    classifier.write_report(report, report_file)
    console = Console()
    console.print(
        f"trained on {report.n_train:,} examples ({len(report.labels)} labels) in {report.train_seconds:.2f}s "
        f"→ {output}"
    )
    if report.evaluation is not None:
        console.print(_metrics_table(report.evaluation))
    console.print(f"report: {report_file}")


def _metrics_table(evaluation: Evaluation) -> Table:
    table = Table(title=f"test set: {evaluation.n:,} examples")
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, m in evaluation.per_label.items():
        table.add_row(label, f"{m.precision:.3f}", f"{m.recall:.3f}", f"{m.f1:.3f}", f"{m.support:,}")
    table.add_section()
    table.add_row("accuracy", "", "", f"{evaluation.accuracy:.3f}", f"{evaluation.n:,}")
    table.add_row("macro F1", "", "", f"{evaluation.macro_f1:.3f}", "")
    return table
