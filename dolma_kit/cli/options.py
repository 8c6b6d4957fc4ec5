"""Options every stage command shares, declared once so their names and help read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

Documents = Annotated[
    list[str], typer.Option("--documents", "-d", help="Document shards: paths, globs, URLs.")
]
Experiment = Annotated[
    str, typer.Option("--experiment", "-e", help="Experiment name (attribute folder/prefix).")
]
Destination = Annotated[
    str | None, typer.Option(help="Attribute root (default: documents/ → attributes/<experiment>/).")
]
Processes = Annotated[
    int | None, typer.Option("--processes", "-p", help="Worker processes (default: all cores).")
]
SkipBad = Annotated[bool, typer.Option(help="Count bad records into rejects/ instead of stopping.")]
Force = Annotated[bool, typer.Option(help="Redo shards already marked done.")]
