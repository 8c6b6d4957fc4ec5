"""`dolma-kit mix RECIPE`: run a mix recipe (ours or a Dolma mixer config); `--explain` prints it resolved."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from dolma_kit.cli.options import Executor, Force, Processes, RayAddress, SkipBad, executor_config


def mix(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML (mixers/NAME.yaml) or a Dolma mixer config.")],
    processes: Processes = None,
    force: Force = False,
    skip_bad: SkipBad = False,
    explain: Annotated[
        bool,
        typer.Option(help="Print the resolved (or translated) recipe and exit without reading documents."),
    ] = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
) -> None:
    """Mix documents: join attributes, filter, mask spans, sample, reshard; a table of what each rule did."""
    from dolma_kit.mix import report as mix_report
    from dolma_kit.mix import stage
    from dolma_kit.mix.recipe import load_recipe

    run = executor_config(executor, ray_address)
    loaded = load_recipe(recipe)
    console = Console()
    if explain:
        plans, tasks = stage.resolve(loaded)
        shards = {p.name: sum(t.key.startswith(p.name + "/") for t in tasks) for p in plans}
        console.print(mix_report.explain(loaded, plans, shards))
        return
    result = stage.mix(loaded, processes=processes, force=force, skip_bad=skip_bad, executor=run)
    console.print(mix_report.summary_table(result))
