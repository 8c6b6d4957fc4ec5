"""Options every stage command shares, declared once so their names and help read the same everywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from dolma_kit.executor import ExecutorConfig

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
        help="Where shard tasks run: local processes, or ray (a Ray cluster; pip install 'dolma-kit[ray]').",
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


def executor_config(executor: str, ray_address: str | None) -> ExecutorConfig:
    """The stage config's executor from the shared options (validated there: one message for every stage)."""
    from dolma_kit.executor import ExecutorConfig

    return ExecutorConfig(kind=executor, ray_address=ray_address)  # type: ignore[arg-type]
