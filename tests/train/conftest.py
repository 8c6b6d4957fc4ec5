"""Fixtures for the trainer tests: the tiny config pointed at the tokenized demo corpus, made even smaller."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from train.config import TrainConfig, load_config

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"

# transformers (test extra) is used offline only: exported folders are loaded from disk, nothing is fetched
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# d 64, 2 layers, seq 32 (configs/tiny.yaml); short schedules so the whole directory runs in well under 2 min
FAST = [
    "trainer.max_steps=12",
    "trainer.global_batch=8",
    "trainer.micro_batch=2",
    "trainer.log_every=1",
    "trainer.eval_every=4",
    "trainer.eval_instances=16",
    "trainer.checkpoint_every=4",
    "optim.warmup_steps=3",
    "trainer.cpu_threads=1",  # on 2 shared, busy cores one thread per process is several times faster
]


@pytest.fixture
def tiny_config(tokenized_demo: Path, tmp_path: Path) -> Callable[..., TrainConfig]:
    """`tiny_config("trainer.max_steps=5", run="a")`: configs/tiny.yaml on the demo tokens, run dir in tmp."""

    def make(*overrides: str, run: str = "run") -> TrainConfig:
        return load_config(
            TINY, [f"data.paths=[{tokenized_demo}]", f"trainer.run_dir={tmp_path / run}", *FAST, *overrides]
        )

    return make
