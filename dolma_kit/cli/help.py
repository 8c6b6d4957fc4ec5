"""How `--help` names values: `RECIPE`, `N`, `exact|estimate`, never `{recipe}` or `<str>`.

Typer (0.29, which vendors click) writes a required argument as `{recipe}` in the usage line and every value
by its Python type (`<str>`, `<int>`, `<list[str]>`, and `<bool>` even for flags). A reader wants what to
write there: the argument's name in capitals, `N` for a count, the allowed values where there is a fixed set.
`ReadableCommand` is the command class every `dolma-kit` subcommand is built with; it fills in a placeholder
for each parameter that did not declare its own `metavar` (a fixed set of values is declared at the option,
beside its help, e.g. `metavar="exact|estimate"`), so the help reads the same in every command.
"""

from __future__ import annotations

import typing
from typing import Any

from typer.core import TyperArgument, TyperCommand

#: placeholder by the option's value type (`type_descriptor.annotation`), for options without a metavar
BY_TYPE: dict[Any, str] = {int: "N", float: "NUMBER", str: "TEXT"}


def _annotation(param: Any) -> Any:
    descriptor = getattr(param, "type_descriptor", None)
    return getattr(descriptor, "annotation", None)


def placeholder(param: Any) -> str | None:
    """The metavar an undeclared parameter gets: `NAME` for an argument, none for a flag, `N` / `NUMBER` /
    `TEXT` / `PATH` by type (`TEXT…` for a list option), the choices of an enum; None: leave typer's own."""
    if isinstance(param, TyperArgument):
        return param.name.upper() if param.name else None
    if getattr(param, "is_flag", False):
        return ""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and getattr(descriptor, "is_choice", False) and descriptor.choices:
        return "|".join(str(getattr(c, "value", c)) for c in descriptor.choices)
    annotation = _annotation(param)
    many = typing.get_origin(annotation) in (list, tuple)
    if many:
        annotation = next(iter(typing.get_args(annotation)), str)
    name = BY_TYPE.get(annotation) or ("PATH" if getattr(annotation, "__name__", "") == "Path" else None)
    if name is None:
        return None
    return f"{name}…" if many else name


def readable(command: Any, ctx: Any) -> None:
    """Give every parameter of `command` (`--help` included) without a declared metavar its placeholder."""
    for param in command.get_params(ctx):
        if param.metavar is not None:
            continue
        name = placeholder(param)
        if name is None:
            continue
        param.metavar = name
        if isinstance(param, TyperArgument):  # the name column already shows it: no type column
            param.display_type_rich = lambda ctx: None


class ReadableCommand(TyperCommand):
    """A Typer command whose help names values as a reader writes them (see the module docstring)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        readable(self, ctx)
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                name += "…" if param.nargs != 1 else ""
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_help(self, ctx: Any, formatter: Any) -> None:
        readable(self, ctx)
        super().format_help(ctx, formatter)
