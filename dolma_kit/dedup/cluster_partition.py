"""One partition's share of distributed connected components: large-star / small-star on numpy arrays.

The algorithm is Kiveris et al. 2014 ("Connected Components in MapReduce and Beyond"), alternating two steps
over an undirected edge set until every component is a star around its smallest node:

- **large-star**, per node u with neighbours Γ(u): m = min(Γ(u) ∪ {u}); every neighbour v > u is linked to m
  instead of u (edge (v, m)). It needs u's whole neighbourhood, so its input holds each edge both ways.
- **small-star**, per node u with its smaller neighbours N(u): m = min(N(u) ∪ {u}); u and every v in N(u)
  are linked to m. It needs only the smaller side, so its input holds each edge once, keyed by its larger end.

Both keep every component connected and never create a node; at the fixed point each component is a star whose
centre is its smallest node, so a node's label (centre) is the same smallest index union-find gives
(`lsh.connected_components`), whatever the partitioning: the arrays are equal byte for byte.

Partitions are by node, `node % partitions`: partition p owns nodes p, p + P, p + 2P, … so its labels are
`labels[p::P]`, and the final labels file is the partitions' label files interleaved (`cluster_distributed`).
An edge is stored in the partition of its key node; a step's task reads its partition's edges from every file
the step before wrote, works on them alone, and writes one file of new edges sorted by the partition that must
read each, with the offsets in a JSON sidecar. So a task holds its partition's edges and labels, never more.

Convergence is tested on a large-star input, where a task sees each of its nodes' whole neighbourhood: a node is
*settled* when all its neighbours are larger (a centre) or it has exactly one neighbour, a smaller one (a leaf).
When every node of every partition is settled the graph is a star forest (a leaf's neighbour cannot be a leaf:
its only neighbour would be smaller than it), and each partition's labels follow from its own edges.

The first step (`verify_partition`) reads the LSH candidate pairs by ranges of their smaller document (pair
files sorted by (first, second), with a sparse index of first documents, see `sorted_pairs`), verifies them and
writes the edges for the first large-star.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from dolma_kit import storage
from dolma_kit.dedup.arrays import save_npy
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import ShardStats, ShardTask

#: every INDEX_STRIDE-th pair's first document is stored beside a sorted pair file (`pair_index`)
INDEX_STRIDE = 1 << 16
Step = Literal["large", "small"]
EMPTY = np.zeros((0, 2), dtype=np.int64)
Cols = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------------------------- pure numpy


def unique_cols(k: np.ndarray, o: np.ndarray) -> Cols:
    """The distinct (k, o) pairs of two int64 columns of non-negative values, sorted by (k, o).

    Below 2^31 the columns are packed into one int64 (k << 32 | o) and sorted in place as one key, ~4× faster
    than `np.lexsort` and 8 bytes a pair; past it (billions of documents) `lexsort`. Both give the same pairs.
    """
    if len(k) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if max(int(k.max()), int(o.max())) < 1 << 31:
        codes = k << 32
        codes |= o
        codes.sort()
        codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
        return codes >> 32, codes & 0xFFFFFFFF
    order = np.lexsort((o, k))
    k, o = k[order], o[order]
    keep = np.concatenate(([True], (k[1:] != k[:-1]) | (o[1:] != o[:-1])))
    return k[keep], o[keep]


def unique_rows(edges: np.ndarray) -> np.ndarray:
    """Distinct rows of int64 [E, 2] (non-negative), sorted by (first, second)."""
    k, o = unique_cols(np.ascontiguousarray(edges[:, 0]), np.ascontiguousarray(edges[:, 1]))
    return np.stack([k, o], axis=1)


def sorted_pairs(edges: np.ndarray) -> np.ndarray:
    """Pairs (smaller, larger) int64 [E, 2] of an undirected edge list: self-loops and repeats dropped, sorted.
    The form LSH band files are stored in, so a task can read the pairs of a range of first documents."""
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    lo, hi = np.minimum(e[:, 0], e[:, 1]), np.maximum(e[:, 0], e[:, 1])
    live = lo != hi
    return np.stack(unique_cols(lo[live], hi[live]), axis=1)


def pair_index(pairs: np.ndarray) -> np.ndarray:
    """The sparse index stored beside a sorted pair file: the first document of every INDEX_STRIDE-th pair."""
    return np.ascontiguousarray(pairs[::INDEX_STRIDE, 0], dtype=np.int64)


def _groups(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of sorted keys: each group's start row, key and size."""
    starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1]))) if len(k) else np.zeros(0, np.int64)
    sizes = np.diff(np.concatenate((starts, [len(k)])))
    return starts, k[starts], sizes


