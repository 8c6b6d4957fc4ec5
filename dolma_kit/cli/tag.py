"""`dolma-kit tag`: run taggers over document shards into attribute files (Dolma's option names)."""

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

Taggers = Annotated[list[str], typer.Option("--taggers", "-t", help="Taggers: NAME or NAME:key=value,...")]


def tag(
    documents: Documents,
    experiment: Experiment,
    taggers: Taggers,
    destination: Destination = None,
    processes: Processes = None,
    tagger_modules: Annotated[
        list[str] | None, typer.Option("--tagger-modules", help="Modules or .py files registering taggers.")
    ] = None,
    skip_bad: SkipBad = False,
    force: Force = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
) -> None:
    """Tag documents: language, quality, PII, classifiers → attribute files line-aligned with the shards."""
    from dolma_kit.executor import summary_table
    from dolma_kit.taggers.stage import TagConfig
    from dolma_kit.taggers.stage import tag as run_tag

    config = TagConfig(
        documents=documents,
        experiment=experiment,
        taggers=taggers,
        destination=destination,
        processes=processes,
        tagger_modules=tagger_modules or [],
        skip_bad=skip_bad,
        force=force,
        executor=executor_config(executor, ray_address),
    )
    result = run_tag(config)
    Console().print(summary_table(result))
