"""Trainer benchmarks: throughput (tokens/s, MFU) of a config with and without torch.compile, and the CPU
convergence target of issue 5 (the tiny config on 2 cores reaches a held-out loss clearly below the unigram
entropy of its data within 5 minutes).

    .venv/bin/python bench/train.py speed                                  # tiny config, CPU, compile off and on
    .venv/bin/python bench/train.py speed --config configs/1b.yaml         # on a GPU: bf16, seq 2048, off and on
    .venv/bin/python bench/train.py converge --minutes 5                   # tiny config, 2 gloo ranks × 1 thread
    .venv/bin/python bench/train.py spike --at 250 --poison nan            # recovery vs a clean run
    .venv/bin/python bench/train.py vs-hf                                  # our full step vs HF's (bench/train_hf.py)
    .venv/bin/python bench/train.py gpu-check                              # on a GPU (bench/train_gpu.py)

Data: a config's own `data.paths` when they exist; otherwise the demo corpus (`dolma_kit.demo.corpus`) is
generated and tokenized once under bench/out/ (the demo BPE for a small vocabulary, GPT-2's for a model whose
vocabulary is ≥ 50,257, e.g. the 1b config). MFU = (6·N + 12·L·d·T) · tokens/s / (peak × devices): the
trainer's own count (`ModelConfig.flops_per_token`), over the dense bf16 peak (H100/H200 989 TFLOP/s by
device name, or --peak-flops). On CPU there is no meaningful peak, so only tokens/s is reported unless
--peak-flops is given. Results print as a table and are saved as JSON under bench/out/results/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
DEMO_BPE = ROOT / "tests" / "fixtures" / "tokenizer" / "demo-bpe.json"

TINY = ROOT / "configs" / "tiny.yaml"

import train_gpu  # noqa: E402  (bench/ is on sys.path as the script's folder)
import train_hf  # noqa: E402


def ensure_tokenized(tokenizer: str, docs: int) -> Path:
    """The demo corpus of `docs` documents tokenized with `tokenizer` (demo BPE path or `gpt2`), cached."""
    from dolma_kit.demo.corpus import DemoCorpusConfig, write_corpus
    from dolma_kit.tokenize.stage import TokenizeConfig, tokenize

    name = "gpt2" if tokenizer == "gpt2" else "demo-bpe"
    corpus, tokenized = OUT / f"train-corpus-{docs}d", OUT / f"train-tokenized-{docs}d-{name}"
    if (tokenized / "manifest.json").is_file():
        return tokenized
    if not (corpus / "documents").is_dir():
        write_corpus(DemoCorpusConfig(output=str(corpus), docs=docs))
    tokenize(
        TokenizeConfig(
            documents=[str(corpus / "documents" / "*" / "*.jsonl.gz")],
            destination=str(tokenized),
            tokenizer=tokenizer,
            processes=1,
        )
    )
    return tokenized


def data_overrides(config: Path, sets: list[str], docs: int) -> list[str]:
    """`data.paths=[…]` pointing at generated data when the config's own data is not there."""
    import yaml

    raw = yaml.safe_load(config.read_text())
    paths = raw.get("data", {}).get("paths", [])
    if any(s.startswith("data.paths=") for s in sets) or (paths and all(Path(p).is_dir() for p in paths)):
        return []
    vocab = raw.get("model", {}).get("vocab_size")
    tokenized = ensure_tokenized("gpt2" if vocab and vocab >= 50257 else str(DEMO_BPE), docs)
    return [f"data.paths=[{tokenized}]", "data.eos_id=null"]


