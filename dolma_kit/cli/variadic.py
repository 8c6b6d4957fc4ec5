"""Dolma's command-line habits: `--taggers a b c` as well as click's `--taggers a --taggers b`, and
`--tagger_modules` as well as `--tagger-modules`.

Click options take one value each; Dolma users write `--documents 'a/*.gz' 'b/*.gz' --taggers gopher c4`.
Before parsing, the values that follow a list option (up to the next `-…` token) are rewritten into repeated
options, so both spellings mean the same. Dolma (and OLMo) spell options with underscores (`--skip_bad`,
`--work_dir`); an underscore spelling of a declared option is rewritten to the declared one, so every command
takes both and `--help` shows one. Undeclared options (`run`'s and `train`'s `--STAGE.key=value` overrides)
are left as they are.
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


def _declared_options(command: Any) -> set[str]:
    """Every long option name the command declares (`--skip-bad` and `--no-skip-bad` both)."""
    names: set[str] = set()
    for param in command.params:
        for opt in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
            if opt.startswith("--"):
                names.add(opt)
    return names


def dolma_spellings(args: list[str], declared: set[str]) -> list[str]:
    """`--skip_bad` → `--skip-bad` (and `--tagger_modules=x` → `--tagger-modules=x`) where the command declares
    the dashed name and not the underscored one; everything after `--` is left alone."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        name, eq, value = arg.partition("=")
        dashed = "--" + name[2:].replace("_", "-")
        if arg.startswith("--") and "_" in name and name not in declared and dashed in declared:
            arg = dashed + eq + value
        out.append(arg)
    return out


def expand_variadic(args: list[str], list_options: set[str]) -> list[str]:
    """Values after a list option (up to the next `-…` token) → the option repeated before each value."""
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
    """A Typer group whose subcommands accept several values after one list option, and Dolma's underscore
    spellings of their options."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            rest = dolma_spellings(rest, _declared_options(command))
            rest = expand_variadic(rest, _list_options(command))
        return name, command, rest
