"""`dolma-kit dedup minhash`: near-duplicate clusters (MinHash + banded LSH + verification) as attributes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from dolma_kit.cli.options import (
    Destination,
    Documents,
    Executor,
    Experiment,
    Force,
    Processes,
    RayAddress,
    SkipBad,
    executor_config,
)


def minhash(
    documents: Documents,
    experiment: Experiment,
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
            help="Verify candidates by the exact Jaccard of their shingle sets (stored beside the signatures), "
            "or by the signatures' estimate (no shingle files; less precise near the threshold)."
        ),
    ] = "exact",
    seed: Annotated[int, typer.Option(help="Permutation seed (datasketch's).")] = 42,
    destination: Destination = None,
    work_dir: Annotated[
        str | None, typer.Option(help="Intermediate files (default: <attribute root>/_work).")
    ] = None,
    processes: Processes = None,
    skip_bad: SkipBad = False,
    force: Force = False,
    stage: Annotated[
        str, typer.Option(help="Run one step: signatures, lsh, cluster, attributes (default: all).")
    ] = "all",
    executor: Executor = "local",
    ray_address: RayAddress = None,
) -> None:
    """Near-duplicate dedup: MinHash signatures, banded LSH, Jaccard-verified clusters → attributes."""
    from dolma_kit.dedup.minhash import MinhashConfig
    from dolma_kit.dedup.minhash_report import report_renderable, s_curve_table
    from dolma_kit.dedup.minhash_stage import MinhashDedupConfig, run_minhash
    from dolma_kit.executor import summary_table

    config = MinhashDedupConfig(
        documents=documents,
        experiment=experiment,
        minhash=MinhashConfig(
            ngram=ngram,
            num_perm=num_perm,
            bands=bands,
            rows=rows,
            threshold=threshold,
            seed=seed,
            verify=verify,  # type: ignore[arg-type]  # validated by the config
        ),
        destination=destination,
        work_dir=work_dir,
        processes=processes,
        skip_bad=skip_bad,
        force=force,
        stage=stage,  # type: ignore[arg-type]  # validated by the config
        executor=executor_config(executor, ray_address),
    )
    console = Console()
    console.print(s_curve_table(config.minhash))
    result = run_minhash(config)
    for name, step in result.steps.items():
        if name == "attributes":
            console.print(summary_table(step))
        else:
            done = sum(s.status == "done" for s in step.shards)
            console.print(
                f"{step.title}: {len(step.shards)} tasks ({done} run, {len(step.shards) - done} already done), "
                f"{step.total.seconds:,.1f} s"
            )
    if result.report is not None:
        console.print(report_renderable(result.report))
