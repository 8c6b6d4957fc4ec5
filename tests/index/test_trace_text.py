"""Occurrences joined to a run: steps equal `trace --doc`'s for the same tokens, the held-out split is
named; maximal spans equal a brute-force longest-match scan; `trace-output` generates with a trained model,
attributes its output and writes the HTML view."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.index.attribute import attribute, longest_matches, maximal_spans
from dolma_kit.index.build import IndexConfig, build_index
from dolma_kit.index.schedule import Schedule
from dolma_kit.index.store import TokenIndex

from ..train.conftest import FAST, TINY
from .conftest import ENGINE_MISSING, brute_count, tokenize_corpus, write_words_corpus

pytest.importorskip("infini_gram", reason=ENGINE_MISSING)


def _order_run(tokens: Path, run: Path, *overrides: str) -> Path:
    """A run folder as the trainer writes it before step 1 (config.yaml, data_order.npy), no model."""
    import yaml

    from train.config import load_config
    from train.data import save_array

    cfg = load_config(TINY, [f"data.paths=[{tokens}]", f"trainer.run_dir={run}", *FAST, *overrides])
    data = cfg.data.build()
    run.mkdir(parents=True)
    cfg.model.vocab_size = data.vocab_size
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    steps, batch = cfg.trainer.max_steps, cfg.trainer.global_batch
    save_array(run / "data_order.npy", data.data_order(cfg.trainer.seed, steps * batch))
    return run


def _held_out_run(tokens: Path, run_dir: Path, steps: int) -> tuple[Path, TokenIndex, Schedule]:
    """A run of `steps` batches of 4 instances of 40 tokens, a tenth held out, and its index and schedule."""
    run = _order_run(
        tokens, run_dir, f"trainer.max_steps={steps}", "trainer.global_batch=4", "data.seq_len=40",
        "data.eval_fraction=0.1",
    )  # fmt: skip
    return run, TokenIndex.open(tokens), Schedule(run, tokens)


def test_steps_equal_trace_doc_and_held_out_is_named(indexed_demo: Path, tmp_path: Path) -> None:
    run, ix, schedule = _held_out_run(indexed_demo, tmp_path / "run", steps=20)
    rt, held = schedule.trace, set(schedule.held_out.tolist())
    checked = held_seen = 0
    for q in ([274], ix.encode(" the river"), ix.encode(" of"), ix.encode(" la")):
        _, found = ix.find(q, limit=50)
        for occ, seen in zip(found, schedule.seen(found), strict=True):
            rows = [
                r for r in rt.document_steps(occ.id, occ.source) if r.start < occ.end and occ.start < r.end
            ]
            assert seen.steps == sorted({r.step for r in rows}), occ
            fp = rt.data.parts.index((0, ix.tokenized.parts.index(occ.part)))
            first = int(rt.data.inst_offsets[fp]) + occ.start // 40
            assert seen.held_out == (
                first in held or int(rt.data.inst_offsets[fp]) + (occ.end - 1) // 40 in held
            )
            checked += 1
            held_seen += seen.held_out
    assert checked > 40 and held_seen > 0
    result = CliRunner().invoke(
        app, ["find", " the", "--index", str(indexed_demo), "--run", str(run), "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["occurrences"]
    assert rows and all("steps" in r and "held_out" in r for r in rows)
    table = CliRunner().invoke(app, ["find", " the", "--index", str(indexed_demo), "--run", str(run)])
    assert table.exit_code == 0 and "held out" in table.output


def test_the_order_sorted_by_instance_answers_as_the_scan_does(
    indexed_demo: Path, tmp_path: Path, monkeypatch
) -> None:
    """`Schedule` finds an instance's positions by binary search in the order sorted once (a scan per query
    cost 110 ms at 1 B tokens); past `INDEXED_ORDER_MAX` it scans. Both answer alike, epochs repeating ids."""
    from train import trace as trace_module

    run, ix, schedule = _held_out_run(indexed_demo, tmp_path / "run", steps=400)
    assert len(schedule.trace.order) > schedule.trace.data.num_instances  # more than one epoch
    found = [occ for q in ([274], ix.encode(" of"), ix.encode(" la")) for occ in ix.find(q, limit=40)[1]]
    indexed = schedule.seen(found)
    monkeypatch.setattr(trace_module, "INDEXED_ORDER_MAX", 0)
    assert Schedule(run, indexed_demo).seen(found) == indexed
    assert sum(len(s.steps) for s in indexed) > len(found) and any(s.held_out for s in indexed)


def test_a_run_on_other_tokens_is_refused(tokenized_demo: Path, tmp_path: Path) -> None:
    run = _order_run(tokenized_demo, tmp_path / "run", "trainer.max_steps=5", "trainer.global_batch=2")
    other = tokenize_corpus(write_words_corpus(tmp_path / "other", docs=20, words=40))
    build_index(IndexConfig(tokens=str(other), processes=1))
    result = CliRunner().invoke(app, ["find", " the", "--index", str(other), "--run", str(run)])
    assert result.exit_code != 0 and "was not trained on" in str(result.exception)


def test_a_copied_tokens_folder_is_the_run_s_data(
    indexed_demo: Path, tokenized_demo: Path, tmp_path: Path
) -> None:
    """A tokens folder moved or copied (the same manifest bytes) is the data the run trained on: the doc
    test's copies of `make demo`'s outputs, or a corpus moved to another disk."""
    run = _order_run(tokenized_demo, tmp_path / "run", "trainer.max_steps=5", "trainer.global_batch=2")
    result = CliRunner().invoke(app, ["find", " the", "--index", str(indexed_demo), "--run", str(run)])
    assert result.exit_code == 0, result.output


def test_maximal_spans_equal_a_brute_force_longest_match_scan(indexed_demo: Path) -> None:
    ix = TokenIndex.open(indexed_demo)
    parts = [np.asarray(ix.tokenized.tokens(i)) for i in range(len(ix.tokenized.parts))]
    rng = np.random.default_rng(5)
    text: list[int] = []
    for _ in range(6):  # corpus windows glued with ids that (mostly) break the match
        p = parts[int(rng.integers(len(parts)))]
        s = int(rng.integers(0, len(p) - 15))
        text += [int(t) for t in p[s : s + int(rng.integers(3, 15))]] + [int(rng.integers(900, 1024))]
    text.insert(10, ix.eos_id)
    expected = []
    for i in range(len(text)):
        length = 0
        while (
            i + length < len(text)
            and text[i + length] != ix.eos_id
            and brute_count(parts, text[i : i + length + 1])
        ):
            length += 1
        expected.append(length)
    assert longest_matches(ix, text) == expected
    spans = maximal_spans(expected, 1)
    for i, j in spans:  # no other span contains it, and every span not listed is contained in one
        assert not any(a <= i and j <= b and (a, b) != (i, j) for a, b in spans)
    for i, length in enumerate(expected):
        if length:
            assert any(a <= i and i + length <= b for a, b in spans)
    found = attribute(ix, text, min_len=3, max_spans=100)
    assert [(s.start, s.end) for s in sorted(found, key=lambda s: s.start)] == [
        s for s in spans if s[1] - s[0] >= 3
    ]
    assert [s.rarity for s in found] == sorted(s.rarity for s in found)
    assert all(s.count == brute_count(parts, text[s.start : s.end]) for s in found)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny model trained 12 steps on a tiny random-word corpus, and the indexed tokens."""
    from train.config import load_config
    from train.loop import Trainer

    root = tmp_path_factory.mktemp("trained")
    tokens = tokenize_corpus(write_words_corpus(root, docs=3, words=60))
    build_index(IndexConfig(tokens=str(tokens), processes=1))
    run = root / "run"
    overrides = [
        f"data.paths=[{tokens}]", f"trainer.run_dir={run}", *FAST, "data.eval_fraction=0",
        "trainer.max_steps=12", "trainer.eval_every=0", "trainer.keep_last=0", "trainer.checkpoint_every=6",
        "optim.lr=1e-2", "optim.warmup_steps=5", "optim.weight_decay=0",
    ]  # fmt: skip
    Trainer(load_config(TINY, overrides)).fit()
    return run, tokens


