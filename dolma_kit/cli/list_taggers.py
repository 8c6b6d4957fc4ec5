"""`dolma-kit list`: the registered taggers, their aliases, options and attributes."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def list_taggers(
    tagger_modules: Annotated[
        list[str] | None, typer.Option("--tagger-modules", help="Also load taggers from these modules.")
    ] = None,
) -> None:
    """List taggers: name, alias, options with defaults, and what each computes."""
    from dolma_kit.taggers.registry import aliases, load_tagger_modules, registered_taggers

    load_tagger_modules(tagger_modules or [])
    alias_of = {real: alias for alias, real in aliases().items()}
    table = Table(title="taggers (use NAME or NAME:key=value,... with `dolma-kit tag --taggers`)")
    table.add_column("name", no_wrap=True)
    table.add_column("alias", no_wrap=True)
    table.add_column("options (defaults)")
    table.add_column("what it does")
    for name, cls in registered_taggers().items():
        options = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(cls.Config))
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        table.add_row(name, alias_of.get(name, ""), options, doc)
    Console().print(table)


def _default(f: dataclasses.Field) -> str:  # type: ignore[type-arg]
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if isinstance(value, tuple | list):
        return "|".join(map(str, value))
    return str(value)
