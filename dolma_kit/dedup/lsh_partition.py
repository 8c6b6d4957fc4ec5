"""The LSH step in hash partitions, so that no band task holds a key for every document of the corpus.

One task per band holds that band's key, validity, sort order and sorted keys for all N documents: about
51 bytes a document (`bench/lsh_memory.py`, 4 M documents), 5 GB at 100 million and 50 GB at a billion. Past
`TARGET_BYTES`, the step runs in two passes instead, as exact dedup does:

1. keys: one task per signature shard computes every band's keys of its documents (valid ones only) and
   writes them as (key, document index) records sorted by band partition (`band × P + key mod P`), with an
   offsets file beside them: 16 bytes a document and band on disk, read once. The signatures are read once
   too, where P tasks per band would each read all of them.
2. bands: one task per (band, partition) reads its slice of every shard's key file and pairs the members of
   each bucket as `lsh.candidate_pairs` does.

A bucket's documents share a key, so they all fall in one partition, and within it they come in document
order (shards in order, documents in order within a shard). The stable sort by key then gives the same
buckets, in the same order, as the single task: the same candidate pairs for any P. The pair files differ
only in how the pairs are spread across files, and the cluster step reads the union of the band files
either way, so the labels are byte-identical (a test checks P = 1, 2 and 8).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from dolma_kit import storage
from dolma_kit.dedup.arrays import load_npy, npy_rows
from dolma_kit.dedup.cluster_partition import save_pairs
from dolma_kit.dedup.exact_partition import load_partition, offsets_path, write_npy
from dolma_kit.dedup.lsh import Signatures, band_keys, bucket_pairs, candidate_pairs
from dolma_kit.dedup.minhash import MinhashConfig
from dolma_kit.executor import RunResult, ShardStats, ShardTask, per_task, run_shards

KEY_DTYPE = np.dtype([("key", "<u8"), ("doc", "<i8")])
#: what one band task may hold: keys, validity, order and sorted keys come to ~51 bytes a document
TARGET_BYTES = 512 * 2**20
BYTES_PER_DOCUMENT = 52
#: gzipped input bytes per document assumed when the plan is made (before signatures are counted): low, so a
#: corpus of short documents is not under-partitioned
INPUT_BYTES_PER_DOCUMENT = 1024


def default_band_partitions(input_bytes: int) -> int:
    """A power of two: 1 while one band task fits `TARGET_BYTES` (about 10 million documents), else enough."""
    documents = input_bytes / INPUT_BYTES_PER_DOCUMENT
    wanted = max(1, math.ceil(documents * BYTES_PER_DOCUMENT / TARGET_BYTES))
    return 1 << (wanted - 1).bit_length()


def signatures(paths: list[str]) -> Signatures:
    """Every shard's signatures, each opened (memory-mapped) only while read."""
    return Signatures([functools.partial(load_npy, p) for p in paths], lengths=[npy_rows(p) for p in paths])


def band_tasks(lsh_root: str, sig_root: str, sig_tasks: list[ShardTask], bands: int, partitions: int,
               ) -> tuple[list[ShardTask], list[ShardTask]]:  # fmt: skip
    """(key tasks, band tasks): no key tasks and one task a band when `partitions` is 1."""
    if partitions == 1:
        out = [f"band-{b:03d}.npy" for b in range(bands)]
        return [], [ShardTask(key=k, input=sig_root, output=storage.join(lsh_root, k)) for k in out]
    keys = [
        ShardTask(key=t.key, input=t.output, output=storage.join(lsh_root, "keys", t.key), size=t.size)
        for t in sig_tasks
    ]
    out = [f"band-{b:03d}-part-{p:04d}.npy" for b in range(bands) for p in range(partitions)]
    return keys, [ShardTask(key=k, input=lsh_root, output=storage.join(lsh_root, k)) for k in out]


