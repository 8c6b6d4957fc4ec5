"""The size of every document's cluster without an array of N sizes in any task.

`np.bincount(labels)` gives every cluster's size at 8 bytes a document, and each attribute task used to build
it (8 GB per task at a billion documents, and the report a second time). Only clusters of two or more need a
size: their roots are the labels of the documents whose label is not their own index (the duplicates, D of
them). One pass over the labels, in chunks, collects those and counts them: 8 bytes × D (times about three
while `np.unique` sorts) on the driver, once. The table (the sorted roots, then their sizes, in one
`.npy` beside the labels) is memory-mapped by the tasks, which look up only their own shard's labels.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dolma_kit.dedup.arrays import load_npy, save_npy

CHUNK = 1 << 24
"""Labels read at a time (128 MiB)."""


def sizes_path(labels_path: str) -> str:
    return labels_path + ".sizes.npy"


def label_chunks(labels: np.ndarray, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """(first index, labels) from `start` on, CHUNK at a time, so a memory-mapped file is never read whole."""
    for lo in range(start, len(labels), CHUNK):
        yield lo, np.asarray(labels[lo : lo + CHUNK])


def write_cluster_sizes(labels_path: str) -> None:
    """The roots of the clusters of two or more, sorted, followed by their sizes, as one int64 array."""
    labels = load_npy(labels_path)
    members = [chunk[chunk != np.arange(lo, lo + len(chunk))] for lo, chunk in label_chunks(labels)]
    joined = np.concatenate(members) if members else np.zeros(0, dtype=np.int64)
    roots, counts = np.unique(joined, return_counts=True)
    save_npy(sizes_path(labels_path), np.concatenate([roots, counts + 1]).astype(np.int64))


class ClusterSizes:
    """The table `write_cluster_sizes` wrote, memory-mapped: sizes of the clusters of given labels."""

    def __init__(self, labels_path: str) -> None:
        table = load_npy(sizes_path(labels_path))
        k = len(table) // 2
        self.roots, self.sizes = table[:k], table[k:]

    def of(self, labels: np.ndarray) -> np.ndarray:
        """int64 [len(labels)]: each label's cluster size (1 for a document alone)."""
        out = np.ones(len(labels), dtype=np.int64)
        if len(self.roots) == 0 or len(labels) == 0:
            return out
        pos = np.minimum(np.searchsorted(self.roots, labels), len(self.roots) - 1)
        hit = np.asarray(self.roots[pos]) == labels
        out[hit] = np.asarray(self.sizes[pos[hit]])
        return out
