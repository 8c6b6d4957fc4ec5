"""`dolma-kit dedup exact`: exact duplicates (URL, text, paragraphs) as attributes for `mix`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from dolma_kit.cli.options import RUN_OPTIONS, stage_command


class Key(str, Enum):
    url = "url"
    text = "text"
    paragraphs = "paragraphs"
    id = "id"


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
    partitions: Annotated[
        int | None, typer.Option(help="Hash partitions; resolve memory ≈ all keys / partitions.")
    ] = None,
    url_field: Annotated[str, typer.Option(help="Metadata field with the URL (a.b: nested).")] = "url",
    min_paragraph_chars: Annotated[
        int, typer.Option(help="Skip paragraphs shorter than this once normalised.")
    ] = 0,
) -> None:
    """Exact duplicates by normalised URL, text or paragraph; the first in (source, shard, line) order wins."""
