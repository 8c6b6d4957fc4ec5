"""`dolma-kit run PIPELINE` (stages chained under one work dir, resumable) and `dolma-kit demo-corpus OUT`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dolma_kit.cli.options import RayAddress, stage_command

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def run(
    ctx: typer.Context,
    pipeline: Annotated[str, typer.Argument(help="Pipeline file (pipelines/NAME.yaml).")],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check the plan (stage keys, taggers and their options, recipe attribute names against "
            "what earlier stages write, tokenizer paths, training config keys; every problem at once) and "
            "print it (stages, resolved options, done/pending); run nothing.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run every stage again, even finished ones.")
    ] = False,
    from_stage: Annotated[
        str | None,
        typer.Option("--from", help="Run this stage and the ones after it again (earlier: as done)."),
    ] = None,
    processes: Annotated[
        int | None, typer.Option("--processes", "-p", help="Worker processes for every stage that has them.")
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            metavar="local|ray",
            help="Where every stage that has shard tasks runs them (a stage's own `executor:` key wins).",
        ),
    ] = None,
    ray_address: RayAddress = None,
    work_dir: Annotated[
        str | None,
        typer.Option(
            "--work-dir",
            metavar="DIR",
            help="Work directory of every stage (the file's work_dir:); also spelled --work_dir, as in Dolma.",
        ),
    ] = None,
    local_dir: Annotated[
        str | None,
        typer.Option(
            "--local-dir",
            metavar="DIR",
            help="Local folder for tokens and training runs when the work dir is remote (s3://…); "
            "also --local_dir.",
        ),
    ] = None,
) -> None:
    """Run a pipeline: tag → dedup → mix → tokenize → train → report. Override any stage's option with
    --STAGE.key=VALUE: the stage's name in the file, then its subcommand's option (--corpus.docs=400,
    --train.trainer.max_steps=20, --tag.processes=4); VALUE is read as YAML."""
    from dolma_kit.cli.train import overrides_from_args
    from dolma_kit.pipeline import load_pipeline, plan, plan_table, run_pipeline, summary_table

    dirs = [f"{key}={value}" for key, value in (("work_dir", work_dir), ("local_dir", local_dir)) if value]
    pipe = load_pipeline(
        pipeline,
        dirs + overrides_from_args(list(ctx.args)),
        processes=processes,
        executor=executor,
        ray_address=ray_address,
    )
    planned = plan(pipe, force=force, start=from_stage)
    console = Console()
    if not console.is_terminal:  # logs (`make demo > log`): wide enough that the tables stay one line a row
        console = Console(width=140)
    for warning in pipe.warnings:  # the plan check's findings that do not stop a run (Dolma mixer names)
        Console(stderr=True).print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if dry_run:
        console.print(plan_table(pipe, planned))
        return
    summary = run_pipeline(pipe, planned, console)
    console.print(summary_table(summary))
    console.print(f"summary: {pipe.summary_path}", highlight=False)
    if summary["report"]:
        console.print(f"[bold]report: {summary['report']}[/]", highlight=False)


@stage_command("demo-corpus")
def demo_corpus(
    output: Annotated[
        str, typer.Argument(help="Corpus root: writes OUTPUT/documents/<source>/part-NNNN.jsonl.gz.")
    ],
    docs: Annotated[int, typer.Option(help="Documents in all, planted copies included (~1 KB each).")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of every choice: same seed and size, same bytes.")] = 0,
    shard_docs: Annotated[int, typer.Option(help="Documents per shard.")] = 400,
) -> None:
    """Write the demo corpus: web, wiki, forum and code in seven languages, with planted duplicates, PII,
    boilerplate, low-quality pages and evaluation-set leaks."""