def speed(args: argparse.Namespace) -> list[dict]:
    """Steady-state tokens/s of `--steps` optimizer steps after `--warmup` (compile happens in warmup)."""
    import torch

    from train.callbacks import Callback
    from train.config import load_config
    from train.loop import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    extra = data_overrides(args.config, args.set, args.docs)
    if not any(s.startswith("trainer.global_batch=") for s in args.set):
        # one micro-batch per step unless asked: the 1b config's 2048-instance batch is a schedule, not a probe
        micro = load_config(args.config, [*extra, *args.set]).trainer.micro_batch
        extra.append(f"trainer.global_batch={micro * int(os.environ.get('WORLD_SIZE', '1'))}")
    for compile_ in modes:
        with tempfile.TemporaryDirectory() as tmp:
            overrides = [
                *extra,
                f"trainer.run_dir={tmp}/run",
                f"trainer.max_steps={args.warmup + args.steps}",
                f"trainer.compile={str(compile_).lower()}",
                "trainer.eval_every=0",
                *args.set,
            ]
            if args.peak_flops:
                overrides.append(f"trainer.peak_flops={args.peak_flops}")
            cfg = load_config(args.config, overrides)
            trainer = Trainer(cfg, callbacks=[Callback()])  # no metrics file, evaluation or checkpoint
            try:
                for step in range(1, args.warmup + 1):
                    trainer.train_step(step)
                t0 = time.perf_counter()
                losses = [
                    trainer.train_step(s)["loss"]
                    for s in range(args.warmup + 1, args.warmup + args.steps + 1)
                ]
                dt = time.perf_counter() - t0
                error = None
            except Exception as exc:  # e.g. no C++ toolchain for inductor on CPU: report it as a row
                dt, losses, error = math.nan, [math.nan], f"{type(exc).__name__}: {str(exc)[:120]}"
            tc = cfg.trainer
            tokens = args.steps * tc.global_batch * cfg.data.seq_len
            tps = tokens / dt
            mfu = (
                cfg.model.flops_per_token(cfg.data.seq_len) * tps / (trainer.peak * trainer.dist.world_size)
                if trainer.peak
                else None
            )
            rows.append(
                {
                    "config": str(
                        args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config
                    ),
                    "device": torch.cuda.get_device_name()
                    if trainer.dist.device.type == "cuda"
                    else f"cpu × {torch.get_num_threads()} threads",
                    "precision": "bf16" if trainer.bf16 else "fp32",
                    "compile": compile_,
                    "parameters": cfg.model.num_params(),
                    "seq_len": cfg.data.seq_len,
                    "global_batch": tc.global_batch,
                    "micro_batch": tc.micro_batch,
                    "steps": args.steps,
                    "tokens_per_s": tps,
                    "mfu": mfu,
                    "peak_flops": trainer.peak,
                    "last_loss": losses[-1],
                    "error": error,
                }
            )
            del trainer
    table = Table(title="trainer throughput (steady state, after warmup)")
    for col in (
        "config",
        "device",
        "precision",
        "compile",
        "params",
        "seq × batch",
        "tokens/s",
        "MFU",
        "note",
    ):
        table.add_column(col, justify="right" if col in ("params", "tokens/s", "MFU") else "left")
    for r in rows:
        table.add_row(
            r["config"],
            r["device"],
            r["precision"],
            "on" if r["compile"] else "off",
            f"{r['parameters']:,}",
            f"{r['seq_len']} × {r['global_batch']}",
            f"{r['tokens_per_s']:,.0f}",
            "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%",
            r["error"] or "",
        )
    Console(width=200).print(table)
    return rows


def unigram_entropy(path: Path) -> tuple[float, int]:
    """(entropy in nats of the data's unigram token distribution, tokens): the loss of the best model that
    ignores context, so a held-out loss below it means the model learned from context."""
    from dolma_kit.provenance import TokenizedDir

    d = TokenizedDir.open(path)
    counts = np.zeros(d.vocab_size, dtype=np.int64)
    for p in range(len(d.parts)):
        counts += np.bincount(np.asarray(d.tokens(p), dtype=np.int64), minlength=d.vocab_size)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum()), int(counts.sum())


def converge(args: argparse.Namespace) -> dict:
    """configs/tiny.yaml on the demo corpus, 2 gloo ranks × 1 thread, until --minutes or max_steps; held-out
    loss vs the unigram entropy of the data."""
    tokenized = ensure_tokenized(str(DEMO_BPE), args.docs)
    run = OUT / "train-converge-run"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    overrides = [
        f"--data.paths=[{tokenized}]",
        f"--trainer.run_dir={run}",
        f"--trainer.max_steps={args.max_steps}",
        "--trainer.eval_every=100",
        "--trainer.eval_instances=256",
        "--trainer.checkpoint_every=0",
        "--trainer.log_every=50",
        "--data.eval_fraction=0.02",
        *(f"--{s}" for s in args.set),
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "dolma_kit",
    ]
    cmd += ["train", str(ROOT / "configs" / "tiny.yaml"), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, env=env, cwd=ROOT, timeout=args.minutes * 60 + 120, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-4000:])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    train = [r for r in records if r["kind"] == "train"]
    H, n_tokens = unigram_entropy(tokenized)
    result = {
        "tokenized": str(tokenized),
        "tokens": n_tokens,
        "steps": train[-1]["step"],
        "wall_s": wall,
        "unigram_entropy": H,
        "eval": [(e["step"], e["eval_loss"]) for e in evals],
        "final_eval_loss": evals[-1]["eval_loss"],
        "initial_loss": train[0]["loss"],
        "tokens_per_s": float(np.median([r["tokens_per_s"] for r in train])),
    }
    table = Table(title="tiny config, 2 gloo ranks × 1 thread on the demo corpus")
    for col in ("step", "held-out loss", "vs unigram entropy"):
        table.add_column(col, justify="right")
    for step, loss in result["eval"]:
        table.add_row(str(step), f"{loss:.3f}", f"{loss - H:+.3f}")
    Console(width=200).print(table)
    Console().print(
        f"unigram entropy {H:.3f} nats; final held-out {result['final_eval_loss']:.3f} after {result['steps']} steps "
        f"in {wall / 60:.2f} min (process start included); {result['tokens_per_s']:,.0f} tokens/s"
    )
    return result


