"""Banded LSH over stored signatures, candidate verification and clustering, all on numpy arrays.

Memory stays proportional to the number of documents, not to signatures: signature files are memory-mapped,
a band is one uint64 per document (8 MB per million), clusters are one int64 label per document.

- `band_keys`: the `rows` values of a band hashed into one uint64 per document.
- `candidate_pairs`: documents sorted by band key (stable, so document order within a bucket); each member is
  paired with its next `window - 1` members of the same bucket. Buckets of up to `window` documents give all
  pairs; a larger bucket (often boilerplate shared by many pages) gives a bounded number of pairs per
  document, never k². A pair missed there is usually found in another band.
- `verify`: a candidate is joined only if its Jaccard is ≥ threshold, so pages that share a header and footer
  (and so one band) but not their bodies stay apart. With `ShingleSets` (each document's sorted unique 64-bit
  shingle hashes) the Jaccard is exact, |A ∩ B| / |A ∪ B|; without, it is the signatures' estimate (fraction
  of equal values, standard deviation ≈ √(J(1-J)/num_perm): ≈ 0.043 at J = 0.7 with 112 permutations).
- `connected_components`: union-find as arrays (hook larger roots to smaller ones, compress, repeat); the
  label of every document is the smallest document index of its cluster, which is also the kept document.
  It holds every pair and label in one process; `cluster_distributed` computes the same labels (byte for
  byte) in partitioned rounds when that is too much.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from dolma_kit.dedup.minhash import MAX_HASH

_BAND_SEED = 0x5851F42D4C957F2D


def _band_multipliers(rows: int) -> np.ndarray:
    gen = np.random.RandomState(rows)
    hi = gen.randint(0, 1 << 32, rows, dtype=np.uint64) << np.uint64(32)
    return hi | gen.randint(0, 1 << 32, rows, dtype=np.uint64) | np.uint64(1)


def band_keys(sig: np.ndarray, band: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys uint64 [n], valid bool [n]) for one band of signatures [n, num_perm].

    A band whose values are all MAX_HASH (a document without shingles) is not valid: empty documents are
    never candidates.
    """
    block = np.asarray(sig[:, band * rows : (band + 1) * rows])
    valid = ~np.all(block == MAX_HASH, axis=1)
    with np.errstate(over="ignore"):
        keys = np.full(len(block), np.uint64(_BAND_SEED), dtype=np.uint64)
        for j, m in enumerate(_band_multipliers(rows)):
            keys += block[:, j].astype(np.uint64) * m
            keys ^= keys >> np.uint64(29)
    return keys, valid


