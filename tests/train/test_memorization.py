"""Memorization: a tiny model trained many epochs on a tiny corpus reproduces its training sequences greedily;
the same run's step-1 checkpoint does not. Scores are aggregated by data chunk and source, written as JSON/PNG."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from dolma_kit.config import ConfigError
from train.loop import Trainer
from train.memorization import first_seen, memorization, write_report

from ..conftest import DEMO_TOKENIZER, WORDS


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sources of three random-word documents each (about 20 instances of 32 tokens), tokenized."""
    from dolma_kit.tokenize.stage import TokenizeConfig, tokenize

    root = tmp_path_factory.mktemp("memo")
    rng = random.Random(7)
    for source in ("alpha", "beta"):
        lines = [
            json.dumps({"id": f"{source}-{i}", "source": source, "text": " ".join(rng.choices(WORDS, k=60))})
            for i in range(3)
        ]
        (root / "documents" / source).mkdir(parents=True)
        (root / "documents" / source / "part-0000.jsonl").write_text("\n".join(lines) + "\n")
    out = root / "tokenized"
    tokenize(
        TokenizeConfig(
            documents=[str(root / "documents" / "*" / "*.jsonl")],
            destination=str(out),
            tokenizer=str(DEMO_TOKENIZER),
            processes=1,
        )
    )
    return out


def test_trained_model_memorises_and_a_fresh_one_does_not(
    tiny_corpus: Path, tiny_config, tmp_path: Path
) -> None:
    common = [
        f"data.paths=[{tiny_corpus}]",
        "data.eval_fraction=0",
        "trainer.max_steps=60",
        "trainer.eval_every=0",
        "trainer.keep_last=0",
        "optim.lr=1e-2",
        "optim.warmup_steps=5",
        "optim.weight_decay=0",
    ]
    Trainer(tiny_config(*common, "trainer.stop_at=1", "trainer.checkpoint_every=0")).fit()
    Trainer(tiny_config(*common, "trainer.checkpoint_every=0")).fit()
    run = tmp_path / "run"
    kw = dict(prompt=12, continuation=20, samples=12, seed=0, chunks=3)
    trained = memorization(run, step=60, **kw)
    fresh = memorization(run, step=1, **kw)
    assert trained["exact_match"] > 0.9 and trained["full_match"] > 0.5, trained["exact_match"]
    assert fresh["exact_match"] < 0.2 and fresh["full_match"] == 0
    assert {r["group"] for r in trained["by_source"]} == {"alpha", "beta"}
    assert sum(r["n"] for r in trained["by_chunk"]) == trained["samples"] == 12
    assert all(s["first_step"] <= 60 and s["times_seen"] >= 1 for s in trained["sequences"])
    assert fresh["samples"] == 8  # step 1 trained on one global batch of 8 instances
    json_path, png_path = write_report(trained, tmp_path / "report")
    assert json.loads(json_path.read_text())["step"] == 60 and png_path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="must fit in one instance"):
        memorization(run, step=60, prompt=20, continuation=20)
    with pytest.raises(ConfigError, match="no complete checkpoint of step 30"):
        memorization(run, step=30)


def test_first_seen_skips_recovered_steps() -> None:
    order = np.array([5, 6, 7, 5, 8, 6])  # 3 steps of 2
    ids, first, counts = first_seen(order, 2, skipped={2})
    assert ids.tolist() == [5, 6, 8] and first.tolist() == [1, 1, 3] and counts.tolist() == [1, 2, 1]
