"""Held-out evaluation: a fixed set of instances whatever the world size, every source reported, and every
tensor on the training device (a CPU scalar stacked with a CUDA loss crashed the first GPU evaluation)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from train.config import load_config
from train.loop import Trainer

from .conftest import FAST, TINY
from .distributed import run_distributed

# 13 held-out instances over micro-batches of 2: an odd count, so 2 ranks get 7 and 6 (a padded forward)
EVAL = ["data.eval_fraction=0.3", "trainer.eval_instances=13", "trainer.micro_batch=2", "trainer.max_steps=2"]


def _evaluate_to_file(tokens: str, run: str, out: str) -> None:
    """Evaluate the initial weights (the same for any world size) and write the result from rank 0."""
    cfg = load_config(TINY, [f"data.paths=[{tokens}]", f"trainer.run_dir={run}", *FAST, *EVAL])
    trainer = Trainer(cfg)
    loss, by_source = trainer.evaluate()
    if trainer.dist.is_main:
        Path(out).write_text(json.dumps({"loss": loss, "by_source": by_source}))


@pytest.mark.slow
def test_two_ranks_evaluate_the_same_instances_as_one(tokenized_demo: Path, tmp_path: Path) -> None:
    two, one = tmp_path / "two.json", tmp_path / "one.json"
    run_distributed(_evaluate_to_file, str(tokenized_demo), str(tmp_path / "r2"), str(two), world_size=2)
    _evaluate_to_file(str(tokenized_demo), str(tmp_path / "r1"), str(one))
    a, b = json.loads(two.read_text()), json.loads(one.read_text())
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    assert set(a["by_source"]) == set(b["by_source"]) == {"forum", "web", "wiki"}
    for s, v in b["by_source"].items():
        assert a["by_source"][s]["tokens"] == v["tokens"]
        if v["tokens"]:
            assert a["by_source"][s]["loss"] == pytest.approx(v["loss"], rel=1e-6)
    assert sum(v["tokens"] for v in b["by_source"].values()) == 13 * 31


def test_default_evaluates_every_held_out_instance_and_reports_every_source(tiny_config) -> None:
    trainer = Trainer(tiny_config("trainer.eval_instances=null", "trainer.max_steps=2"))
    assert len(trainer.eval_subset()) == len(trainer.eval_ids) > 1
    loss, by_source = trainer.evaluate()
    assert list(by_source) == trainer.sources
    assert sum(v["tokens"] for v in by_source.values()) == len(trainer.eval_ids) * 31
    assert loss == pytest.approx(
        sum(v["loss"] * v["tokens"] for v in by_source.values() if v["tokens"]) / (len(trainer.eval_ids) * 31)
    )


def test_a_source_without_held_out_tokens_is_reported_with_null_loss(tiny_config) -> None:
    trainer = Trainer(tiny_config("trainer.eval_instances=1", "trainer.max_steps=2"))
    _, by_source = trainer.evaluate()
    assert list(by_source) == trainer.sources
    empty = [v for v in by_source.values() if v["tokens"] == 0]
    assert empty and all(v["loss"] is None and v["ppl"] is None for v in empty)


def test_evaluation_sums_stay_on_the_training_device(tiny_config, monkeypatch) -> None:
    """The meta device stands in for CUDA: any tensor made on the CPU inside the evaluation fails to mix."""
    trainer = Trainer(tiny_config("trainer.max_steps=2"))
    real, cpu, meta = trainer._losses, trainer.dist, replace(trainer.dist, device=torch.device("meta"))

    def on_meta(tokens, sources):  # the model runs on the CPU; what it returns lives on "the device"
        trainer.dist = cpu
        try:
            return tuple(t.to("meta") for t in real(tokens, sources))
        finally:
            trainer.dist = meta

    monkeypatch.setattr(trainer, "_losses", on_meta)
    trainer.dist = meta
    sums = trainer.eval_sums()
    assert sums.device.type == "meta" and sums.shape == (2 * len(trainer.sources),)


def test_eval_instances_must_be_positive(tiny_config) -> None:
    with pytest.raises(Exception, match="eval_instances must be positive"):
        tiny_config("trainer.eval_instances=0")
