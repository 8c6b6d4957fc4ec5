"""`dolma-kit decontaminate`: mark documents and paragraphs sharing n-grams with evaluation data."""

from __future__ import annotations

from typing import Annotated

import typer

from dolma_kit.cli.options import RUN_OPTIONS, stage_command


@stage_command("decontaminate", "documents", "experiment", "destination", *RUN_OPTIONS)
def decontaminate(
    eval: Annotated[
        list[str], typer.Option("--eval", help="Evaluation files: JSON Lines, parquet or .txt (globs, URLs).")
    ],
    ngram: Annotated[int, typer.Option(help="Words per n-gram (13 as GPT-3/OLMo).")] = 13,
    eval_field: Annotated[str, typer.Option(help="Field or column holding the evaluation text.")] = "text",
    min_words: Annotated[int, typer.Option(help="Skip evaluation texts with fewer words than this.")] = 8,
    min_overlap: Annotated[int, typer.Option(help="Matched n-grams that make a document contaminated.")] = 1,
    work_dir: Annotated[
        str | None, typer.Option(help="Intermediate files (default: <attribute root>/_work/decontam).")
    ] = None,
    index: Annotated[
        str | None,
        typer.Option(
            help="A tokenized folder with a suffix-array index (dolma-kit index): add exact corpus counts of "
            "the evaluation n-grams to the report."
        ),
    ] = None,
) -> None:
    """Find evaluation-text leaks: attributes `mix` can drop on, and decontamination_report.json."""
