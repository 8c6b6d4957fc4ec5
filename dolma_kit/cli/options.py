"""Options every stage command shares, declared once so their names and help read the same everywhere."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any

import typer
from rich.console import Console

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
Executor = Annotated[
    str,
    typer.Option(
        "--executor",
        metavar="local|ray",
        help="Where shard tasks run: local processes, or ray (a Ray cluster; pip install 'dolma-kit\\[ray]').",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to join (auto, HOST:PORT, ray://HOST:10001); default: start a local one "
        "with --processes CPUs.",
    ),
]


#: name → (option type, default) of every option stages share; `stage_command` adds the ones a stage names.
SHARED: dict[str, tuple[Any, Any]] = {
    "documents": (Documents, inspect.Parameter.empty),
    "experiment": (Experiment, inspect.Parameter.empty),
    "destination": (Destination, None),
    "processes": (Processes, None),
    "skip_bad": (SkipBad, False),
    "force": (Force, False),
    "executor": (Executor, "local"),
    "ray_address": (RayAddress, None),
}
#: shared options listed before a stage's own in --help (what to read, what to call the result)
LEADING = ("documents", "experiment")
#: what most stages take: where shards run, how bad records and finished shards are treated
RUN_OPTIONS = ("processes", "skip_bad", "force", "executor", "ray_address")


#: stage name → (command, Typer context settings): every stage's subcommand, filled as the CLI modules load;
#: `dolma_kit.cli` adds them to the app in the registry's order.
STAGE_COMMANDS: dict[str, tuple[Callable[..., None], dict[str, Any]]] = {}


def register(name: str, **context: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Record `fn` as stage `name`'s subcommand (for a stage whose command is not a `stage_command`)."""

    def add(fn: Callable[..., None]) -> Callable[..., None]:
        STAGE_COMMANDS[name] = (fn, context)
        return fn

    return add


def stage_command(
    name: str, *shared: str, cli_only: tuple[str, ...] = ()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The subcommand of stage `name` (see `dolma_kit.stages`). The decorated function declares the stage's
    own options (its body runs first: `--explain` prints and exits); `shared` names the options from `SHARED`
    it also takes; `cli_only` names own options that are not config keys. The command builds the stage's
    config from all of them with `config.from_dict` and runs the stage's declaration: the same run, counts
    and printing as a pipeline stage."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(fn, eval_str=True).parameters.values())
        added = [
            inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY, annotation=SHARED[n][0], default=SHARED[n][1]
            )
            for n in shared
        ]
        leading = [p for p in added if p.name in LEADING]  # what to read comes first in --help
        params = leading + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params += [p for p in added if p.name not in LEADING]

        def command(**options: Any) -> None:
            fn(**{p.name: options[p.name] for p in own})
            run_stage(name, {k: v for k, v in options.items() if k not in cli_only})

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__doc__, command.__name__ = fn.__doc__, fn.__name__
        return register(name)(command)

    return wrap


def run_stage(name: str, options: dict[str, Any]) -> None:
    """Build stage `name`'s config from command-line options (unset ones take the config's defaults) and run it."""
    from dolma_kit.config import Where, from_dict
    from dolma_kit.stages import stage

    declared = stage(name)
    values = {k: (v.value if isinstance(v, Enum) else v) for k, v in options.items() if v is not None}
    config = from_dict(declared.config, values, Where(context=f"dolma-kit {name}", options=True), flat=True)
    declared.execute(config, Console())
