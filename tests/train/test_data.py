"""Instances, per-token sources, the held-out split, the global order and mixtures, checked against the
provenance index and against straightforward recomputations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dolma_kit.provenance import TokenizedDir
from train.data import DataConfig


def dataset(tokens: Path, **kw):
    return DataConfig(paths=[str(tokens)], seq_len=kw.pop("seq_len", 32), **kw).build()


def all_instances(d: TokenizedDir, seq_len: int) -> list[tuple[int, int]]:
    """(part, start) of every instance, by walking the parts: whole instances only, never across parts."""
    return [(p, i * seq_len) for p in range(len(d.parts)) for i in range(d.num_tokens(p) // seq_len)]


def test_instances_and_token_sources_match_the_provenance_index(tokenized_demo: Path) -> None:
    d = TokenizedDir.open(tokenized_demo)
    data = dataset(tokenized_demo, seq_len=48)
    expected = all_instances(d, 48)
    assert data.num_instances == len(expected)
    ids = np.arange(data.num_instances)
    part, start = data.locate(ids)
    assert [(int(p), int(s)) for p, s in zip(part, start, strict=True)] == expected
    tokens, sources = data.batch(ids[::3])
    for row, (p, s) in enumerate(expected[::3]):
        assert np.array_equal(tokens[row], np.asarray(d.tokens(p)[s : s + 48]))
        assert [data.sources[c] for c in sources[row]] == [d.locate(p, s + t).source for t in range(48)]
    per_source = data.instance_source_tokens()
    assert per_source.sum() == data.num_instances * 48
    assert np.array_equal(per_source[ids[::3]], np.stack([np.bincount(r, minlength=3) for r in sources]))


def test_order_is_olmos_permutation_without_the_held_out_instances(tokenized_demo: Path) -> None:
    data = dataset(tokenized_demo, eval_fraction=0.1)
    held = data.eval_instances()
    assert len(held) == round(0.1 * data.num_instances) == len(np.unique(held))
    assert not np.array_equal(held, np.sort(held))  # drawn order: every prefix is a uniform sample
    train = np.setdiff1d(np.arange(data.num_instances), held)
    n = 3 * len(train) + 5  # three epochs and a bit
    order = data.data_order(seed=7, num_instances=n)
    assert order.dtype == np.uint32 and len(order) == n
    for e in range(4):  # OLMo's global_indices of epoch e over all instances, held-out ids filtered out
        olmo = np.random.Generator(np.random.PCG64(7 + e)).permutation(data.num_instances)
        expected = olmo[~np.isin(olmo, held)]
        assert np.array_equal(order[e * len(train) : (e + 1) * len(train)], expected[: n - e * len(train)])
    assert not np.isin(order, held).any()
    assert np.array_equal(order, data.data_order(seed=7, num_instances=n))
    assert not np.array_equal(order, data.data_order(seed=8, num_instances=n))
    # the held-out set depends on data.eval_seed, not on the training seed
    assert np.array_equal(held, dataset(tokenized_demo, eval_fraction=0.1).eval_instances())
    assert not np.array_equal(held, dataset(tokenized_demo, eval_fraction=0.1, eval_seed=3).eval_instances())


def test_mixture_is_realised_by_tokens(tokenized_demo: Path) -> None:
    data = dataset(tokenized_demo, seq_len=16, eval_fraction=0.0, mixture={"web": 3, "wiki": 1})
    epoch = data.epoch_instances(seed=0)
    owner = np.argmax(data.instance_source_tokens(), axis=1)
    names = [data.sources[c] for c in owner[epoch]]
    assert len(epoch) == data.num_instances
    assert names.count("web") == round(0.75 * len(epoch)) and names.count("wiki") == round(0.25 * len(epoch))
    assert "forum" not in names
    with pytest.raises(Exception, match="unknown source 'news'"):
        dataset(tokenized_demo, mixture={"news": 1.0}).epoch_instances(seed=0)


def test_several_directories_concatenate_and_merge_sources(tokenized_demo: Path, tmp_path: Path) -> None:
    import shutil

    other = shutil.copytree(tokenized_demo, tmp_path / "copy")
    one = dataset(tokenized_demo)
    two = DataConfig(paths=[str(tokenized_demo), str(other)], seq_len=32).build()
    assert two.num_instances == 2 * one.num_instances and two.sources == one.sources
    ids = np.arange(one.num_instances)
    a, b = two.batch(ids), two.batch(ids + one.num_instances)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert two.part_name(len(one.parts)).startswith(str(other))
