"""`dolma-kit train CONFIG [--section.key=value ...] [--dry-run]`: the OLMo-recipe trainer (train/ package).

torch and the trainer are imported inside the command, so the rest of the CLI starts without them.
Single process: `dolma-kit train configs/tiny.yaml`; several: `torchrun --nproc_per_node N -m dolma_kit train …`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dolma_kit.cli.options import register

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def overrides_from_args(args: list[str]) -> list[str]:
    """`--optim.lr=3e-4` and `--optim.lr 3e-4` → ["optim.lr=3e-4"]; anything else is an error."""
    from dolma_kit.errors import DolmaKitError

    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise DolmaKitError(f"unexpected argument {arg!r}: overrides look like --section.key=value")
        if "=" not in arg:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise DolmaKitError(f"override {arg} has no value: write {arg}=VALUE")
            arg = f"{arg}={args[i + 1]}"
            i += 1
        out.append(arg[2:])
        i += 1
    return out


@register("train", **CONTEXT)
def train(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Argument(help="Training config YAML (configs/tiny.yaml, 1b.yaml, 7b.yaml).")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the resolved config, data and model size; do not train.")
    ] = False,
    auto_resume: Annotated[
        bool,
        typer.Option(
            "--auto-resume",
            help="Supervise: when the training process dies, start it again from the newest complete checkpoint.",
        ),
    ] = False,
    max_restarts: Annotated[
        int, typer.Option(help="With --auto-resume: give up after this many restarts.")
    ] = 3,
) -> None:
    """Train (or resume) a model; extra `--section.key=value` options override the config (e.g. --optim.lr=3e-4)."""
    from train.config import load_config

    cfg = load_config(config, overrides_from_args(list(ctx.args)))
    if dry_run:
        _print_dry_run(cfg)
        return
    if auto_resume:
        import os

        if "RANK" in os.environ:
            from dolma_kit.errors import DolmaKitError

            raise DolmaKitError(
                "--auto-resume supervises one process; under torchrun use torchrun --max-restarts N"
            )
        _supervise(config, list(ctx.args), Path(str(cfg.trainer.run_dir)), max_restarts)
        return
    from train.loop import train as run_training

    run_training(cfg)


def _supervise(config: Path, args: list[str], run_dir: Path, max_restarts: int) -> None:
    """Run the training in a child process until it succeeds; after a crash (a kill, an OOM, a lost node
    file system hiccup) start it again: every start resumes from the newest *complete* checkpoint (a
    half-written one has no completion marker and is never loaded), so the result equals an uninterrupted
    run. A user error (exit 2) is not retried. Under torchrun use `torchrun --max-restarts N` instead."""
    import json

    from train.checkpoint import Checkpointer
    from train.recovery import append_logbook

    console = Console(stderr=True)
    cmd = [sys.executable, "-m", "dolma_kit", "train", str(config), *args]
    restarts = 0
    while True:
        code = subprocess.call(cmd)
        if code == 0:
            return
        if code == 2:
            raise typer.Exit(2)
        done = Checkpointer(run_dir, keep_last=0, rank=0).completed()
        resume_from = done[-1][0] if done else 0
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        if restarts >= max_restarts:
            from dolma_kit.errors import DolmaKitError

            raise DolmaKitError(
                f"training died ({how}) after {restarts} restarts (--max-restarts); see {run_dir}"
            )
        restarts += 1
        console.print(f"[yellow]training died ({how}); restart {restarts} from step {resume_from}[/]")
        run_dir.mkdir(parents=True, exist_ok=True)
        event = {"kind": "restart", "step": resume_from, "reason": how, "restart": restarts}
        with open(run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(event) + "\n")
        append_logbook(
            run_dir,
            f"restart {restarts}: the training process died ({how})",
            [f"resumed from the newest complete checkpoint: step {resume_from}", f"command: {' '.join(cmd)}"],
        )


def _print_dry_run(cfg) -> None:  # cfg: train.config.TrainConfig
    """The resolved config, the model size and the schedule; then the data is opened and checked (missing
    directories, seq_len too large, EOS) and its instances and sources are printed. Writes nothing."""
    import yaml
    from rich.syntax import Syntax

    console = Console()
    tc = cfg.trainer
    tokens = tc.max_steps * tc.global_batch * cfg.data.seq_len
    console.print(Syntax(yaml.safe_dump(cfg.to_dict(), sort_keys=False), "yaml"))
    console.print(
        f"schedule: {tc.max_steps:,} steps × {tc.global_batch} instances = {tokens:,} tokens → {tc.run_dir}"
    )
    if cfg.model.vocab_size is not None:
        _print_model(console, cfg.model)
    data = cfg.data.build()
    if cfg.model.vocab_size is None:
        cfg.model.vocab_size = data.vocab_size
        _print_model(console, cfg.model)
    n_eval = len(data.eval_instances())
    epochs = tc.max_steps * tc.global_batch / max(1, data.num_instances - n_eval)
    console.print(
        f"data: {data.num_instances:,} instances of {cfg.data.seq_len} tokens ({n_eval:,} held out), "
        f"sources {data.sources}; the schedule is {epochs:.2f} epochs"
    )


def _print_model(console: Console, model) -> None:  # model: train.model.ModelConfig
    console.print(
        f"model: {model.num_params():,} parameters (vocab {model.vocab_size:,} → "
        f"{model.padded_vocab_size:,}, SwiGLU hidden {model.hidden:,})"
    )
