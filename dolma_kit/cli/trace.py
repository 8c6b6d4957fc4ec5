"""`dolma-kit trace RUN --step N | --doc ID | --sources --until N`: what a training run saw, from its data order
and the provenance index (train/trace.py). The trainer is imported inside the command (it imports torch)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dolma_kit.errors import DolmaKitError


def trace(
    run: Annotated[Path, typer.Argument(help="Run folder (holds config.yaml and data_order.npy).")],
    step: Annotated[int | None, typer.Option(help="List the documents in this step's global batch.")] = None,
    doc: Annotated[str | None, typer.Option(help="List every step that trained on this document id.")] = None,
    source: Annotated[str | None, typer.Option(help="With --doc: only the document of this source.")] = None,
    sources: Annotated[bool, typer.Option("--sources", help="Tokens per source seen up to --until.")] = False,
    until: Annotated[
        int | None,
        typer.Option(help="Last step counted by --sources or listed by --doc (default: all scheduled)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON Lines instead of a table.")] = False,
) -> None:
    """Trace a run's data: documents of a step, steps of a document, tokens per source."""
    if sum([step is not None, doc is not None, sources]) != 1:
        raise DolmaKitError("give exactly one of --step N, --doc ID, --sources")
    from train.trace import RunTrace

    rt = RunTrace(run)
    console = Console()
    if sources:
        last = rt.max_steps if until is None else until
        counts = rt.source_tokens(last)
        if as_json:
            print(json.dumps({"until": last, "tokens": counts}))
            return
        total = sum(counts.values()) or 1
        table = Table(title=f"tokens per source, steps 1 … {last}")
        for column in ("source", "tokens", "share"):
            table.add_column(column, justify="left" if column == "source" else "right")
        for name, n in counts.items():
            table.add_row(name, f"{n:,}", f"{100 * n / total:.1f}%")
        console.print(table)
        return
    if step is not None and step in rt.skipped:
        Console(stderr=True).print(
            f"[yellow]step {step} was skipped by spike recovery (recovery.json): its batch was never trained on[/]"
        )
    rows = rt.step_documents(step) if step is not None else rt.document_steps(doc, source)
    if doc is not None and until is not None:
        rows = [r for r in rows if r.step <= until]
    if as_json:
        for row in rows:
            print(json.dumps(dataclasses.asdict(row)))
        return
    if not rows:
        console.print(
            f"document {doc!r} was never in a training batch of this run (held out, dropped or absent)"
        )
        return
    title = f"step {step}: {len(rows)} document spans" if step is not None else f"document {doc}"
    table = Table(title=title)
    for column in ("step", "instance", "id", "source", "input file:line", "part[tokens]", "document"):
        table.add_column(
            column, justify="right" if column in ("step", "instance") else "left", overflow="fold"
        )
    for r in rows:
        table.add_row(
            str(r.step),
            str(r.instance),
            r.id,
            r.source,
            f"{r.src}:{r.loc}",
            f"{Path(r.part).name}[{r.start}:{r.end}]",
            f"[{r.doc_start}:{r.doc_end}]",
        )
    console.print(table)
