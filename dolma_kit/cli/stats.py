"""`dolma-kit stats`: WIMBD-style corpus statistics → stats.json and a self-contained report.html."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from dolma_kit.cli.options import (
    Executor,
    Force,
    Processes,
    RayAddress,
    SkipBad,
    executor_config,
)


def stats(
    root: Annotated[
        str, typer.Argument(help="Corpus root holding documents/<source>/<shard> (local or URL).")
    ],
    attributes: Annotated[
        list[str] | None,
        typer.Option(
            "--attributes", "-a", help="Experiments to read (default: every one under attributes/)."
        ),
    ] = None,
    tokenized: Annotated[
        str | None, typer.Option(help="Tokenized folder: tokens per source from its manifest.json.")
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(help="Training run folder (metrics.jsonl): adds the report's training section."),
    ] = None,
    stage_summaries: Annotated[
        list[str] | None,
        typer.Option(help="More stage summaries: mix_summary.json, folders holding them, globs."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Where stats.json and report.html go (default: ROOT/report)."),
    ] = None,
    url_field: Annotated[str, typer.Option(help="Metadata field with the URL (a.b: nested).")] = "url",
    top_domains: Annotated[int, typer.Option(help="Domains listed in the report.")] = 50,
    processes: Processes = None,
    skip_bad: SkipBad = False,
    force: Force = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
) -> None:
    """Documents, bytes, tokens, lengths, languages, domains, duplicates, PII, what each stage marked and
    removed, and (--run) how the model trained."""
    from dolma_kit.analysis.report import build_report
    from dolma_kit.analysis.stats import StatsConfig
    from dolma_kit.executor import summary_table

    config = StatsConfig(
        root=root,
        attributes=attributes or None,
        tokenized=tokenized,
        run=run,
        stage_summaries=stage_summaries or [],
        output=output,
        url_field=url_field,
        top_domains=top_domains,
        processes=processes,
        skip_bad=skip_bad,
        force=force,
        executor=executor_config(executor, ray_address),
    )
    trained = None
    if run:
        from dolma_kit.pipeline.commands import trained_source_tokens

        trained = trained_source_tokens(run)
    report = build_report(config, trained_tokens=trained)
    total = report.data["total"]
    console = Console()
    console.print(summary_table(report.stats.run))
    console.print(
        f"{total['documents']:,} documents, {total['bytes']:,} bytes in {len(report.data['sources'])} sources"
        f" ({report.data['shards']} shards)\nstats:  {report.stats_path}\nreport: {report.html_path}",
        highlight=False,
    )