def band_shard(task: ShardTask, stats: ShardStats, *, band: int, minhash: MinhashConfig,
               sig_paths: list[str]) -> None:  # fmt: skip
    """One LSH band over all signatures → its candidate pairs, sorted, with their index (read by ranges of
    first documents when clustering is partitioned)."""
    sigs = signatures(sig_paths)
    keys, valid = sigs.band(band, minhash.r)
    save_pairs(task.output, candidate_pairs(keys, valid, minhash.window))
    stats.documents_in = stats.kept = len(sigs)


def key_shard(
    task: ShardTask, stats: ShardStats, *, minhash: MinhashConfig, first: int, partitions: int
) -> None:
    """One signature shard → every band's (key, document) records, sorted by band partition, and offsets.

    Band by band, each band's records sorted by partition (stable: document order kept within one) are
    already in slot order (`band × P + partition`), so they are written one after the other under one
    header: ~16 bytes per document and band held, not the several copies a global sort would make."""
    sig = load_npy(task.input)
    chunks, counts = [], []
    for band in range(minhash.b):
        keys, valid = band_keys(sig, band, minhash.r)
        idx = np.flatnonzero(valid)
        part = keys[idx] % np.uint64(partitions)
        order = np.argsort(part, kind="stable")
        records = np.empty(len(idx), dtype=KEY_DTYPE)
        records["key"] = keys[idx[order]]
        records["doc"] = idx[order] + first
        chunks.append(records)
        counts.append(np.bincount(part.astype(np.int64), minlength=partitions))
        del keys, valid, idx, part, order
    offsets = np.zeros(minhash.b * partitions + 1, dtype="<i8")
    np.cumsum(np.concatenate(counts), out=offsets[1:])
    storage.remove_stale_temps(offsets_path(task.output))
    write_npy(offsets_path(task.output), offsets)
    with storage.atomic_write(task.output) as fh:
        header = {"descr": np.lib.format.dtype_to_descr(KEY_DTYPE), "fortran_order": False,
                  "shape": (int(offsets[-1]),)}  # fmt: skip
        np.lib.format.write_array_header_1_0(fh, header)
        for records in chunks:
            fh.write(records.tobytes())
    stats.documents_in = stats.kept = len(sig)


def partition_shard(task: ShardTask, stats: ShardStats, *, slot: int, minhash: MinhashConfig,
                    key_paths: list[str]) -> None:  # fmt: skip
    """One (band, partition): its records from every shard's key file → that slice's candidate pairs."""
    records, _ = load_partition(key_paths, slot, KEY_DTYPE)
    save_pairs(task.output, bucket_pairs(records["key"], records["doc"], minhash.window))
    stats.documents_in = stats.kept = len(records)


def run_lsh(key_tasks: list[ShardTask], band_tasks: list[ShardTask], *, minhash: MinhashConfig,
            sig_paths: list[str], common: dict[str, Any]) -> RunResult:  # fmt: skip
    """The LSH step: one task a band, or the keys pass and then one task per (band, partition)."""
    if not key_tasks:
        fns = {t.key: functools.partial(band_shard, band=b, minhash=minhash, sig_paths=sig_paths)
               for b, t in enumerate(band_tasks)}  # fmt: skip
        return run_shards(per_task(fns), band_tasks, title="minhash lsh", **common)
    partitions = len(band_tasks) // minhash.b
    rows = [npy_rows(path) for path in sig_paths]
    firsts = np.concatenate(([0], np.cumsum(rows))).tolist()
    fns = {t.key: functools.partial(key_shard, minhash=minhash, first=int(firsts[i]), partitions=partitions)
           for i, t in enumerate(key_tasks)}  # fmt: skip
    run_shards(per_task(fns), key_tasks, title="minhash lsh 1/2 keys", **common)
    key_paths = [t.output for t in key_tasks]
    fns = {t.key: functools.partial(partition_shard, slot=slot, minhash=minhash, key_paths=key_paths)
           for slot, t in enumerate(band_tasks)}  # fmt: skip
    return run_shards(per_task(fns), band_tasks, title="minhash lsh 2/2 bands", **common)
