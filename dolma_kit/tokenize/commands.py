"""The tokenize family's commands beyond the stage's own: `tokenize-dolma` (a `dolma tokens` config, run as
is) and `tokenize-adopt` (foreign token files made trainable). Thin: parse, build a config, call one function;
the work lives in `tokenize.dolma`, `tokenize.stage` and `tokenize.adopt` (imported when a command runs, so
`dolma-kit --help` loads no tokenizer)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def tokenize_dolma(
    config: Annotated[
        str, typer.Argument(help="A `dolma tokens` config file (YAML or JSON), as `dolma -c`.")
    ],
    processes: Annotated[
        int | None, typer.Option("--processes", "-p", help="Override the config's processes.")
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option(help="Count bad records into rejects/ instead of stopping.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Redo shards already marked done.")] = False,
) -> None:
    """Run a `dolma tokens` config: Dolma's ids (stripped text, its special-token rule, BOS/EOS as configured),
    written in dolma-kit's resumable, byte-identical layout."""
    from dolma_kit.config import Where, from_dict, load_yaml
    from dolma_kit.tokenize.dolma import translate
    from dolma_kit.tokenize.stage import STAGE, TokenizeConfig

    keys, dryrun = translate(config, load_yaml(config, "dolma tokens config"))
    keys.update({"skip_bad": skip_bad, "force": force})
    if processes is not None:
        keys["processes"] = processes
    built = from_dict(TokenizeConfig, keys, Where(file=config, context="dolma tokens config"), flat=True)
    console = Console()
    if dryrun:
        console.print_json(json.dumps(STAGE.options(built)))
        return
    STAGE.execute(built, console)


def tokenize_adopt(
    files: Annotated[
        list[str], typer.Argument(help="Token files of one folder: OLMo .npy, datatrove .ds, Megatron .bin.")
    ],
    format: Annotated[str, typer.Option(help="olmo, datatrove, megatron, or auto (by suffix).")] = "auto",
    source: Annotated[
        str | None, typer.Option(help="Source name of the documents (default: the folder's).")
    ] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="The tokenizer.json they were written with (gives EOS and vocabulary).")
    ] = None,
    eos_id: Annotated[int | None, typer.Option(help="EOS id (default: the tokenizer's).")] = None,
    dtype: Annotated[str | None, typer.Option(help="uint16 or uint32 (an OLMo .npy has no header).")] = None,
    vocab_size: Annotated[
        int | None, typer.Option(help="Default: the tokenizer's, else largest id + 1.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Index a folder adopted before again.")] = False,
) -> None:
    """Write the manifest and provenance index beside foreign token files, so `train`, `trace` and
    `provenance` read them (documents from the foreign index, or EOS positions); no token is copied."""
    from dolma_kit.tokenize.adopt import AdoptConfig, adopt

    manifest = adopt(
        AdoptConfig(
            files=files,
            format=format,
            source=source,
            tokenizer=tokenizer,
            eos_id=eos_id,
            dtype=dtype,
            vocab_size=vocab_size,
            force=force,
        )
    )
    table = Table(title=f"adopted: {manifest['documents']:,} documents, {manifest['tokens']:,} tokens, "
                  f"{manifest['dtype']}, EOS {manifest['eos_id']}")  # fmt: skip
    for column in ("part", "format", "documents", "tokens"):
        table.add_column(column, justify="left" if column in ("part", "format") else "right")
    for part in manifest["parts"]:
        table.add_row(
            part["tokens_file"], part["adopted"]["format"], f"{part['documents']:,}", f"{part['tokens']:,}"
        )
    Console().print(table)