# No step ever makes a self-loop (`sorted_pairs` drops those of the input; both steps link a node to a smaller
# one), so none is filtered here. The steps' outputs may repeat an edge: the step reading them removes repeats.


def large_star(k: np.ndarray, o: np.ndarray) -> tuple[Cols, dict[str, int], np.ndarray]:
    """Large-star over the edges (key k, other o) of the nodes a partition owns, each edge present both ways.

    Returns (new edges as columns (larger, smaller), counts, leaves [L, 2]: (node, its only neighbour, a
    smaller one) of the settled leaves). counts: `unsettled` nodes (neither centre nor leaf: not converged),
    `centres` (nodes with neighbours, all larger) and `leaves`.
    """
    k, o = unique_cols(k, o)
    starts, keys, sizes = _groups(k)
    smallest = o[starts]  # sorted by (key, other): a group's first other is its smallest
    up = o > k
    del k
    out = (o[up], np.repeat(np.minimum(keys, smallest), sizes)[up])
    leaf = (sizes == 1) & (smallest < keys)
    centre = smallest > keys
    counts = {"unsettled": int(len(keys) - leaf.sum() - centre.sum()), "centres": int(centre.sum()),
              "leaves": int(leaf.sum())}  # fmt: skip
    return out, counts, np.stack([keys[leaf], smallest[leaf]], axis=1)


def small_star(k: np.ndarray, o: np.ndarray) -> Cols:
    """Small-star over the edges (larger k, smaller o) keyed by the nodes a partition owns: new edges (larger,
    smaller) linking each node and its smaller neighbours to the smallest of them."""
    k, o = unique_cols(k, o)
    starts, keys, sizes = _groups(k)
    del k
    m = o[starts]
    rest = np.ones(len(o), dtype=bool)
    rest[starts] = False  # a group's first other is m itself
    return np.concatenate([keys, o[rest]]), np.concatenate([m, np.repeat(m, sizes - 1)])


def route(a: np.ndarray, b: np.ndarray, partitions: int, *, both: bool) -> tuple[np.ndarray, np.ndarray]:
    """Edges (larger a, smaller b) keyed for the next step: by their larger end (a small-star's input), or with
    `both` each way (a large-star's). Returns (keyed edges int64 [E, 2] sorted by the partition that reads
    them, offsets int64 [partitions + 1]: partition q reads rows offsets[q]:offsets[q + 1])."""
    if both:
        a, b = np.concatenate([a, b]), np.concatenate([b, a])
    small = np.uint16 if partitions <= 1 << 16 else np.int64  # a stable sort of 16-bit keys is a radix sort
    dest = (a % partitions).astype(small)
    order = np.argsort(dest, kind="stable")
    offsets = np.concatenate(([0], np.cumsum(np.bincount(dest, minlength=partitions)))).astype(np.int64)
    del dest
    out = np.empty((len(a), 2), dtype=np.int64)
    out[:, 0] = a[order]
    out[:, 1] = b[order]
    return out, offsets


