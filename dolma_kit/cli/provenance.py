"""`dolma-kit provenance DIR`: which document a token came from, or where a document lies in the tokens."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dolma_kit.errors import DolmaKitError


def provenance(
    directory: Annotated[str, typer.Argument(help="A folder written by `dolma-kit tokenize`.")],
    token: Annotated[
        str | None, typer.Option(help="PART:OFFSET, e.g. part-00003:1234 or 3:1234 (token offset in a part).")
    ] = None,
    doc: Annotated[str | None, typer.Option(help="A document id.")] = None,
    source: Annotated[str | None, typer.Option(help="With --doc: only this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Look up a token offset (--token) or a document id (--doc) in a tokenized folder."""
    from dolma_kit.provenance import TokenizedDir

    if (token is None) == (doc is None):
        raise DolmaKitError("give exactly one of --token PART:OFFSET or --doc ID")
    tokenized = TokenizedDir.open(directory)
    if token is not None:
        part, sep, offset = token.rpartition(":")
        if not sep or not offset.lstrip("-").isdigit():
            raise DolmaKitError(f"--token {token!r}: expected PART:OFFSET, e.g. part-00000:42")
        found = [tokenized.locate(int(part) if part.isdigit() else part, int(offset))]
    else:
        found = tokenized.find_document(doc or "", source)
        if not found:  # the error alone: no empty table or `[]` before it
            raise DolmaKitError(
                f"{directory}: no document {doc!r}" + (f" in source {source!r}" if source else "")
            )
    if as_json:
        typer.echo(json.dumps([asdict(loc) for loc in found], ensure_ascii=False))
    else:
        table = Table(title=f"{directory}: {token or doc}" + (f" in {source}" if source else ""))
        for column in ("part", "start", "end", "tokens", "id", "source", "src:loc"):
            right = column in ("start", "end", "tokens")
            table.add_column(column, justify="right" if right else "left", overflow="fold")
        for loc in found:
            table.add_row(
                loc.part,
                f"{loc.start:,}",
                f"{loc.end:,}",
                f"{loc.end - loc.start:,}",
                loc.id,
                loc.source,
                f"{loc.src}:{loc.loc}",
            )
        Console().print(table)
