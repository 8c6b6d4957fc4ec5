"""`dolma-kit stats`: WIMBD-style corpus statistics → stats.json and a self-contained report.html."""

from __future__ import annotations

from typing import Annotated

import typer

from dolma_kit.cli.options import RUN_OPTIONS, stage_command


@stage_command("stats", *RUN_OPTIONS)
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
) -> None:
    """Documents, bytes, tokens, lengths, languages, domains, duplicates, PII, what each stage marked and
    removed, and (--run) how the model trained."""
