"""`dolma-kit train-tokenizer`: a byte-level BPE tokenizer.json with EOS, PAD and the PII masks reserved."""

from __future__ import annotations

from typing import Annotated

import typer

from dolma_kit.cli.options import stage_command


@stage_command("train-tokenizer", "documents")
def train_tokenizer(
    vocab_size: Annotated[int, typer.Option(help="Total ids (256 bytes and the reserved tokens included).")],
    output: Annotated[str, typer.Option(help="tokenizer.json to write.")],
    min_frequency: Annotated[int, typer.Option(help="Merge only pairs seen at least this often.")] = 2,
    sample: Annotated[
        float, typer.Option(help="Fraction of documents to train on (seeded hash of source and id).")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of --sample.")] = 0,
) -> None:
    """Train a byte-level BPE (GPT-2's scheme) on the documents; the same input gives the same file."""
