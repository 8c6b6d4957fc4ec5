"""`dolma-kit tag`: run taggers over document shards into attribute files (Dolma's option names)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

Documents = Annotated[
    list[str], typer.Option("--documents", "-d", help="Document shards: paths, globs, URLs.")
]
Experiment = Annotated[
    str, typer.Option("--experiment", "-e", help="Experiment name (attribute folder/prefix).")
]
Taggers = Annotated[list[str], typer.Option("--taggers", "-t", help="Taggers: NAME or NAME:key=value,...")]


def tag(
    documents: Documents,
    experiment: Experiment,
    taggers: Taggers,
    destination: Annotated[
        str | None, typer.Option(help="Attribute root (default: documents/ → attributes/<experiment>/).")
    ] = None,
    processes: Annotated[int | None, typer.Option("--processes", "-p", help="Worker processes.")] = None,
    tagger_modules: Annotated[
        list[str] | None, typer.Option("--tagger-modules", help="Modules or .py files registering taggers.")
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option(help="Count bad records into rejects/ instead of stopping.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Redo shards already marked done.")] = False,
) -> None:
    """Tag documents: language, quality, PII, classifiers → attribute files line-aligned with the shards."""
    from dolma_kit.executor import summary_table
    from dolma_kit.tag import TagConfig
    from dolma_kit.tag import tag as run_tag

    config = TagConfig(
        documents=documents,
        experiment=experiment,
        taggers=taggers,
        destination=destination,
        processes=processes,
        tagger_modules=tagger_modules or [],
        skip_bad=skip_bad,
        force=force,
    )
    result = run_tag(config)
    Console().print(summary_table(result))