def spike(args: argparse.Namespace) -> dict:
    """Issue 6's recovery target: the tiny config on the demo corpus, clean vs. a run whose step `--at` is
    poisoned (`debug.poison`), recovered with no human action; final held-out and train losses compared."""
    import torch

    from train.config import load_config
    from train.loop import Trainer

    torch.set_num_threads(args.threads)
    tokenized = ensure_tokenized(str(DEMO_BPE), args.docs)
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (
            ("clean", []),
            (
                "poisoned",
                [
                    f"debug.poison_steps=[{args.at}]",
                    f"debug.poison={args.poison}",
                    f"recovery.lr_factor={args.lr_factor}",
                ],
            ),
        ):
            cfg = load_config(
                ROOT / "configs" / "tiny.yaml",
                [
                    f"data.paths=[{tokenized}]",
                    f"trainer.run_dir={tmp}/{name}",
                    f"trainer.max_steps={args.steps}",
                    f"trainer.eval_every={args.steps}",
                    "trainer.eval_instances=512",
                    f"trainer.checkpoint_every={args.checkpoint_every}",
                    "trainer.log_every=1000000",
                    "data.eval_fraction=0.02",
                    *extra,
                ],
            )
            t0 = time.perf_counter()
            records = Trainer(cfg).fit()
            metrics = [
                json.loads(line) for line in (Path(tmp) / name / "metrics.jsonl").read_text().splitlines()
            ]
            losses = [r["loss"] for r in records if r.get("loss") is not None]
            out[name] = {
                "eval_loss": [r for r in metrics if r["kind"] == "eval"][-1]["eval_loss"],
                "train_loss_last50": float(np.mean(losses[-50:])),
                "events": [
                    {k: r[k] for k in ("step", "reason", "rolled_back_to")}
                    for r in metrics
                    if r["kind"] == "recovery"
                ],
                "wall_s": time.perf_counter() - t0,
            }
    gap = out["poisoned"]["eval_loss"] / out["clean"]["eval_loss"] - 1
    train_gap = out["poisoned"]["train_loss_last50"] / out["clean"]["train_loss_last50"] - 1
    table = Table(title=f"spike recovery: step {args.at} poisoned ({args.poison}) of {args.steps}")
    for col in ("run", "held-out loss", "train loss (last 50)", "events"):
        table.add_column(col)
    for name, r in out.items():
        events = "; ".join(
            f"step {e['step']}: {e['reason']} → back to {e['rolled_back_to']}" for e in r["events"]
        )
        table.add_row(name, f"{r['eval_loss']:.4f}", f"{r['train_loss_last50']:.4f}", events or "-")
    Console(width=200).print(table)
    Console().print(
        f"final held-out loss gap {100 * gap:+.2f}% (train {100 * train_gap:+.2f}%); target |gap| < 2%"
    )
    return {**out, "gap": gap, "train_gap": train_gap}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    sp = sub.add_parser("speed", help="tokens/s and MFU of a config")
    sp.add_argument("--config", type=Path, default=ROOT / "configs" / "tiny.yaml")
    sp.add_argument("--compile", choices=["off", "on", "both"], default="both")
    sp.add_argument("--steps", type=int, default=20)
    sp.add_argument("--warmup", type=int, default=3)
    sp.add_argument("--threads", type=int, default=None, help="torch threads on CPU (default: torch's)")
    sp.add_argument("--peak-flops", type=float, default=None, help="dense peak FLOP/s per device")
    sp.add_argument("--set", action="append", default=[], help="config override, e.g. trainer.micro_batch=8")
    sp.add_argument("--docs", type=int, default=3000, help="demo corpus size when data is generated")
    cp = sub.add_parser("converge", help="issue 5's CPU target: held-out loss vs unigram entropy")
    cp.add_argument("--minutes", type=float, default=5.0)
    cp.add_argument("--max-steps", type=int, default=1500)
    cp.add_argument("--docs", type=int, default=3000)
    cp.add_argument("--set", action="append", default=[], help="config override, e.g. optim.lr=3e-3")
    kp = sub.add_parser(
        "spike", help="issue 6's target: a poisoned step recovered, final loss vs a clean run"
    )
    kp.add_argument("--steps", type=int, default=600)
    kp.add_argument("--at", type=int, default=250, help="the poisoned step")
    kp.add_argument("--poison", choices=["scale", "nan"], default="scale")
    kp.add_argument("--lr-factor", type=float, default=1.0)
    kp.add_argument("--checkpoint-every", type=int, default=100)
    kp.add_argument("--threads", type=int, default=2)
    kp.add_argument("--docs", type=int, default=3000)
    train_hf.add_parser(sub)
    train_gpu.add_parser(sub)
    args = ap.parse_args()
    modes = {
        "speed": speed,
        "converge": converge,
        "spike": spike,
        "vs-hf": lambda a: train_hf.vs_hf(a, ensure_tokenized(str(DEMO_BPE), a.docs), TINY),
        "gpu-check": lambda a: train_gpu.gpu_check(
            a, lambda docs: ensure_tokenized(str(DEMO_BPE), docs), ROOT
        ),
    }
    result = modes[args.mode](args)
    results = OUT / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = results / f"train-{args.mode}-{stamp}.json"
    path.write_text(
        json.dumps(
            {"mode": args.mode, "args": {k: str(v) for k, v in vars(args).items()}, "result": result},
            indent=1,
        )
    )
    Console().print(f"saved {path}")


if __name__ == "__main__":
    main()
