"""`dolma-kit tokenize`: document shards → uint16 memmaps (OLMo), Dolma's metadata CSVs, provenance index."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dolma_kit.cli.options import Documents, Executor, Force, RayAddress, SkipBad, executor_config


def tokenize(
    documents: Documents,
    destination: Annotated[
        str, typer.Option(help="Output folder: part-<n>.npy, .csv.gz, index, manifest.json.")
    ],
    tokenizer: Annotated[
        str, typer.Option(help="tokenizer.json path, or `gpt2` (GPT-2's vocabulary, shipped, offline).")
    ],
    dtype: Annotated[str, typer.Option(help="uint16, uint32, or auto (uint16 when every id fits).")] = "auto",
    processes: Annotated[
        int | None,
        typer.Option("--processes", "-p", help="Worker processes (default: one per 8 cores; see --threads)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the within-file document shuffle.")] = 0,
    max_tokens_per_file: Annotated[
        int, typer.Option(help="Roll to a new part past this many tokens (whole documents).")
    ] = 512 * 2**20,
    eos_id: Annotated[
        int | None, typer.Option(help="EOS id (default: the tokenizer's <|endoftext|>-like special token).")
    ] = None,
    pad_id: Annotated[
        int | None, typer.Option(help="PAD id recorded in the manifest (default: found).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Encoding threads per process (default: cores / processes).")
    ] = None,
    skip_bad: SkipBad = False,
    force: Force = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
) -> None:
    """Tokenize documents: EOS after each, shuffled within each file (seeded), parts identical for any -p."""
    from dolma_kit.executor import summary_table, write_summary
    from dolma_kit.tokenize.stage import TokenizeConfig
    from dolma_kit.tokenize.stage import tokenize as run_tokenize

    config = TokenizeConfig(
        documents=documents,
        destination=destination,
        tokenizer=tokenizer,
        dtype=dtype,
        processes=processes,
        seed=seed,
        max_tokens_per_file=max_tokens_per_file,
        eos_id=eos_id,
        pad_id=pad_id,
        threads=threads,
        skip_bad=skip_bad,
        force=force,
        executor=executor_config(executor, ray_address),
    )
    result, manifest = run_tokenize(config)
    write_summary(result, f"{destination.rstrip('/')}/tokenize_summary.json")
    console = Console()
    console.print(summary_table(result))
    table = Table(
        title=f"{destination}: {len(manifest['parts'])} parts, {manifest['dtype']}, "
        f"tokenizer {manifest['tokenizer']['name']} (EOS {manifest['eos_id']})"
    )
    for column in ("source", "documents", "tokens", "tokens/doc"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, counts in [*manifest["per_source"].items(), ("total", manifest)]:
        docs, toks = counts["documents"], counts["tokens"]
        table.add_row(
            source,
            f"{docs:,}",
            f"{toks:,}",
            f"{toks / max(docs, 1):,.0f}",
            style="bold" * (source == "total"),
        )
    console.print(table)
