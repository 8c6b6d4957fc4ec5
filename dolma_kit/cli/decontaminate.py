"""`dolma-kit decontaminate`: mark documents and paragraphs sharing n-grams with evaluation data."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from dolma_kit.cli.options import (
    Destination,
    Documents,
    Executor,
    Experiment,
    Force,
    Processes,
    RayAddress,
    SkipBad,
    executor_config,
)


def decontaminate(
    eval_files: Annotated[
        list[str], typer.Option("--eval", help="Evaluation files: JSON Lines, parquet or .txt (globs, URLs).")
    ],
    documents: Documents,
    experiment: Experiment,
    ngram: Annotated[int, typer.Option(help="Words per n-gram (13 as GPT-3/OLMo).")] = 13,
    eval_field: Annotated[str, typer.Option(help="Field or column holding the evaluation text.")] = "text",
    min_words: Annotated[int, typer.Option(help="Skip evaluation texts with fewer words than this.")] = 8,
    min_overlap: Annotated[int, typer.Option(help="Matched n-grams that make a document contaminated.")] = 1,
    destination: Destination = None,
    work_dir: Annotated[
        str | None, typer.Option(help="Intermediate files (default: <attribute root>/_work/decontam).")
    ] = None,
    processes: Processes = None,
    skip_bad: SkipBad = False,
    force: Force = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
) -> None:
    """Find evaluation-text leaks: attributes `mix` can drop on, and decontamination_report.json."""
    from dolma_kit.analysis.decontam import DecontamConfig
    from dolma_kit.analysis.decontam import decontaminate as run
    from dolma_kit.executor import summary_table

    config = DecontamConfig(
        eval=eval_files,
        documents=documents,
        experiment=experiment,
        ngram=ngram,
        eval_field=eval_field,
        min_words=min_words,
        min_overlap=min_overlap,
        destination=destination,
        work_dir=work_dir,
        processes=processes,
        skip_bad=skip_bad,
        force=force,
        executor=executor_config(executor, ray_address),
    )
    result = run(config)
    console = Console()
    console.print(summary_table(result.run))
    report = result.report
    console.print(
        f"{report['eval_ngrams']:,} evaluation n-grams from {len(report['eval_files'])} file(s); "
        f"{report['contaminated']:,} of {report['documents']:,} documents contaminated\n"
        + "\n".join(f"report: {p}" for p in result.report_paths),
        highlight=False,
    )
