"""`dolma-kit dedup minhash`: near-duplicate clusters (MinHash + banded LSH + verification) as attributes."""

from __future__ import annotations

from typing import Annotated

import typer

from dolma_kit.cli.options import RUN_OPTIONS, stage_command


@stage_command("dedup minhash", "documents", "experiment", "destination", *RUN_OPTIONS)
def minhash(
    ngram: Annotated[int, typer.Option(help="Words per shingle.")] = 5,
    num_perm: Annotated[int, typer.Option(help="Permutations (signature length).")] = 112,
    bands: Annotated[
        int | None, typer.Option(help="LSH bands (with --rows; default: from --threshold).")
    ] = None,
    rows: Annotated[int | None, typer.Option(help="Values per band (with --bands).")] = None,
    threshold: Annotated[float, typer.Option(help="Jaccard a candidate pair needs to join a cluster.")] = 0.7,
    verify: Annotated[
        str,
        typer.Option(
            metavar="exact|estimate",
            help="Verify candidates by the exact Jaccard of their shingle sets (stored beside the signatures), "
            "or by the signatures' estimate (no shingle files; less precise near the threshold).",
        ),
    ] = "exact",
    seed: Annotated[int, typer.Option(help="Permutation seed (datasketch's).")] = 42,
    work_dir: Annotated[
        str | None, typer.Option(help="Intermediate files (default: <attribute root>/_work).")
    ] = None,
    stage: Annotated[
        str,
        typer.Option(
            metavar="all|signatures|lsh|cluster|attributes",
            help="Run one step, or all of them in order.",
        ),
    ] = "all",
    cluster_partitions: Annotated[
        int | None,
        typer.Option(
            help="Tasks per clustering round: 1 = one task (union-find); N spreads it over N tasks (local "
            "processes or Ray), each holding 1/N of the pairs and labels; same result. Default: 1 while one "
            "task needs < ~512 MB (~10 million documents), else enough for each to fit.",
        ),
    ] = None,
    band_partitions: Annotated[
        int | None,
        typer.Option(
            help="Hash partitions of each LSH band: 1 = one task a band (~51 B a document); N = a keys pass, "
            "then one task per band and partition, each holding 1/N of the band; same result. Default: 1 up "
            "to ~10 GB of input, else enough for each task to fit ~512 MB.",
        ),
    ] = None,
    keep_work: Annotated[
        bool,
        typer.Option(help="Keep signatures, shingle sets and candidates after success (default: removed)."),
    ] = False,
) -> None:
    """Near-duplicate dedup: MinHash signatures, banded LSH, Jaccard-verified clusters → attributes."""
