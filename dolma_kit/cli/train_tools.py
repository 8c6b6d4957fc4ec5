"""`dolma-kit export-hf`, `average-checkpoints`, `memorization`: what is done with a training run's checkpoints
after (or beside) training. The trainer and torch are imported inside each command, so the rest of the CLI
starts without them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

RunArg = Annotated[Path, typer.Argument(help="Run folder (config.yaml, checkpoints/).")]


def export_hf(
    run: RunArg,
    out: Annotated[Path, typer.Argument(help="Output folder for the Hugging Face checkpoint.")],
    step: Annotated[
        int | None, typer.Option(help="Checkpoint step (default: the newest complete one).")
    ] = None,
    dtype: Annotated[
        str, typer.Option(metavar="float32|bfloat16|float16", help="Weights dtype.")
    ] = "float32",
    tokenizer: Annotated[
        str | None, typer.Option(help="tokenizer.json, when the manifest's path is not reachable from here.")
    ] = None,
) -> None:
    """Write a checkpoint as a transformers OlmoForCausalLM folder (safetensors, config, tokenizer)."""
    from train.export_hf import export_hf as run_export

    info = run_export(run, out, step=step, dtype=dtype, tokenizer=tokenizer)
    Console().print(
        f"step {info['step']} ({info['parameters']:,} parameters) → {info['out']}: {', '.join(info['files'])}\n"
        f"load with: AutoModelForCausalLM.from_pretrained({str(out)!r})",
        highlight=False,
    )


def average_checkpoints(
    run: RunArg,
    out: Annotated[Path, typer.Argument(help="Output run folder holding the averaged checkpoint.")],
    last: Annotated[int, typer.Option(help="Average the last this many complete checkpoints.")] = 5,
) -> None:
    """Average the model weights of the last K checkpoints in fp32 (OpenELM); OUT is a run folder that
    export-hf, memorization and the trainer (as a starting point) read."""
    from train.weights import average_checkpoints as run_average

    info = run_average(run, last, out)
    Console().print(f"averaged steps {info['steps']} → {info['out']}/checkpoints/step{info['step']}")


def memorization(
    run: RunArg,
    step: Annotated[int, typer.Option(help="Checkpoint step; sequences are drawn from steps 1 … N.")],
    prompt: Annotated[int, typer.Option(help="Prompt tokens taken from each training sequence.")] = 32,
    continuation: Annotated[int, typer.Option(help="Tokens decoded greedily and compared.")] = 32,
    samples: Annotated[int, typer.Option(help="Training sequences sampled.")] = 100,
    seed: Annotated[int, typer.Option(help="Seeds the sample.")] = 0,
    chunks: Annotated[int, typer.Option(help="Buckets of first-seen steps.")] = 10,
    out: Annotated[
        Path | None,
        typer.Option("--output", "--out", help="Report folder (default: RUN/memorization)."),
    ] = None,
    device: Annotated[str, typer.Option(metavar="cpu|cuda", help="Where the model decodes.")] = "cpu",
) -> None:
    """Greedy extraction of training sequences (LLM360 Analysis360): exact match by data chunk and source."""
    from rich.table import Table

    from train.memorization import memorization as run_memorization
    from train.memorization import write_report

    result = run_memorization(
        run,
        step=step,
        prompt=prompt,
        continuation=continuation,
        samples=samples,
        seed=seed,
        chunks=chunks,
        device=device,
    )
    json_path, png_path = write_report(result, out or run / "memorization")
    console = Console()
    for key, title in (("by_chunk", "first seen at steps"), ("by_source", "source")):
        table = Table(title=f"memorization at step {step}, by {title}")
        for column in (title, "n", "exact match", "full match"):
            table.add_column(column, justify="left" if column == title else "right")
        for r in result[key]:
            table.add_row(r["group"], str(r["n"]), f"{r['exact_match']:.3f}", f"{r['full_match']:.3f}")
        console.print(table)
    console.print(f"mean exact match {result['exact_match']:.3f}, full match {result['full_match']:.3f}")
    console.print(f"wrote {json_path} and {png_path}")