def partition_labels(n: int, partitions: int, part: int, leaves: np.ndarray) -> np.ndarray:
    """Labels int64 of the nodes part, part + P, … < n: a settled leaf's is its centre, any other node's its own."""
    labels = np.arange(part, n, partitions, dtype=np.int64)
    labels[(leaves[:, 0] - part) // partitions] = leaves[:, 1]
    return labels


# --------------------------------------------------------------------------------------------- file i/o


def read_rows(path: str, lo: int, hi: int) -> np.ndarray:
    """Rows lo:hi of a .npy file (1-d or 2-d), read alone: a slice of a memory map locally, one ranged read
    of an object store's file (the rest of the file is never fetched)."""
    if not storage.is_remote(path):
        return np.array(np.load(storage.local_path(path), mmap_mode="r", allow_pickle=False)[lo:hi])
    with storage.open_raw(path) as fh:
        fmt = np.lib.format
        version = fmt.read_magic(fh)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(fh)
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        hi = min(hi, shape[0])
        if hi <= lo:
            return np.zeros((0, *shape[1:]), dtype=dtype)
        fh.seek(fh.tell() + lo * row)
        data = fh.read((hi - lo) * row)
    return np.frombuffer(data, dtype=dtype).reshape(hi - lo, *shape[1:]).copy()


def index_path(pair_path: str) -> str:
    return pair_path.removesuffix(".npy") + ".index.npy"


def pair_rows(path: str, lo: int, hi: int) -> tuple[int, int]:
    """The rows of a sorted pair file whose first document is in [lo, hi): found through its sparse index
    (two reads of at most 2 × INDEX_STRIDE rows), never by reading the file."""
    idx_path = index_path(path)
    if not storage.exists(idx_path):
        raise DolmaKitError(
            f"{path}: candidate pairs of an older version (unsorted, no index); run `--stage lsh --force`"
        )
    index = read_rows(idx_path, 0, 1 << 62)

    def first_row(value: int) -> int:  # first row whose first document is ≥ value
        block = max(int(np.searchsorted(index, value, side="left")) - 1, 0)
        start = block * INDEX_STRIDE
        rows = read_rows(path, start, start + 2 * INDEX_STRIDE)
        return start + int(np.searchsorted(rows[:, 0], value, side="left")) if len(rows) else start

    return first_row(lo), first_row(hi)


def save_pairs(path: str, edges: np.ndarray) -> None:
    """An undirected edge list as a sorted pair file (`sorted_pairs`) with its sparse index, written first."""
    pairs = sorted_pairs(edges)
    save_npy(index_path(path), pair_index(pairs))
    save_npy(path, pairs)


def _write(task: ShardTask, edges: Cols, partitions: int, both: bool, info: dict[str, Any]) -> None:
    """A step's output: the routed edges, and beside them (written first) their offsets and the counts."""
    keyed, offsets = route(*edges, partitions, both=both)
    info = {"offsets": offsets.tolist(), "edges": len(edges[0]), **info}
    storage.write_text(task.output + ".json", json.dumps(info) + "\n")
    save_npy(task.output, keyed)


def step_info(path: str) -> dict[str, Any]:
    """The JSON sidecar of a step output file (offsets per reading partition, counts)."""
    return json.loads(storage.read_text(path + ".json"))


def incoming(sources: list[str], part: int) -> Cols:
    """Partition `part`'s edges (key, other) from every output file of the step before, as two columns."""
    ranges = [(src, *step_info(src)["offsets"][part : part + 2]) for src in sources]
    k = np.empty(sum(hi - lo for _, lo, hi in ranges), dtype=np.int64)
    o = np.empty_like(k)
    at = 0
    for src, lo, hi in ranges:
        if hi > lo:
            rows = read_rows(src, lo, hi)
            k[at : at + hi - lo], o[at : at + hi - lo] = rows[:, 0], rows[:, 1]
            at += hi - lo
    return k, o


# --------------------------------------------------------------------------------------------- tasks


def verify_partition(task: ShardTask, stats: ShardStats, *, pair_paths: list[str], n: int, partitions: int,
                     part: int, verify: Callable[[np.ndarray], np.ndarray] | None) -> None:  # fmt: skip
    """Step 0: the candidate pairs whose first document is in this partition's range (documents
    n·part/P … n·(part+1)/P, a contiguous slice of every sorted pair file), deduplicated, verified (`verify`:
    pairs → bool mask; None keeps all), written as the first large-star's edges."""
    lo, hi = n * part // partitions, n * (part + 1) // partitions
    ranges = [(path, *pair_rows(path, lo, hi)) for path in pair_paths]
    pairs = np.empty((sum(b - a for _, a, b in ranges), 2), dtype=np.int64)
    at = 0
    for path, a, b in ranges:
        pairs[at : at + b - a] = read_rows(path, a, b)
        at += b - a
    pairs = unique_rows(pairs)  # a pair found by several bands is verified once
    ok = verify(pairs) if verify is not None and len(pairs) else np.ones(len(pairs), dtype=bool)
    counts = {"candidates": len(pairs), "verified": int(ok.sum())}
    edges = (pairs[ok, 1], pairs[ok, 0])  # (larger, smaller)
    del pairs, ok
    _write(task, edges, partitions, True, counts)


def star_partition(task: ShardTask, stats: ShardStats, *, step: Step, sources: list[str], n: int,
                   partitions: int, part: int) -> None:  # fmt: skip
    """One large-star or small-star step on this partition's edges. A large-star whose nodes are all settled
    also writes this partition's labels (`<output>.labels.npy`): if every partition is settled, they are final."""
    if step == "small":
        _write(task, small_star(*incoming(sources, part)), partitions, True, {})
        return
    edges, counts, leaves = large_star(*incoming(sources, part))
    if counts["unsettled"] == 0:
        save_npy(task.output + ".labels.npy", partition_labels(n, partitions, part, leaves))
    _write(task, edges, partitions, False, counts)
