"""`bench/train.py gpu-check` on the CPU escape hatch: the same code path as on a GPU (train, evaluate twice,
checkpoint at half way, resume in a new trainer, evaluate equal), on the tiny config; and one clear line
when no GPU is visible."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_train_gpu", ROOT / "bench" / "train_gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_train_gpu"] = module
    spec.loader.exec_module(module)
    return module


def args(tokens: Path, device: str, steps: int = 4) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    load_bench().add_parser(parser.add_subparsers(dest="mode"))
    argv = ["gpu-check", "--device", device, "--config", str(ROOT / "configs" / "tiny.yaml")]
    argv += ["--steps", str(steps), "--seq-len", "32", "--skip", "0", "--data", str(tokens)]
    return parser.parse_args([*argv, "--set", "trainer.cpu_threads=1"])


def test_gpu_check_path_runs_on_the_cpu(tokenized_demo: Path) -> None:
    bench = load_bench()
    result = bench.gpu_check(args(tokenized_demo, "cpu"), lambda docs: tokenized_demo, ROOT)
    (row,) = result["rows"]
    assert row["config"] == "configs/tiny.yaml" and row["steps"] == 4
    assert row["eval_steps"] == [2, 4] and row["resumed_at"] == 2
    assert row["resume_equal"] and row["eval_after_resume"] == row["eval_losses"][0]
    assert row["tokens_per_s_per_gpu"] > 0 and row["mfu"] is None and row["peak_memory_gib"] is None
    assert row["parameters"] == 3_350_528  # the tiny shape over OLMo's padded 50,304 vocabulary


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_gpu_check_without_a_gpu_is_one_clear_line(tokenized_demo: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        load_bench().gpu_check(args(tokenized_demo, "auto"), lambda docs: tokenized_demo, ROOT)
    message = str(stop.value)
    assert "needs a CUDA GPU" in message and "--device cpu" in message and "\n" not in message
