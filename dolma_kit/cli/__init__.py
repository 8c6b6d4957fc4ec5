"""The `dolma-kit` command: one thin module per subcommand; the work lives in the stage modules."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

# the stage subcommands register themselves (`cli.options.STAGE_COMMANDS`) as their modules load
from dolma_kit.cli import (  # noqa: F401
    decontaminate,
    dedup,
    dedup_minhash,
    list_taggers,
    mix,
    provenance,
    run,
    show,
    stats,
    tag,
    tokenize,
    trace,
    train,
    train_classifier,
    train_tokenizer,
    train_tools,
)
from dolma_kit.cli.help import ReadableCommand
from dolma_kit.cli.options import STAGE_COMMANDS
from dolma_kit.cli.variadic import VariadicGroup
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor.local import Interrupted, stop_on_signals
from dolma_kit.index import cli as index_cli
from dolma_kit.stages import MODULES
from dolma_kit.storage import os_reason
from dolma_kit.tokenize import commands as tokenize_commands

app = typer.Typer(
    cls=VariadicGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Raw text shards to a language model, every step inspectable: tag, dedup, mix, tokenize, train.",
)
dedup_app = typer.Typer(
    cls=VariadicGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Find duplicates and write them as attributes; `mix` decides what to drop.",
)
# the stage subcommands, in the registry's order (`dedup exact` is `exact` under `dedup`)
for _name in MODULES:
    if _name not in STAGE_COMMANDS:
        raise RuntimeError(f"stage {_name!r} has no subcommand: declare one with cli.options.stage_command")
    _command, _context = STAGE_COMMANDS[_name]
    _group, _, _sub = _name.partition(" ")
    if _sub:
        dedup_app.command(_sub, context_settings=_context or None)(_command)
    else:
        app.command(_name, context_settings=_context or None)(_command)
dedup_app.command("dolma")(dedup.dolma)  # a Dolma dedupe config, run as `dedup exact`
app.add_typer(dedup_app, name="dedup")
app.command("list")(list_taggers.list_taggers)
app.command("train-classifier")(train_classifier.train_classifier)
app.command("trace")(trace.trace)
app.command("export-hf")(train_tools.export_hf)
app.command("average-checkpoints")(train_tools.average_checkpoints)
app.command("memorization")(train_tools.memorization)
app.command("provenance")(provenance.provenance)
app.command("show")(show.show)
app.command("tokenize-dolma")(tokenize_commands.tokenize_dolma)
app.command("tokenize-adopt")(tokenize_commands.tokenize_adopt)
app.command("index")(index_cli.index)
app.command("find")(index_cli.find)
app.command("trace-output")(index_cli.trace_output)
app.command("run", context_settings=run.CONTEXT)(run.run)

# every command's help names values as they are written (`RECIPE`, `N`, `exact|estimate`): cli/help.py
for _typer in (app, dedup_app):
    for _info in _typer.registered_commands:
        if _info.cls in (None, TyperCommand):
            _info.cls = ReadableCommand

err_console = Console(stderr=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors print one red line and exit 2, never a traceback.

    SIGINT and SIGTERM stop the command (worker processes ended) with one line saying how far it got, and exit
    130 / 143. An OSError or S3 error that no lower layer named is printed the same way (exit 2).
    """
    try:
        with stop_on_signals():
            app(args=argv)
    except Interrupted as exc:
        err_console.print(escape(str(exc)), highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _user_error(exc: Exception) -> str | None:
    """The one-line message for an error a user can act on: ours, the disk's, or S3's; None for a bug."""
    if isinstance(exc, DolmaKitError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.filename}: {os_reason(exc)}" if exc.filename is not None else os_reason(exc)
    botocore = sys.modules.get("botocore.exceptions")  # only loaded when S3 was used
    if botocore is not None and isinstance(exc, (botocore.BotoCoreError, botocore.ClientError)):
        return f"S3: {exc}"
    return None
