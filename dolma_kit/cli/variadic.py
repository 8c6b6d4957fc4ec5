"""Dolma-style list options: `--taggers a b c` as well as click's `--taggers a --taggers b`.

Click options take one value each; Dolma users write `--documents 'a/*.gz' 'b/*.gz' --taggers gopher c4`.
Before parsing, the values that follow a list option (up to the next `-…` token) are rewritten into repeated
options, so both spellings mean the same.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup


def _list_options(command: Any) -> set[str]:
    """The long and short names of the command's multi-value options (Typer vendors its own click, so the
    parameters are recognised by their attributes rather than by class)."""
    names: set[str] = set()
    for param in command.params:
        if getattr(param, "multiple", False) and not getattr(param, "is_flag", False):
            names.update(o for o in param.opts if o.startswith("-"))
    return names


def expand_variadic(args: list[str], list_options: set[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        out.append(arg)
        i += 1
        if arg == "--":
            out.extend(args[i:])
            break
        if arg in list_options:
            first = True
            while i < len(args) and not args[i].startswith("-"):
                if not first:
                    out.append(arg)
                out.append(args[i])
                first = False
                i += 1
    return out


class VariadicGroup(TyperGroup):
    """A Typer group whose subcommands accept several values after one list option."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            rest = expand_variadic(rest, _list_options(command))
        return name, command, rest
