"""Issue 15's CPU speed target: our full training step against HF transformers' eager OlmoForCausalLM
forward + backward + AdamW on the same shape, threads and batch, side by side in one process.

    .venv/bin/python bench/train.py vs-hf                       # d 128, 2 layers, vocab 50,304, seq 128 × 4
    .venv/bin/python bench/train.py vs-hf --compile --rounds 5  # our step with torch.compile too

Both sides: AdamW (β 0.9/0.95, eps 1e-5, wd 0.1, lr 1e-3), grad-norm clipping at 1.0, fp32, the same
`torch.set_num_threads`. Ours is `Trainer.train_step` as training runs it (batch read from the memmaps,
per-source loss, spike check, FSDP2 on one rank); HF's gets a ready tensor (`labels=input_ids`). The two
alternate in rounds (ours, HF, ours, HF, …) so a busy machine slows both alike; each round times `--steps`
steps after a warmup; the table gives the median of the rounds and the ratio ours / HF, by wall time and by
this process's CPU time (steadier when other work shares the cores: with one thread it is the work done). transformers is the
`test` extra; the data is the demo corpus tokenized with the demo BPE (ids < 1,024: the cost of a step does
not depend on which ids are in the batch) with model.vocab_size=50280, i.e. OLMo's padded 50,304.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def hf_model(cfg, seed: int):  # -> (OlmoForCausalLM, AdamW)
    import torch
    from transformers import OlmoConfig, OlmoForCausalLM

    m = cfg.model
    config = OlmoConfig(
        vocab_size=m.padded_vocab_size,
        hidden_size=m.d_model,
        intermediate_size=m.hidden,
        num_hidden_layers=m.n_layers,
        num_attention_heads=m.n_heads,
        num_key_value_heads=m.n_heads,
        max_position_embeddings=cfg.data.seq_len,
        tie_word_embeddings=m.weight_tying,
        attention_bias=False,
    )
    torch.manual_seed(seed)
    model = OlmoForCausalLM(config).train()
    o = cfg.optim
    opt = torch.optim.AdamW(
        model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay
    )
    return model, opt


def vs_hf(args: argparse.Namespace, tokenized: Path, tiny: Path) -> dict:
    import torch

    from train.callbacks import Callback
    from train.config import load_config
    from train.loop import Trainer

    torch.set_num_threads(args.threads)
    B, T = args.batch, args.seq_len
    steps = args.warmup + args.rounds * args.steps
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"data.paths=[{tokenized}]",
            f"trainer.run_dir={tmp}/run",
            f"data.seq_len={T}",
            f"model.d_model={args.d_model}",
            f"model.n_layers={args.layers}",
            f"model.n_heads={args.heads}",
            "model.vocab_size=50280",
            f"model.weight_tying={str(args.tied).lower()}",
            f"trainer.global_batch={B}",
            f"trainer.micro_batch={B}",
            f"trainer.max_steps={steps + 1}",
            f"trainer.cpu_threads={args.threads}",
            f"trainer.compile={str(args.compile).lower()}",
            "trainer.eval_every=0",
            "optim.lr=1e-3",
            "optim.warmup_steps=0",
            "recovery.enabled=true",
            *args.set,
        ]
        cfg = load_config(tiny, overrides)
        ours = Trainer(cfg, callbacks=[Callback()])
        torch.set_num_threads(args.threads)  # the trainer sets its own; both sides get the same
        model, opt = hf_model(cfg, cfg.trainer.seed)
        g = torch.Generator().manual_seed(0)
        idx = torch.randint(0, 1024, (B, T), generator=g)

        def hf_step() -> float:
            loss = model(input_ids=idx, labels=idx).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return float(loss.detach())

        step = 0

        def our_step() -> float:
            nonlocal step
            step += 1
            return ours.train_step(step)["loss"]

        for _ in range(args.warmup):
            our_step(), hf_step()
        times: dict[str, list[float]] = {"ours": [], "hf": []}
        cpu: dict[str, list[float]] = {"ours": [], "hf": []}
        for _ in range(args.rounds):
            for name, fn in (("ours", our_step), ("hf", hf_step)):
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(args.steps):
                    fn()
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    tokens = args.steps * B * T
    tps = {k: tokens / statistics.median(v) for k, v in times.items()}
    cpu_tps = {k: tokens / statistics.median(v) for k, v in cpu.items()}
    result = {
        "shape": f"d {args.d_model}, {args.layers} layers, {args.heads} heads, vocab 50,304, "
        f"{'tied' if args.tied else 'untied'}, seq {T} × batch {B}",
        "threads": args.threads,
        "compile": args.compile,
        "tokens_per_s": tps,
        "tokens_per_cpu_s": cpu_tps,
        "ratio": tps["ours"] / tps["hf"],
        "cpu_ratio": cpu_tps["ours"] / cpu_tps["hf"],
        "rounds": times,
        "cpu_rounds": cpu,
    }
    table = Table(title=f"full training step, CPU fp32, {args.threads} thread(s): {result['shape']}")
    for col in ("", "tokens/s", "tokens per CPU-second", "rounds wall (s)", "rounds CPU (s)"):
        table.add_column(col)
    for name, label in (
        ("ours", f"dolma-kit (compile {'on' if args.compile else 'off'})"),
        ("hf", "HF eager"),
    ):
        table.add_row(
            label,
            f"{tps[name]:,.0f}",
            f"{cpu_tps[name]:,.0f}",
            " ".join(f"{t:.2f}" for t in times[name]),
            " ".join(f"{t:.2f}" for t in cpu[name]),
        )
    Console(width=200).print(table)
    Console().print(
        f"ours / HF = [bold]{result['ratio']:.2f}×[/] wall, [bold]{result['cpu_ratio']:.2f}×[/] CPU time "
        "(medians of rounds; on busy shared cores the CPU-time ratio is the steadier one)"
    )
    return result


def add_parser(sub) -> None:
    vp = sub.add_parser("vs-hf", help="issue 15's CPU target: our step vs HF OlmoForCausalLM's")
    vp.add_argument("--d-model", type=int, default=128)
    vp.add_argument("--layers", type=int, default=2)
    vp.add_argument("--heads", type=int, default=4)
    vp.add_argument("--seq-len", type=int, default=128)
    vp.add_argument("--batch", type=int, default=4)
    vp.add_argument("--tied", action=argparse.BooleanOptionalAction, default=True)
    vp.add_argument("--threads", type=int, default=1)
    vp.add_argument("--compile", action="store_true")
    vp.add_argument("--steps", type=int, default=5)
    vp.add_argument("--rounds", type=int, default=5)
    vp.add_argument("--warmup", type=int, default=2)
    vp.add_argument("--docs", type=int, default=3000)
    vp.add_argument("--set", action="append", default=[], help="config override for our side")
