"""`dolma-kit trace` answers, checked against a brute-force walk over every token of every scheduled
instance (one provenance `locate` per token)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.provenance import TokenizedDir
from train.data import save_array
from train.trace import RunTrace


@pytest.fixture
def run(tiny_config, tokenized_demo: Path) -> Path:
    """A run folder as the trainer writes it before step 1 (config.yaml, data_order.npy): trace needs no
    training, only the order. Built through the trainer's own code path, minus the model."""
    import yaml

    cfg = tiny_config("trainer.max_steps=20", "trainer.global_batch=4", "data.seq_len=40")
    data = cfg.data.build()
    run = Path(cfg.trainer.run_dir)
    run.mkdir(parents=True)
    cfg.model.vocab_size = data.vocab_size
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    save_array(run / "data_order.npy", data.data_order(cfg.trainer.seed, 20 * 4))
    return run


def brute_force(run: Path, tokenized: Path) -> tuple[dict, dict, list[Counter]]:
    """Walk every token: {step: {(instance, doc id, source, src, loc, part start, end)}}, {doc id: steps},
    and the per-step source token counts."""
    d = TokenizedDir.open(tokenized)
    order = np.load(run / "data_order.npy")
    seq, batch = 40, 4
    instances = [(p, i * seq) for p in range(len(d.parts)) for i in range(d.num_tokens(p) // seq)]
    by_step: dict[int, set] = defaultdict(set)
    doc_steps: dict[str, list] = defaultdict(list)
    per_step: list[Counter] = []
    for pos, inst in enumerate(order.tolist()):
        step = pos // batch + 1
        if pos % batch == 0:
            per_step.append(Counter())
        p, s0 = instances[inst]
        spans: dict = {}
        for t in range(s0, s0 + seq):
            loc = d.locate(p, t)
            key = (inst, loc.id, loc.source, loc.src, loc.loc)
            lo, hi = spans.get(key, (t, t))
            spans[key] = (min(lo, t), max(hi, t + 1))
            per_step[-1][loc.source] += 1
        for key, (lo, hi) in spans.items():
            by_step[step].add((*key, lo, hi))
            doc_steps[key[1]].append((step, inst, lo, hi))
    return by_step, doc_steps, per_step


def test_trace_matches_brute_force(run: Path, tokenized_demo: Path) -> None:
    by_step, doc_steps, per_step = brute_force(run, tokenized_demo)
    rt = RunTrace(run)
    assert rt.max_steps == 20
    for step in range(1, 21):
        got = {(r.instance, r.id, r.source, r.src, r.loc, r.start, r.end) for r in rt.step_documents(step)}
        assert got == by_step[step], step
    for doc_id, expected in doc_steps.items():
        got = [(r.step, r.instance, r.start, r.end) for r in rt.document_steps(doc_id)]
        assert sorted(got) == sorted(expected), doc_id
    for until in (1, 7, 20):
        expected = sum(per_step[:until], Counter())
        assert rt.source_tokens(until) == {s: expected.get(s, 0) for s in rt.data.sources}
    assert rt.document_steps("no-such-document") == []


def test_trace_cli(run: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["trace", str(run), "--step", "2", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {r["step"] for r in rows} == {2} and len({r["instance"] for r in rows}) == 4
    first = rows[0]
    doc = runner.invoke(app, ["trace", str(run), "--doc", first["id"], "--source", first["source"], "--json"])
    steps = {json.loads(line)["step"] for line in doc.output.splitlines()}
    assert 2 in steps
    until = runner.invoke(app, ["trace", str(run), "--doc", first["id"], "--until", "2", "--json"])
    assert {json.loads(line)["step"] for line in until.output.splitlines()} == {s for s in steps if s <= 2}
    table = runner.invoke(app, ["trace", str(run), "--sources", "--until", "5"])
    assert table.exit_code == 0 and "forum" in table.output and "share" in table.output
    bad = runner.invoke(app, ["trace", str(run), "--step", "21"])
    assert bad.exit_code != 0 and "outside the run's schedule (1 … 20)" in str(bad.exception)
    assert runner.invoke(app, ["trace", str(run)]).exit_code != 0  # one question at a time
