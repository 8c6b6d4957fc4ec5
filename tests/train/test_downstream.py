"""Rank classification of multiple-choice items: continuation log-likelihoods equal a one-sequence-at-a-time
computation, each normalisation picks what it should, ranks split the items, accuracy lands in metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dolma_kit.config import ConfigError
from train.downstream import Item, TaskConfig, choose, continuation_logprobs, evaluate_tasks, load_task
from train.loop import Trainer
from train.model import ModelConfig, build_model

from .test_loop import read_metrics

TASK = Path(__file__).resolve().parents[1] / "fixtures" / "tasks" / "tiny_mc.jsonl"


def small_model() -> torch.nn.Module:
    model = build_model(ModelConfig(d_model=32, n_layers=2, n_heads=4, vocab_size=50))
    model.init_weights(3)
    return model.eval()


def test_continuation_logprobs_equal_one_sequence_at_a_time() -> None:
    model = small_model()
    g = torch.Generator().manual_seed(0)
    requests = [
        (torch.randint(0, 50, (n,), generator=g).tolist(), torch.randint(0, 50, (k,), generator=g).tolist())
        for n, k in [(5, 2), (1, 4), (9, 1), (3, 3), (12, 6)]
    ]
    got = continuation_logprobs(
        model,
        requests,
        seq_len=16,
        batch_size=2,
        n_batches=3,
        device=torch.device("cpu"),
        vocab_size=50,
        pad_id=0,
    )
    for (ctx, cont), score in zip(requests, got, strict=True):
        seq = torch.tensor([(ctx + cont)[-16:]])
        with torch.no_grad():
            logp = F.log_softmax(model(seq)[0, :, :50], dim=-1)
        n = len(cont)
        expected = sum(logp[seq.shape[1] - n - 1 + i, seq[0, seq.shape[1] - n + i]] for i in range(n))
        assert score == pytest.approx(float(expected), abs=1e-4)


def test_normalisations_choose_differently() -> None:
    item = Item(context=[0], choices=[[1], [2, 3, 4]], chars=[10, 3], label=1)
    cond = [-2.0, -4.5]  # summed: option 0; per token: option 1 (-1.5); per char: option 0 (-0.2 vs -1.5)
    assert choose(TaskConfig(name="t", path="x", normalization="none"), item, cond, None) == 0
    assert choose(TaskConfig(name="t", path="x", normalization="token"), item, cond, None) == 1
    assert choose(TaskConfig(name="t", path="x", normalization="char"), item, cond, None) == 0
    # pmi: option 1 gained more from the context than option 0 did
    assert choose(TaskConfig(name="t", path="x", normalization="pmi"), item, cond, [-1.9, -9.0]) == 1
    with pytest.raises(ConfigError, match="normalization"):
        TaskConfig(name="t", path="x", normalization="bogus")


def test_items_split_over_ranks_add_up_to_the_whole(tmp_path: Path) -> None:
    model = small_model()
    items = load_task(TaskConfig(name="tiny", path=str(TASK)), lambda s: [ord(c) % 50 for c in s], 0)
    assert len(items) == 8 and items[0].context[0] == 0  # contexts start after EOS
    tasks = [(TaskConfig(name="tiny", path=str(TASK), normalization="pmi"), items, [0])]
    kw = dict(seq_len=64, batch_size=4, device=torch.device("cpu"), vocab_size=50, pad_id=0)
    whole = evaluate_tasks(model, tasks, rank=0, world_size=1, **kw)["tiny"]
    parts = [evaluate_tasks(model, tasks, rank=r, world_size=3, **kw)["tiny"] for r in range(3)]
    assert sum(p["n"] for p in parts) == whole["n"] == 8
    assert sum(p["correct"] for p in parts) == whole["correct"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": "a", "choices": [" b"], "label": 0}\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:1"):
        load_task(TaskConfig(name="bad", path=str(bad)), list, 0)


def test_accuracy_is_logged_with_the_eval_losses(tiny_config, tokenized_demo: Path) -> None:
    tasks = f"[{{name: tiny_mc, path: {TASK}, normalization: char}}, {{name: tiny_pmi, path: {TASK}, normalization: pmi}}]"
    cfg = tiny_config("trainer.max_steps=4", f"downstream={tasks}")
    Trainer(cfg).fit()
    evals = [r for r in read_metrics(Path(cfg.trainer.run_dir)) if r["kind"] == "eval"]
    assert [e["step"] for e in evals] == [4]
    for name in ("tiny_mc", "tiny_pmi"):
        result = evals[0]["downstream"][name]
        assert result["n"] == 8 and 0 <= result["acc"] <= 1 and result["acc"] == result["correct"] / 8
    assert "eval_loss" in evals[0]
