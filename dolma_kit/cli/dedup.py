"""`dolma-kit dedup exact`: exact duplicates (URL, text, paragraphs) as attributes for `mix`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from dolma_kit.cli.options import RUN_OPTIONS, Force, Processes, SkipBad, stage_command


class Key(str, Enum):
    url = "url"
    text = "text"
    paragraphs = "paragraphs"
    id = "id"


KeepWork = Annotated[
    bool, typer.Option(help="Keep the hash and resolve files after success (default: removed).")
]


@stage_command("dedup exact", "documents", "experiment", "destination", *RUN_OPTIONS)
def exact(
    key: Annotated[
        Key,
        typer.Option(help="Same normalised URL, whole text, paragraph (as spans), or id within a source."),
    ],
    work_dir: Annotated[
        str | None,
        typer.Option(help="Intermediate files go to <work-dir>/exact/ (default: <attribute root>/_work)."),
    ] = None,
    keep_work: KeepWork = False,
    partitions: Annotated[
        int | None, typer.Option(help="Hash partitions; resolve memory ≈ all keys / partitions.")
    ] = None,
    url_field: Annotated[str, typer.Option(help="Metadata field with the URL (a.b: nested).")] = "url",
    min_paragraph_chars: Annotated[
        int, typer.Option(help="Skip paragraphs shorter than this once normalised.")
    ] = 0,
    min_paragraph_words: Annotated[
        int, typer.Option(help="Skip paragraphs of fewer words (Dolma's min_words); 1: every paragraph.")
    ] = 3,
) -> None:
    """Exact duplicates by normalised URL, text or paragraph; the first in (source, shard, line) order wins."""


def dolma(
    config: Annotated[str, typer.Option("--config", "-c", help="A Dolma dedupe config (JSON or YAML).")],
    dolma_compat: Annotated[
        bool, typer.Option(help="Reproduce Dolma 1.2.1 where it is wrong (the run lists each such place).")
    ] = False,
    work_dir: Annotated[
        str | None, typer.Option(help="Intermediate files (default: <attribute root>/_work).")
    ] = None,
    keep_work: KeepWork = False,
    processes: Processes = None,
    skip_bad: SkipBad = False,
    force: Force = False,
    dry_run: Annotated[bool, typer.Option(help="Print the translated config and stop.")] = False,
) -> None:
    """Run a Dolma dedupe config (`dolma dedupe -c FILE`) exactly: Dolma's attribute names and values."""
    from rich.console import Console

    from dolma_kit.config import to_dict
    from dolma_kit.dedup.dolma_config import build, load
    from dolma_kit.stages import stage

    file = load(config)
    options = {"processes": processes, "work_dir": work_dir, "keep_work": keep_work, "skip_bad": skip_bad,
               "force": force}  # fmt: skip
    exact_config, notes = build(file, config, compat=dolma_compat, **options)
    console = Console()
    for note in notes:
        console.print(note, highlight=False)
    if dry_run or file.dryrun:
        console.print_json(data=to_dict(exact_config))
        return
    stage("dedup exact").execute(exact_config, console)
