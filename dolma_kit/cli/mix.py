"""`dolma-kit mix RECIPE`: run a mix recipe (ours or a Dolma mixer config); `--explain` prints it resolved."""

from __future__ import annotations

from typing import Annotated

import typer

from dolma_kit.cli.options import RUN_OPTIONS, stage_command


@stage_command("mix", *RUN_OPTIONS, cli_only=("explain",))
def mix(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML (mixers/NAME.yaml) or a Dolma mixer config.")],
    explain: Annotated[
        bool,
        typer.Option(help="Print the resolved (or translated) recipe and exit without reading documents."),
    ] = False,
    dolma_compatible: Annotated[
        bool,
        typer.Option(
            help="In Dolma mixer configs, reproduce Dolma 1.2.1 where it is arguably wrong (an integer score 1 "
            "is not >= 1.0); the run's table says how often that decided a document."
        ),
    ] = False,
    examples: Annotated[
        int,
        typer.Option(
            metavar="N",
            min=0,
            help="Documents sampled per rule and stream, removed and kept, with the attribute values that "
            "decided, into OUTPUT/examples.json (seeded; the same for any sharding); 0 writes none.",
        ),
    ] = 10,  # the config's default (tests/test_layout.py checks): the CLI imports no stage module
) -> None:
    """Mix documents: join attributes, filter, mask spans, sample, reshard; a table of what each rule did."""
    if explain:
        from rich.console import Console

        from dolma_kit.mix import report
        from dolma_kit.mix.recipe import load_recipe
        from dolma_kit.mix.stage import resolve

        loaded = load_recipe(recipe)
        plans, tasks = resolve(loaded, dolma_compatible=dolma_compatible)
        shards = {p.name: sum(t.key.startswith(p.name + "/") for t in tasks) for p in plans}
        Console().print(report.explain(loaded, plans, shards))
        raise typer.Exit()
