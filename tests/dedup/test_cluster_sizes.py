"""Cluster sizes from the sparse table equal `np.bincount(labels)`, read in chunks of any size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dolma_kit.dedup import cluster_sizes
from dolma_kit.dedup.arrays import save_npy
from dolma_kit.dedup.lsh import connected_components


@pytest.mark.parametrize("chunk", [7, 1 << 24])
def test_sizes_equal_bincount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(cluster_sizes, "CHUNK", chunk)
    rng = np.random.default_rng(3)
    n = 500
    pairs = rng.integers(0, n, size=(120, 2))
    labels = connected_components(n, np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1))
    path = str(tmp_path / "labels.npy")
    save_npy(path, labels)
    cluster_sizes.write_cluster_sizes(path)
    table = cluster_sizes.ClusterSizes(path)
    assert np.array_equal(table.of(labels), np.bincount(labels, minlength=n)[labels])
    assert np.array_equal(table.of(labels[100:200]), np.bincount(labels, minlength=n)[labels[100:200]])
    big = np.bincount(labels)
    assert np.array_equal(np.asarray(table.roots), np.flatnonzero(big >= 2))
    assert len(np.asarray(table.roots)) > 5, "the graph has clusters"


def test_no_clusters(tmp_path: Path) -> None:
    path = str(tmp_path / "labels.npy")
    save_npy(path, np.arange(10, dtype=np.int64))
    cluster_sizes.write_cluster_sizes(path)
    assert cluster_sizes.ClusterSizes(path).of(np.arange(10)).tolist() == [1] * 10