def test_trace_output_attributes_what_the_model_generates(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, tokens = trained
    ix = TokenIndex.open(tokens)
    doc = json.loads((tokens.parent / "documents" / "alpha" / "part-0000.jsonl").read_text().splitlines()[0])
    prompt = " ".join(doc["text"].split()[:8])
    html = tmp_path / "view.html"
    result = CliRunner().invoke(
        app,
        ["trace-output", str(run), "--prompt", prompt, "--new-tokens", "24", "--html", str(html), "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.splitlines()[-1])
    assert data["checkpoint"] == 12 and data["tokens"] > 0 and data["spans"]
    parts = [np.asarray(ix.tokenized.tokens(i)) for i in range(len(ix.tokenized.parts))]
    ids = data["ids"]
    for span in data["spans"]:
        assert span["end"] - span["start"] >= 4 and span["count"] == brute_count(
            parts, ids[span["start"] : span["end"]]
        )
        assert span["first_step"] is not None and 1 <= span["first_step"] <= 12
        assert all(o["steps"] and o["trained_by_checkpoint"] for o in span["occurrences"])
    page = html.read_text()
    assert "<mark" in page and data["spans"][0]["occurrences"][0]["id"] in page
    at6 = CliRunner().invoke(
        app, ["trace-output", str(run), "--prompt", prompt, "--checkpoint", "6", "--json"]
    )
    assert at6.exit_code == 0 and json.loads(at6.output.splitlines()[-1])["checkpoint"] == 6
    # a training document's own words: one span, the whole text, in that document, its steps trace --doc's
    verbatim = " " + " ".join(doc["text"].split()[10:40])
    early = CliRunner().invoke(
        app, ["trace-output", str(run), "--text", verbatim, "--checkpoint", "3", "--json"]
    )
    assert early.exit_code == 0, early.output
    whole = max(json.loads(early.output)["spans"], key=lambda s: s["end"] - s["start"])
    assert whole["text"] == verbatim and whole["count"] == 1
    (occ,) = whole["occurrences"]
    from train.trace import RunTrace

    rows = [
        r for r in RunTrace(run).document_steps(occ["id"]) if r.start < occ["end"] and occ["start"] < r.end
    ]
    assert occ["id"] == doc["id"] and occ["steps"] == sorted({r.step for r in rows}) and rows
    assert occ["trained_by_checkpoint"] == (min(occ["steps"]) <= 3)
    table = CliRunner().invoke(app, ["trace-output", "--index", str(tokens), "--text", data["text"]])
    assert table.exit_code == 0 and "found verbatim" in table.output
