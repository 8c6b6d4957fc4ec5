"""`dolma-kit tag`: run taggers over document shards into attribute files (Dolma's option names)."""

from __future__ import annotations

from typing import Annotated

import typer

from dolma_kit.cli.options import RUN_OPTIONS, stage_command


@stage_command("tag", "documents", "experiment", "destination", *RUN_OPTIONS)
def tag(
    taggers: Annotated[
        list[str], typer.Option("--taggers", "-t", help="Taggers: NAME or NAME:key=value,...")
    ],
    tagger_modules: Annotated[
        list[str] | None, typer.Option("--tagger-modules", help="Modules or .py files registering taggers.")
    ] = None,
) -> None:
    """Tag documents: language, quality, PII, classifiers → attribute files line-aligned with the shards."""