def candidate_pairs(keys: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Pairs int64 [E, 2] (first < second, document indices) of documents in the same bucket.

    Within a bucket, in document order, each member is paired with its next `window - 1` members.
    """
    idx = np.flatnonzero(valid)
    return bucket_pairs(keys[idx], idx, window)


def bucket_pairs(keys: np.ndarray, docs: np.ndarray, window: int) -> np.ndarray:
    """`candidate_pairs` over (key, document) records given in ascending document order: a band's valid
    documents, or one hash partition of them (`lsh_partition`), which holds whole buckets."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    order = docs[order]
    out = []
    for d in range(1, window):
        if d >= len(order):
            break
        same = sorted_keys[:-d] == sorted_keys[d:]
        if not same.any():
            break
        out.append(np.stack([order[:-d][same], order[d:][same]], axis=1))
    if not out:
        return np.zeros((0, 2), dtype=np.int64)
    return np.concatenate(out).astype(np.int64)


def unique_pairs(pairs: Sequence[np.ndarray], n_docs: int) -> np.ndarray:
    """The distinct pairs (first < second) of several candidate lists, sorted."""
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    allp = np.concatenate(pairs)
    codes = np.unique(allp[:, 0] * np.int64(n_docs) + allp[:, 1])
    return np.stack([codes // n_docs, codes % n_docs], axis=1)


class Signatures:
    """All documents' signatures as one virtual array over per-shard arrays.

    A shard is an array, or a function that opens one (e.g. a memory map) with its row count given in
    `lengths`: shards are then opened only while used, so 100,000 shard files never mean 100,000 open maps.
    """

    def __init__(
        self, shards: Sequence[np.ndarray | Callable[[], np.ndarray]], *, lengths: Sequence[int] | None = None
    ) -> None:
        self.shards = list(shards)
        if lengths is None:
            lengths = [len(a) for a in self.shards]  # type: ignore[arg-type]
        self.offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        self.num_perm = self.shard(0).shape[1] if self.shards else 0

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def shard(self, s: int) -> np.ndarray:
        a = self.shards[s]
        return a if isinstance(a, np.ndarray) else a()

    def take(self, idx: np.ndarray) -> np.ndarray:
        """Rows at global indices `idx`, in that order."""
        out = np.empty((len(idx), self.num_perm), dtype=np.uint32)
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            local = idx[sel] - self.offsets[s]
            order = np.argsort(local, kind="stable")  # ascending reads are kinder to memory maps
            out[sel[order]] = self.shard(int(s))[local[order]]
        return out

    def band(self, band: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Band keys and validity for all documents."""
        parts = [band_keys(self.shard(s), band, rows) for s in range(len(self.shards))]
        if not parts:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool)
        return np.concatenate([k for k, _ in parts]), np.concatenate([v for _, v in parts])


def matching_values(sigs: Signatures, pairs: np.ndarray, *, chunk: int = 100_000) -> np.ndarray:
    """Equal signature values of every pair (int32 [E]); / num_perm = the estimated Jaccard."""
    out = np.empty(len(pairs), dtype=np.int32)
    for lo in range(0, len(pairs), chunk):
        p = pairs[lo : lo + chunk]
        out[lo : lo + len(p)] = np.count_nonzero(sigs.take(p[:, 0]) == sigs.take(p[:, 1]), axis=1)
    return out


class ShingleSets:
    """All documents' sorted unique uint64 shingle hashes as one virtual ragged array over per-shard files.

    A shard is a (hashes [U], offsets int64 [docs + 1]) pair, or a function returning one (e.g. memory maps),
    with its document count in `lengths`; document i of a shard is `hashes[offsets[i]:offsets[i + 1]]`.
    """

    def __init__(
        self,
        shards: Sequence[tuple[np.ndarray, np.ndarray] | Callable[[], tuple[np.ndarray, np.ndarray]]],
        *,
        lengths: Sequence[int] | None = None,
    ) -> None:
        self.shards = list(shards)
        if lengths is None:
            lengths = [len(s[1]) - 1 for s in self.shards]  # type: ignore[index]
        self.offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def shard(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        a = self.shards[s]
        return a if isinstance(a, tuple) else a()

    def sizes(self, idx: np.ndarray) -> np.ndarray:
        """Number of shingles int64 of the documents at global indices `idx`."""
        out = np.zeros(len(idx), dtype=np.int64)
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            off = np.asarray(self.shard(int(s))[1])
            local = idx[sel] - self.offsets[s]
            out[sel] = off[local + 1] - off[local]
        return out

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hashes uint64, sizes int64 [len(idx)]): the sets of the documents at `idx`, concatenated in order."""
        sizes = self.sizes(idx)
        starts_out = np.concatenate(([0], np.cumsum(sizes)))
        out = np.empty(int(starts_out[-1]), dtype=np.uint64)
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            hashes, off = self.shard(int(s))
            local = idx[sel] - self.offsets[s]
            n = sizes[sel]
            total = int(n.sum())
            if total == 0:
                continue
            within = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
            src = np.repeat(np.asarray(off)[local], n) + within
            dst = np.repeat(starts_out[sel], n) + within
            order = np.argsort(src, kind="stable")  # ascending reads are kinder to memory maps
            out[dst[order]] = np.asarray(hashes)[src[order]]
        return out, sizes


def exact_jaccard(sets: ShingleSets, pairs: np.ndarray, *, chunk: int = 1 << 22) -> np.ndarray:
    """Jaccard float64 [E] of every pair's shingle sets, |A ∩ B| / |A ∪ B| (0 when both are empty).

    Pairs go in chunks of about `chunk` shingles: both sides' sets are tagged with their pair number and sorted
    together; as each set has no repeats, a hash seen twice within one pair is in the intersection.
    """
    out = np.zeros(len(pairs), dtype=np.float64)
    if len(pairs) == 0:
        return out
    size_a, size_b = sets.sizes(pairs[:, 0]), sets.sizes(pairs[:, 1])
    ends = np.cumsum(size_a + size_b)
    lo = 0
    while lo < len(pairs):
        base = ends[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(ends, base + chunk, side="right")), lo + 1)
        p = pairs[lo:hi]
        ha, na = sets.take(p[:, 0])
        hb, nb = sets.take(p[:, 1])
        tag = np.concatenate((np.repeat(np.arange(len(p)), na), np.repeat(np.arange(len(p)), nb)))
        h = np.concatenate((ha, hb))
        order = np.lexsort((h, tag))
        h, tag = h[order], tag[order]
        both = (h[1:] == h[:-1]) & (tag[1:] == tag[:-1])
        inter = np.bincount(tag[1:][both], minlength=len(p)).astype(np.float64)
        union = (na + nb).astype(np.float64) - inter
        out[lo:hi] = np.divide(inter, union, out=np.zeros(len(p)), where=union > 0)
        lo = hi
    return out


def required_matches(threshold: float, num_perm: int) -> int:
    """Smallest number of equal values whose estimate (matches / num_perm) is ≥ threshold."""
    return math.ceil(threshold * num_perm - 1e-9)


def connected_components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Label int64 [n] of each node: the smallest node index of its connected component.

    Union-find on arrays: every round hooks each edge's larger root under its smaller one (parents only ever
    decrease, so no cycles), then compresses paths until every node points at its root.
    """
    parent = np.arange(n, dtype=np.int64)
    u, v = pairs[:, 0], pairs[:, 1]
    while len(u):
        pu, pv = parent[u], parent[v]
        lo, hi = np.minimum(pu, pv), np.maximum(pu, pv)
        live = lo != hi
        if not live.any():
            break
        np.minimum.at(parent, hi[live], lo[live])
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        u, v = u[live], v[live]
    return parent


def lsh_and_cluster(
    sigs: Signatures,
    bands: int,
    rows: int,
    threshold: float,
    window: int = 8,
    shingles: ShingleSets | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """All bands, verification and components in one process: the benchmark's entry point.

    Verification is exact with `shingles`, else by the signatures' estimate (synthetic signatures have no
    shingles). Returns (labels int64 [n], counts: candidates, verified, rejected, clusters).
    """
    n = len(sigs)
    pairs = unique_pairs([candidate_pairs(*sigs.band(b, rows), window) for b in range(bands)], n)
    return cluster_pairs(sigs, pairs, threshold, shingles)


def verified(
    sigs: Signatures, pairs: np.ndarray, threshold: float, shingles: ShingleSets | None = None
) -> np.ndarray:
    """bool [E]: the pairs whose Jaccard (exact with `shingles`, else estimated) is ≥ threshold.

    Exact verification first drops pairs whose set sizes alone rule them out (J ≤ min/max size), which never
    drops a pair at or above the threshold; no estimate is used as a pre-filter, as it could.
    """
    if shingles is None:
        return matching_values(sigs, pairs) >= required_matches(threshold, max(sigs.num_perm, 1))
    ok = np.zeros(len(pairs), dtype=bool)
    if len(pairs) == 0:
        return ok
    a, b = shingles.sizes(pairs[:, 0]), shingles.sizes(pairs[:, 1])
    possible = np.minimum(a, b) >= threshold * np.maximum(a, b) - 1e-9
    possible &= np.maximum(a, b) > 0
    idx = np.flatnonzero(possible)
    ok[idx] = exact_jaccard(shingles, pairs[idx]) >= threshold - 1e-12
    return ok


def cluster_pairs(
    sigs: Signatures, pairs: np.ndarray, threshold: float, shingles: ShingleSets | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """Verify candidate pairs, join those that pass, label clusters; with counts for the report."""
    n = len(sigs)
    ok = verified(sigs, pairs, threshold, shingles)
    labels = connected_components(n, pairs[ok])
    sizes = np.bincount(labels, minlength=n)
    counts = {
        "candidates": len(pairs),
        "verified": int(ok.sum()),
        "rejected": int(len(pairs) - ok.sum()),
        "clusters": int(np.count_nonzero(sizes >= 2)),
        "duplicates": int(n - np.count_nonzero(sizes)),
    }
    return labels, counts


def synthetic_signatures(
    n: int, num_perm: int, *, duplicate_fraction: float = 0.1, similarity: float = 0.9, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random signatures uint32 [n, num_perm] with planted near duplicates, for benchmarks and tests.

    A `duplicate_fraction` of the rows copy an earlier original row and keep each of its values with
    probability `similarity` (what MinHash does for a pair with that Jaccard); the rest are unrelated. Returns
    (signatures, origin int64 [n]: the original each row was copied from, itself for originals).
    """
    rng = np.random.default_rng(seed)
    sig = rng.integers(0, 1 << 32, (n, num_perm), dtype=np.uint32)
    origin = np.arange(n, dtype=np.int64)
    is_dup = rng.random(n) < duplicate_fraction
    is_dup[0] = False
    originals = np.flatnonzero(~is_dup)
    dups = np.flatnonzero(is_dup)
    before = np.searchsorted(originals, dups)  # originals earlier than each duplicate (≥ 1: row 0 is one)
    origin[dups] = originals[(rng.random(len(dups)) * before).astype(np.int64)]
    for lo in range(0, len(dups), 100_000):
        d = dups[lo : lo + 100_000]
        keep = rng.random((len(d), num_perm)) < similarity
        sig[d] = np.where(keep, sig[origin[d]], sig[d])
    return sig, origin
