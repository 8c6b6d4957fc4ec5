"""Spike and NaN recovery: a poisoned step is caught before it is applied, the run rolls back to the last good
checkpoint, skips that batch (recorded for trace) and ends where a clean run ends; every event is logged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from train.loop import Trainer
from train.recovery import RecoveryConfig, RecoveryState, SpikeDetector
from train.trace import RunTrace

from .test_loop import read_metrics

LONG = ["trainer.max_steps=24", "trainer.eval_every=0", "trainer.checkpoint_every=4", "optim.lr=1e-2"]


def final_eval_loss(run: Path) -> float:
    return [r for r in read_metrics(run) if r["kind"] == "eval"][-1]["eval_loss"]


def test_poisoned_step_is_rolled_back_skipped_and_the_run_ends_as_a_clean_one(
    tiny_config, tmp_path: Path
) -> None:
    recovery = ["recovery.min_history=5", "recovery.spike_factor=3"]
    Trainer(tiny_config(*LONG, *recovery, run="clean")).fit()
    records = Trainer(tiny_config(*LONG, *recovery, "debug.poison_steps=[10]", run="poisoned")).fit()
    run = tmp_path / "poisoned"
    metrics = read_metrics(run)
    events = [r for r in metrics if r["kind"] == "recovery"]
    assert len(events) == 1
    e = events[0]
    assert e["step"] == 10 and e["rolled_back_to"] == 8 and "loss spike" in e["reason"]
    assert e["loss"] > 1e3 and len(e["skipped_instances"]) == 8
    train = [r for r in metrics if r["kind"] == "train"]
    assert [r["step"] for r in train] == [*range(1, 10), *range(11, 25)]  # step 9 rewritten once, in order
    assert [r["step"] for r in metrics if r["kind"] == "skipped"] == [10]
    assert max(r["loss"] for r in train) < 10  # the spike was never applied
    assert [r["step"] for r in records] == list(range(1, 25))
    gap = abs(final_eval_loss(run) / final_eval_loss(tmp_path / "clean") - 1)
    assert gap < 0.02, gap  # issue 6 target: within 2% of the clean run
    assert RecoveryState.load(run).skipped == {10}
    logbook = (run / "logbook.md").read_text()
    assert "step 10: loss spike" in logbook and "rolled back to checkpoint step 8" in logbook
    # trace knows the batch was skipped: no token of it counts, and it never appears for its documents
    rt = RunTrace(run)
    assert rt.skipped == {10}
    assert len(rt.trained_order(24)) == 23 * 8
    clean = RunTrace(tmp_path / "clean")
    skipped_tokens = sum(rt.source_tokens(24).values())
    assert skipped_tokens == sum(clean.source_tokens(24).values()) - 8 * 32
    doc = rt.step_documents(10)[0]
    assert all(r.step != 10 for r in rt.document_steps(doc.id, doc.source))


def test_nan_before_the_first_checkpoint_restarts_from_init_with_a_lower_lr(
    tiny_config, tmp_path: Path
) -> None:
    cfg = tiny_config(
        "trainer.max_steps=8",
        "trainer.eval_every=0",
        "debug.poison_steps=[3]",
        "debug.poison=nan",
        "recovery.lr_factor=0.5",
    )
    trainer = Trainer(cfg)
    records = trainer.fit()
    run = tmp_path / "run"
    (event,) = [r for r in read_metrics(run) if r["kind"] == "recovery"]
    assert event["rolled_back_to"] == 0 and event["reason"].startswith("non-finite loss")
    assert event["lr_scale"] == 0.5
    by_step = {r["step"]: r for r in records}
    assert by_step[3]["skipped"] and by_step[1]["lr"] == pytest.approx(cfg.optim.lr_at(1, 8) * 0.5)
    assert all(math.isfinite(r["loss"]) for r in records if r["loss"] is not None)
    assert all(p.isfinite().all() for p in trainer.model.parameters())
    # a rerun of the finished run (same recovery.json) repeats the decision without a new event
    assert json.loads((run / "recovery.json").read_text())["skipped_steps"] == [3]


def test_detector_median_window_and_non_finite_norms() -> None:
    det = SpikeDetector(RecoveryConfig(spike_factor=2.0, window=3, min_history=3))
    for step, loss in enumerate([9.0, 3.0, 2.0, 2.0], 1):
        assert det.check(loss, 1.0) is None
        det.record(step, loss)
    assert det.check(4.1, 1.0) is not None  # median of the last 3 (3, 2, 2) is 2
    assert det.check(3.9, 1.0) is None
    assert det.check(1.0, math.inf) == "non-finite grad norm (inf)"
    det.truncate(2)
    assert det.check(100.0, 1.0) is None  # too little history after a rollback to step 2
    assert SpikeDetector(RecoveryConfig(enabled=False)).check(math.nan, 1.0) is None


def _poisoned_two_ranks(tokens: str, run: str) -> None:
    from train.config import load_config

    from .conftest import FAST, TINY

    overrides = [f"data.paths=[{tokens}]", f"trainer.run_dir={run}", *FAST, "trainer.max_steps=8"]
    cfg = load_config(
        TINY, [*overrides, "trainer.eval_every=0", "debug.poison_steps=[6]", "debug.poison=nan"]
    )
    records = Trainer(cfg).fit()
    assert [r["step"] for r in records] == list(range(1, 9)) and records[5]["skipped"]


@pytest.mark.slow
def test_two_ranks_take_the_same_recovery_decision(tokenized_demo: Path, tmp_path: Path) -> None:
    from .distributed import run_distributed

    run = tmp_path / "run"
    run_distributed(_poisoned_two_ranks, str(tokenized_demo), str(run), world_size=2)
    (event,) = [r for r in read_metrics(run) if r["kind"] == "recovery"]
    assert event["rolled_back_to"] == 4 and event["skipped_step"] == 6
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step4", "step8"]


def _resume_then_poison(tokens: str, root: str) -> None:
    """Uninterrupted vs stopped at 8 and resumed, log_every=5: step 10 is poisoned (× 1e4) in both."""
    from train.config import load_config

    from .conftest import FAST, TINY

    base = [f"data.paths=[{tokens}]", *FAST, "trainer.max_steps=12", "trainer.log_every=5"]
    base += ["trainer.eval_every=0", "trainer.checkpoint_every=4", "recovery.min_history=5"]
    base += ["debug.poison_steps=[10]"]
    Trainer(load_config(TINY, [*base, f"trainer.run_dir={root}/straight"])).fit()
    Trainer(load_config(TINY, [*base, f"trainer.run_dir={root}/resumed", "trainer.stop_at=8"])).fit()
    Trainer(load_config(TINY, [*base, f"trainer.run_dir={root}/resumed"])).fit()


@pytest.mark.slow
def test_a_resumed_run_takes_the_spike_decision_an_uninterrupted_one_takes(
    tokenized_demo: Path, tmp_path: Path
) -> None:
    """metrics.jsonl holds every 5th loss only: rebuilt from it, the detector had 1 loss at step 8 (< 5) and
    applied the poisoned step; its window now travels in the checkpoint."""
    from .distributed import run_distributed
    from .test_loop import losses

    run_distributed(_resume_then_poison, str(tokenized_demo), str(tmp_path), world_size=2)
    for name in ("straight", "resumed"):
        (event,) = [r for r in read_metrics(tmp_path / name) if r["kind"] == "recovery"]
        assert event["step"] == 10 and event["rolled_back_to"] == 8, name
    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")
    state = json.loads((tmp_path / "resumed/checkpoints/step8/train_state.json").read_text())
    assert [s for s, _ in state["spike_detector"]] == list(range(1, 9))
