"""`dolma-kit tokenize`: document shards → uint16 memmaps (OLMo), Dolma's metadata CSVs, provenance index."""

from __future__ import annotations

from typing import Annotated

import typer

from dolma_kit.cli.options import stage_command


@stage_command("tokenize", "documents", "skip_bad", "force", "executor", "ray_address")
def tokenize(
    destination: Annotated[
        str, typer.Option(help="Output folder: part-<n>.npy, .csv.gz, index, manifest.json.")
    ],
    tokenizer: Annotated[
        str, typer.Option(help="tokenizer.json path, or `gpt2` (GPT-2's vocabulary, shipped, offline).")
    ],
    dtype: Annotated[
        str,
        typer.Option(metavar="auto|uint16|uint32", help="Token id type (auto: uint16 when every id fits)."),
    ] = "auto",
    processes: Annotated[
        int | None,
        typer.Option("--processes", "-p", help="Worker processes (default: one per 8 cores; see --threads)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the within-file document shuffle.")] = 0,
    max_tokens_per_file: Annotated[
        int, typer.Option(help="Roll to a new part past this many tokens (whole documents).")
    ] = 512 * 2**20,
    shuffle_window: Annotated[
        int, typer.Option(help="Documents shuffled together within a file (Dolma's local shuffle).")
    ] = 10_000,
    shuffle_window_tokens: Annotated[
        int,
        typer.Option(
            help="A window also closes at this many tokens: its memory is 2-4 bytes a token, at most."
        ),
    ] = 2**25,
    eos_id: Annotated[
        int | None, typer.Option(help="EOS id (default: the tokenizer's <|endoftext|>-like special token).")
    ] = None,
    pad_id: Annotated[
        int | None, typer.Option(help="PAD id recorded in the manifest (default: found).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Encoding threads per process (default: cores / processes).")
    ] = None,
    strip: Annotated[bool, typer.Option(help="Encode text.strip(), as `dolma tokens` does.")] = False,
    encode_special_tokens: Annotated[
        bool, typer.Option(help="Specials written in text stay text (--no-...: special ids, as Dolma).")
    ] = True,
    bos_id: Annotated[
        int | None, typer.Option(help="Put this id first in every document (Dolma's BOS).")
    ] = None,
    unique_ids: Annotated[
        bool, typer.Option(help="An id repeated within a source is a bad record (--skip-bad rejects it).")
    ] = False,
) -> None:
    """Tokenize documents: EOS after each, shuffled within each file (seeded), parts identical for any -p."""
