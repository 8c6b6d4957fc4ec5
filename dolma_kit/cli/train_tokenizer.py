"""`dolma-kit train-tokenizer`: a byte-level BPE tokenizer.json with EOS, PAD and the PII masks reserved."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from dolma_kit.cli.options import Documents


def train_tokenizer(
    documents: Documents,
    vocab_size: Annotated[int, typer.Option(help="Total ids (256 bytes and the reserved tokens included).")],
    output: Annotated[str, typer.Option(help="tokenizer.json to write.")],
    min_frequency: Annotated[int, typer.Option(help="Merge only pairs seen at least this often.")] = 2,
    sample: Annotated[
        float, typer.Option(help="Fraction of documents to train on (seeded hash of source and id).")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of --sample.")] = 0,
) -> None:
    """Train a byte-level BPE (GPT-2's scheme) on the documents; the same input gives the same file."""
    from dolma_kit.tokenize.training import RESERVED, TrainTokenizerConfig
    from dolma_kit.tokenize.training import train_tokenizer as run_training

    result = run_training(
        TrainTokenizerConfig(
            documents=documents,
            vocab_size=vocab_size,
            output=output,
            min_frequency=min_frequency,
            sample=sample,
            seed=seed,
        )
    )
    console = Console()
    console.print(
        f"trained on {result.documents:,} documents ({result.characters:,} characters) → {result.output}: "
        f"{result.vocab_size:,} ids"
    )
    console.print(
        "reserved: " + ", ".join(f"{i} {token}" for i, token in enumerate(RESERVED)), highlight=False
    )
    if result.vocab_size < vocab_size:
        console.print(f"[yellow]the corpus supports only {result.vocab_size:,} of {vocab_size:,} ids[/]")
