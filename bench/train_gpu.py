"""`bench/train.py gpu-check`: one command that shows the trainer works on a GPU, in under 8 minutes on one
H100/H200.

    .venv/bin/python bench/train.py gpu-check                        # configs/1b.yaml and configs/300m.yaml
    .venv/bin/python bench/train.py gpu-check --steps 300 --set trainer.activation_checkpointing=true
    torchrun --nproc_per_node 8 bench/train.py gpu-check --data DIR  # N GPUs: data made beforehand
    .venv/bin/python bench/train.py gpu-check --device cpu --config configs/tiny.yaml --steps 8 --seq-len 32

For each config: bf16 (fp32 master weights) under FSDP2, on generated data (the demo corpus tokenized with the
demo BPE, with model.vocab_size=50280 so the embedding is OLMo's 50,304 rows; ids < 1,024 cost the same as
any), `--steps` optimizer steps of one micro-batch per rank, two held-out evaluations (at half way and at the
end), one checkpoint at half way, then a *new* trainer in the same process resumes from it: its held-out
loss before any further step must equal the one evaluated when the checkpoint was written (bit for bit:
the same weights, the same instances), and training goes on to the end. Printed per config: tokens/s per
GPU and MFU (median of the steps after the first `--skip` of each half, against the device's dense bf16
peak: H100/H200 989 TFLOP/s, `--peak-flops` otherwise), peak GPU memory, the four losses and the wall time
of each part. Without CUDA it stops with one line, unless `--device cpu` (the same path in fp32 on a small
config, what the test runs).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT_CONFIGS = ("configs/1b.yaml", "configs/300m.yaml")


def add_parser(sub: Any) -> None:
    gp = sub.add_parser("gpu-check", help="bf16 + FSDP2 training, eval, checkpoint and resume on a GPU")
    gp.add_argument("--config", action="append", type=Path, default=None, help="repeatable; default 1b, 300m")
    gp.add_argument("--steps", type=int, default=200, help="optimizer steps per config (checkpoint at half)")
    gp.add_argument("--skip", type=int, default=5, help="steps of each half left out of the medians")
    gp.add_argument("--seq-len", type=int, default=None, help="override data.seq_len (default: the config's)")
    gp.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    gp.add_argument("--peak-flops", type=float, default=None, help="dense bf16 peak FLOP/s per device")
    gp.add_argument("--data", type=Path, default=None, help="a tokenized folder (default: generated)")
    gp.add_argument("--docs", type=int, default=6000, help="generated demo documents")
    gp.add_argument("--eval-instances", type=int, default=32)
    gp.add_argument("--set", action="append", default=[], help="config override, e.g. trainer.micro_batch=4")


def gpu_check(args: argparse.Namespace, ensure_data: Callable[[int], Path], root: Path) -> dict[str, Any]:
    """Run the check for every config; returns the rows the table shows."""
    import torch

    if args.device != "cpu" and not torch.cuda.is_available():
        raise SystemExit(
            "gpu-check needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); "
            "`--device cpu --config configs/tiny.yaml` runs the same path on the CPU"
        )
    if args.steps < 4 or args.steps % 2:
        raise SystemExit(f"--steps must be an even number ≥ 4 (a checkpoint at half way), got {args.steps}")
    if args.data is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SystemExit("gpu-check under torchrun: make the data first (one process) and pass --data DIR")
    data = args.data or ensure_data(args.docs)
    rows = [check_one(c if c.is_absolute() else root / c, data, args) for c in configs(args)]
    for row in rows:  # shown relative to the repository
        row["config"] = (
            str(Path(row["config"]).relative_to(root))
            if row["config"].startswith(str(root))
            else row["config"]
        )
    if int(os.environ.get("RANK", "0")) == 0:
        show(rows)
    return {"rows": rows}


def configs(args: argparse.Namespace) -> list[Path]:
    return args.config or [Path(c) for c in DEFAULT_CONFIGS]


def check_one(config: Path, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from train.config import load_config
    from train.loop import Trainer

    cuda = args.device != "cpu"
    half = args.steps // 2
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(config, [f"data.paths=[{data}]", "data.eos_id=null", *args.set])
        world = int(os.environ.get("WORLD_SIZE", "1"))
        overrides = [
            f"data.paths=[{data}]",
            "data.eos_id=null",
            "data.eval_fraction=0.05",
            "model.vocab_size=50280",
            f"trainer.run_dir={tmp}/run",
            f"trainer.max_steps={args.steps}",
            f"trainer.global_batch={base.trainer.micro_batch * world}",
            f"trainer.eval_every={half}",
            f"trainer.eval_instances={args.eval_instances}",
            f"trainer.checkpoint_every={half}",
            "trainer.keep_last=1",
            f"trainer.log_every={max(1, args.steps // 10)}",
            f"trainer.device={'cuda' if cuda else 'cpu'}",
            f"trainer.precision={'bf16' if cuda else 'fp32'}",
            f"optim.warmup_steps={max(1, args.steps // 10)}",
        ]
        if args.seq_len:
            overrides.append(f"data.seq_len={args.seq_len}")
        if args.peak_flops:
            overrides.append(f"trainer.peak_flops={args.peak_flops}")
        cfg = load_config(config, [*overrides, *args.set])
        timings: dict[str, float] = {}
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        first = Trainer(load_config(config, [*overrides, *args.set, f"trainer.stop_at={half}"]))
        timings["build"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        records = first.fit()  # steps 1 … half, eval and checkpoint at half
        timings["first half (with eval + checkpoint)"] = time.perf_counter() - t0
        eval_before = evals(first.run_dir)[-1]["eval_loss"]
        peak_flops, n_ranks = first.peak, first.dist.world_size
        del first
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
        t0 = time.perf_counter()
        second = Trainer(cfg)
        second.maybe_resume()
        timings["resume (build + load)"] = time.perf_counter() - t0
        resumed_at = second.step
        eval_resumed, _ = second.evaluate()
        t0 = time.perf_counter()
        records += second.fit(resume=False)  # already resumed: steps half+1 … steps, eval at the end
        timings["second half (with eval + checkpoint)"] = time.perf_counter() - t0
        all_evals = evals(second.run_dir)
        peak_mem = torch.cuda.max_memory_allocated() if cuda else None
        device = torch.cuda.get_device_name() if cuda else "cpu"
    train = [r for r in records if r.get("kind") == "train"]
    steady = [r for r in train if (r["step"] - 1) % half >= args.skip] or train
    tps = statistics.median(r["tokens_per_s"] for r in steady) / n_ranks
    mfus = [r["mfu"] for r in steady if r["mfu"] is not None]
    return {
        "config": str(config),
        "device": device,
        "ranks": n_ranks,
        "parameters": cfg.model.num_params(),
        "seq_len": cfg.data.seq_len,
        "micro_batch": cfg.trainer.micro_batch,
        "steps": len(train),
        "tokens_per_s_per_gpu": tps,
        "mfu": statistics.median(mfus) if mfus else None,
        "peak_flops": peak_flops,
        "peak_memory_gib": None if peak_mem is None else peak_mem / 2**30,
        "first_loss": train[0]["loss"],
        "last_loss": train[-1]["loss"],
        "eval_steps": [e["step"] for e in all_evals],
        "eval_losses": [e["eval_loss"] for e in all_evals],
        "resumed_at": resumed_at,
        "eval_at_checkpoint": eval_before,
        "eval_after_resume": eval_resumed,
        "resume_equal": eval_resumed == eval_before,
        "timings_s": timings,
    }


def evals(run_dir: Path) -> list[dict[str, Any]]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "eval"]


def show(rows: list[dict[str, Any]]) -> None:
    how = "bf16 + FSDP2" if rows and rows[0]["device"] != "cpu" else "CPU fp32 (--device cpu)"
    table = Table(title=f"gpu-check: {how}, eval twice, checkpoint and resume")
    for col in ("config", "device", "params", "seq × micro", "tokens/s/GPU", "MFU", "peak mem", "loss"):
        table.add_column(col, justify="right" if col in ("params", "tokens/s/GPU", "MFU") else "left")
    for r in rows:
        table.add_row(
            r["config"],
            f"{r['device']} × {r['ranks']}",
            f"{r['parameters']:,}",
            f"{r['seq_len']} × {r['micro_batch']}",
            f"{r['tokens_per_s_per_gpu']:,.0f}",
            "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%",
            "-" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f} GiB",
            f"{r['first_loss']:.3f} → {r['last_loss']:.3f}",
        )
    console = Console(width=200)
    console.print(table)
    for r in rows:
        verdict = "[green]equal[/]" if r["resume_equal"] else "[red]DIFFERENT[/]"
        evaluations = ", ".join(
            f"step {s}: {v:.4f}" for s, v in zip(r["eval_steps"], r["eval_losses"], strict=True)
        )
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in r["timings_s"].items())
        console.print(
            f"{r['config']}: held-out {evaluations}; at the step-{r['resumed_at']} checkpoint "
            f"{r['eval_at_checkpoint']:.6f}, after resume {r['eval_after_resume']:.6f} ({verdict}); {parts}",
            highlight=False,
        )
    if not all(r["resume_equal"] for r in rows):
        raise SystemExit("gpu-check: a resumed model evaluated differently from the checkpointed one")
