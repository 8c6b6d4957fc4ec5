"""The `dolma-kit` command: one thin module per subcommand; the work lives in the stage modules."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from dolma_kit.cli import (
    decontaminate,
    dedup,
    list_taggers,
    mix,
    provenance,
    run,
    stats,
    tag,
    tokenize,
    trace,
    train,
    train_classifier,
    train_tokenizer,
    train_tools,
)
from dolma_kit.cli.variadic import VariadicGroup
from dolma_kit.errors import DolmaKitError

app = typer.Typer(
    cls=VariadicGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Raw text shards to a language model, every step inspectable: tag, dedup, mix, tokenize, train.",
)
app.command("tag")(tag.tag)
app.command("list")(list_taggers.list_taggers)
app.command("train-classifier")(train_classifier.train_classifier)
app.add_typer(dedup.app, name="dedup")
app.command("train", context_settings=train.CONTEXT)(train.train)
app.command("trace")(trace.trace)
app.command("export-hf")(train_tools.export_hf)
app.command("average-checkpoints")(train_tools.average_checkpoints)
app.command("memorization")(train_tools.memorization)
app.command("mix")(mix.mix)
app.command("tokenize")(tokenize.tokenize)
app.command("train-tokenizer")(train_tokenizer.train_tokenizer)
app.command("provenance")(provenance.provenance)
app.command("stats")(stats.stats)
app.command("decontaminate")(decontaminate.decontaminate)
app.command("run", context_settings=run.CONTEXT)(run.run)
app.command("demo-corpus")(run.demo_corpus)

err_console = Console(stderr=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors print one red line and exit 2, never a traceback."""
    try:
        app(args=argv)
    except DolmaKitError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
