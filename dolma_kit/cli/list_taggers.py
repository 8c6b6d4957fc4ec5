"""`dolma-kit list`: the registered taggers, their aliases, what each computes, the attribute names a recipe
refers to (`gopher.pass`), and the options with their defaults.

One block per tagger rather than one wide table: the option lists are long, and a table squeezed to 80 columns
(or piped, where rich assumes 80) wraps them a word a line. Blocks wrap like prose at any width.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Annotated

import typer
from rich.console import Console

#: attribute names listed in full up to this many; past it (a language model's 176 labels) a few and the count
SHOWN = 24


def list_taggers(
    tagger_modules: Annotated[
        list[str] | None, typer.Option("--tagger-modules", help="Also load taggers from these modules.")
    ] = None,
) -> None:
    """List taggers: name, alias, what each computes, its attribute names as a recipe writes them, options."""
    from dolma_kit.taggers.registry import (
        aliases,
        default_attribute_names,
        load_tagger_modules,
        registered_taggers,
    )

    load_tagger_modules(tagger_modules or [])
    alias_of = {real: alias for alias, real in aliases().items()}
    console = Console(highlight=False)
    width = max(40, min(console.width, 100))
    console.print(
        _wrap(
            "Taggers for `dolma-kit tag --taggers NAME` or `NAME:key=value,...`. A recipe refers to an attribute "
            "as TAGGER.NAME (e.g. gopher.pass), TAGGER being the name given to --taggers; attribute files say "
            "<experiment>__TAGGER__NAME.",
            "",
            width,
        )
        + "\n",
        markup=False,
        soft_wrap=True,
    )
    for name, cls in registered_taggers().items():
        alias = alias_of.get(name)
        prefix = alias or name
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        names, why = default_attribute_names(cls)
        if names is None:
            attributes = f"set by its options: {why}"
        elif len(names) > SHOWN:
            attributes = f"{prefix}.LABEL, one per label ({len(names)}): {', '.join(names[: SHOWN // 2])}, …"
        else:
            attributes = ", ".join(f"{prefix}.{n}" for n in names)
        options = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(cls.Config)) or "none"
        lines = [name + (f" (alias {alias})" if alias else "")]
        lines += [_wrap(text, f"  {label:<11}", width) for label, text in
                  (("what", doc), ("attributes", attributes), ("options", options))]  # fmt: skip
        console.print("\n".join(lines), markup=False, soft_wrap=True)


def _wrap(text: str, label: str, width: int) -> str:
    """`text` wrapped to `width` after `label`, continuation lines indented under the text (no trailing blanks,
    so it reads the same piped as on a terminal)."""
    return textwrap.fill(
        text, width, initial_indent=label, subsequent_indent=" " * len(label), break_on_hyphens=False
    )


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
