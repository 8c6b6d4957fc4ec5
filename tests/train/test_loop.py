"""Training end to end on the tokenized demo corpus: 2 gloo ranks under FSDP2, loss falls; a stopped and
resumed run repeats a never-stopped one exactly; checkpoints are atomic and pruned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from train.config import TrainConfig, load_config
from train.loop import Trainer

from .conftest import FAST, TINY
from .distributed import requires_gpu, run_distributed


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses(run: Path) -> list[tuple]:
    """What must repeat exactly: every train and eval loss, per source too (timings of course differ)."""
    out = []
    for r in read_metrics(run):
        if r["kind"] == "train":
            out.append(("train", r["step"], r["loss"], r["loss_by_source"], r["grad_norm"], r["lr"]))
        elif r["kind"] == "eval":
            out.append(("eval", r["step"], r["eval_loss"], r["eval_by_source"]))
    return out


def _two_rank_config(tokens: str, run: str) -> TrainConfig:
    overrides = [f"data.paths=[{tokens}]", f"trainer.run_dir={run}", *FAST, "optim.lr=1e-2"]
    overrides += ["trainer.max_steps=20", "trainer.micro_batch=4", "trainer.eval_every=0"]
    return load_config(TINY, [*overrides, "trainer.checkpoint_every=10"])


def _train_two_ranks(tokens: str, run: str) -> None:
    Trainer(_two_rank_config(tokens, run)).fit()


@pytest.mark.slow
def test_two_gloo_ranks_train_and_loss_falls(tokenized_demo: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_distributed(_train_two_ranks, str(tokenized_demo), str(run), world_size=2)
    records = read_metrics(run)
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 21))
    first, last = sum(r["loss"] for r in train[:3]) / 3, sum(r["loss"] for r in train[-3:]) / 3
    assert last < first - 2.0, (first, last)  # from ~ln(1024) = 6.9 to well below
    r = train[-1]
    assert set(r) >= {
        "step",
        "loss",
        "loss_by_source",
        "lr",
        "grad_norm",
        "tokens_per_s",
        "mfu",
        "examples_seen",
    }
    assert r["examples_seen"] == 20 * 8 and r["tokens_seen"] == 20 * 8 * 32
    assert r["mfu"] is None  # CPU without a configured peak
    assert r["lr"] == pytest.approx(1e-3)  # decayed to 0.1 × peak at the last step
    assert set(r["loss_by_source"]) == {"forum", "web", "wiki"}
    assert [
        json.loads(x)["world_size"] for x in [(run / "checkpoints/step20/train_state.json").read_text()]
    ] == [2]
    assert sorted(p.name for p in (run / "checkpoints/step20").glob("__*_0.distcp")) == [
        "__0_0.distcp",
        "__1_0.distcp",
    ]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [e["step"] for e in evals] == [20] and evals[0]["eval_ppl"] > 1
    # one process, same config: the same order, and the same losses up to summation order (FSDP averages
    # the two ranks' gradients of the rank-mean losses, which is the gradient of the global mean)
    single_train = Trainer(_two_rank_config(str(tokenized_demo), str(tmp_path / "single"))).fit()
    assert np.array_equal(np.load(run / "data_order.npy"), np.load(tmp_path / "single/data_order.npy"))
    for a, b in zip(train, single_train, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-4)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-3)


def test_stopped_and_resumed_run_repeats_losses_exactly(tiny_config, tmp_path: Path) -> None:
    Trainer(tiny_config(run="straight")).fit()
    # the second run stops after step 6 (checkpoints at 4 and 6); then we make checkpoint 6 look like a kill
    # mid-write (no completion marker), so the resume starts from step 4 with metrics up to 6 to cut back
    Trainer(tiny_config("trainer.stop_at=6", run="resumed")).fit()
    resumed = tmp_path / "resumed"
    assert max(r["step"] for r in read_metrics(resumed)) == 6
    (resumed / "checkpoints/step6/.complete").unlink()
    trainer = Trainer(tiny_config(run="resumed"))
    trainer.maybe_resume()
    assert trainer.step == 4
    Trainer(tiny_config(run="resumed")).fit()
    assert losses(resumed) == losses(tmp_path / "straight")
    assert len([r for r in read_metrics(resumed) if r["kind"] == "eval"]) == 3  # steps 4, 8, 12
    # keep_last=2 and the unmarked folder is gone
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == ["step12", "step8"]
    state = json.loads((resumed / "checkpoints/step12/train_state.json").read_text())
    assert state["examples_seen"] == 12 * 8 and state["scheduler"]["step"] == 12


def test_resume_refuses_a_changed_config_or_order(tiny_config, tmp_path: Path) -> None:
    Trainer(tiny_config("trainer.max_steps=2", "trainer.eval_every=0")).fit()
    with pytest.raises(Exception, match="different config"):
        Trainer(tiny_config("trainer.max_steps=2", "trainer.eval_every=0", "optim.lr=1e-4"))
    (tmp_path / "run" / "config.yaml").unlink()
    with pytest.raises(Exception, match="differs from the order"):
        Trainer(tiny_config("trainer.max_steps=2", "trainer.eval_every=0", "trainer.seed=1"))


@requires_gpu
def test_bf16_on_gpu_keeps_fp32_master_weights(tiny_config) -> None:
    trainer = Trainer(tiny_config("trainer.device=cuda", "trainer.max_steps=3", "trainer.eval_every=0"))
    assert trainer.bf16
    records = trainer.fit()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert records[-1]["loss"] < records[0]["loss"] + 0.5
    assert records[-1]["mfu"] is None or 0 < records[-1]["mfu"] < 1


def test_cpu_threads_are_chosen_from_idle_cores_and_oversubscription_warns() -> None:
    from train.parallelize import choose_cpu_threads

    def pick(configured=None, ranks=1, cores=2, load=0.0, env=None):
        return choose_cpu_threads(configured, local_ranks=ranks, cores=cores, load=load, env=env)

    assert pick() == (2, None)  # an idle 2-core machine, one process: both cores
    assert pick(ranks=2, cores=16, load=0.2) == (8, None)
    assert pick(load=5.0) == (1, None)  # 2 cores busy with other work: one thread, no warning
    assert pick(env="1", cores=16) == (1, None)  # torchrun's OMP_NUM_THREADS=1 is kept
    threads, warning = pick(configured=2, load=5.0)
    assert threads == 2 and "oversubscribed" in warning and "trainer.cpu_threads=1" in warning
    threads, warning = pick(env="8", cores=4)
    assert threads == 8 and "trainer.cpu_threads=4" in warning
    assert "4 ranks on 2 core(s)" in pick(ranks=4)[1]


def test_trainer_sets_automatic_threads_on_cpu(tiny_config) -> None:
    trainer = Trainer(tiny_config("trainer.cpu_threads=null", "trainer.max_steps=1"))
    assert trainer.cpu_threads == torch.get_num_threads() >= 1


def _short_config(tokens: str, run: str, *extra: str) -> TrainConfig:
    overrides = [f"data.paths=[{tokens}]", f"trainer.run_dir={run}", *FAST, "optim.lr=1e-2"]
    overrides += ["trainer.max_steps=8", "trainer.micro_batch=4", "trainer.eval_every=0", *extra]
    return load_config(TINY, overrides)


def _resume_on_two_ranks(tokens: str, run: str) -> None:
    Trainer(_short_config(tokens, run)).fit()


@pytest.mark.slow
def test_a_one_process_checkpoint_resumes_on_two_ranks(tokenized_demo: Path, tmp_path: Path) -> None:
    """One CPU process trains the plain module, two ranks train under FSDP2: DCP reshards between them."""
    straight = Trainer(_short_config(str(tokenized_demo), str(tmp_path / "straight"))).fit()
    single = Trainer(_short_config(str(tokenized_demo), str(tmp_path / "run"), "trainer.stop_at=4"))
    assert not single.sharded
    single.fit()
    run_distributed(_resume_on_two_ranks, str(tokenized_demo), str(tmp_path / "run"), world_size=2)
    resumed = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert [r["step"] for r in resumed] == list(range(1, 9))
    for a, b in zip(resumed[4:], straight[4:], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-4)
    state = json.loads((tmp_path / "run/checkpoints/step8/train_state.json").read_text())
    assert state["world_size"] == 2
