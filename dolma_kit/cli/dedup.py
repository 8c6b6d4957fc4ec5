"""`dolma-kit dedup …`: deduplication subcommands (exact, minhash), all writing attributes for `mix`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer
from rich.console import Console

from dolma_kit.cli import dedup_minhash
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
from dolma_kit.cli.variadic import VariadicGroup

app = typer.Typer(
    cls=VariadicGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Find duplicates and write them as attributes; `mix` decides what to drop.",
)


class Key(str, Enum):
    url = "url"
    text = "text"
    paragraphs = "paragraphs"


@app.command("exact")
def exact(
    documents: Documents,
    experiment: Experiment,
    key: Annotated[Key, typer.Option(help="Same normalised URL, whole text, or paragraph (as spans).")],
    destination: Destination = None,
    work_dir: Annotated[
        str | None,
        typer.Option(help="Intermediate files go to <work-dir>/exact/ (default: <attribute root>/_work)."),
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(help="Hash partitions; resolve memory ≈ all keys / partitions.")
    ] = None,
    processes: Processes = None,
    skip_bad: SkipBad = False,
    force: Force = False,
    url_field: Annotated[str, typer.Option(help="Metadata field with the URL (a.b: nested).")] = "url",
    min_paragraph_chars: Annotated[
        int, typer.Option(help="Skip paragraphs shorter than this once normalised.")
    ] = 0,
    executor: Executor = "local",
    ray_address: RayAddress = None,
) -> None:
    """Exact duplicates by normalised URL, text or paragraph; the first in (source, shard, line) order wins."""
    import json

    from dolma_kit import storage
    from dolma_kit.dedup.exact import ExactDedupConfig, dedup_exact, summary_paths
    from dolma_kit.executor import summary_table

    config = ExactDedupConfig(
        documents=documents,
        experiment=experiment,
        key=key.value,
        destination=destination,
        work_dir=work_dir,
        partitions=partitions,
        processes=processes,
        skip_bad=skip_bad,
        force=force,
        url_field=url_field,
        min_paragraph_chars=min_paragraph_chars,
        executor=executor_config(executor, ray_address),
    )
    result = dedup_exact(config)
    console = Console()
    console.print(summary_table(result))
    summary = json.loads(storage.read_text(summary_paths(config)[0]))
    counts = {k: v for k, v in summary["exact"].items() if k not in ("key", "settings", "work_dir")}
    console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()), highlight=False)


app.command("minhash")(dedup_minhash.minhash)
