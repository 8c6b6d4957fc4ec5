"""The disk side of exact dedup: key records partitioned by hash, and the per-partition resolution.

Exact dedup must not hold every key of a corpus in memory, so keys take two hops through disk:

1. Per document shard, one `.npy` of key records sorted by partition (`hash_hi % P`), plus `.offsets.npy`
   (P + 1 int64) saying where each partition's rows start. One file per shard, not one per (shard,
   partition): 10,000 shards × 256 partitions would otherwise be 2.5 million files or objects.
2. Per partition, the slices of that partition from every shard are loaded (memory ≈ corpus keys / P), sorted
   by (hash, shard, line, start) and every occurrence after the first is marked. What comes out is sorted by
   (shard, line, start), again with an offsets file (S + 1) so the attribute pass reads one shard's rows.

Slices are read with a seek and one read (`read_rows`), so the same code works on local disks and on object
stores (ranged GETs); nothing here memory-maps.
"""

from __future__ import annotations

import numpy as np

from dolma_kit import storage

# A document-level key (url, text): 128-bit hash and the document's line. The shard is implied by the file.
DOC_DTYPE = np.dtype([("hi", "<u8"), ("lo", "<u8"), ("line", "<u4")])
# A paragraph key: also the paragraph's [start, end) in code points.
PARA_DTYPE = np.dtype([("hi", "<u8"), ("lo", "<u8"), ("line", "<u4"), ("start", "<u4"), ("end", "<u4")])
# Resolved, document level: every member of a group of two or more (the first has dup = 0).
DOC_GROUP_DTYPE = np.dtype([("shard", "<u4"), ("line", "<u4"), ("dup", "u1"), ("group_size", "<u4")])
# Resolved, paragraph level: only the duplicates (later occurrences).
PARA_DUP_DTYPE = np.dtype([("shard", "<u4"), ("line", "<u4"), ("start", "<u4"), ("end", "<u4")])

_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def offsets_path(path: str) -> str:
    """The offsets file that belongs to a records file: `x.npy` → `x.offsets.npy`."""
    assert path.endswith(".npy"), path
    return path[: -len(".npy")] + ".offsets.npy"


def write_npy(path: str, array: np.ndarray) -> None:
    """Write one array as `.npy`, atomically (a killed writer leaves no file that looks complete)."""
    with storage.atomic_write(path) as fh:
        np.save(fh, array, allow_pickle=False)


def read_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a 1-d `.npy` file: one seek and one read, local or remote."""
    with storage.open_raw(path) as fh:
        version = np.lib.format.read_magic(fh)
        shape, _, dtype = _HEADER_READERS[version](fh)
        assert 0 <= start <= stop <= shape[0], (path, start, stop, shape)
        if stop == start:
            return np.empty(0, dtype=dtype)
        fh.seek(fh.tell() + start * dtype.itemsize)
        data = fh.read((stop - start) * dtype.itemsize)
    if len(data) != (stop - start) * dtype.itemsize:
        raise OSError(f"{path}: file is shorter than its header says (truncated?)")
    return np.frombuffer(data, dtype=dtype)


def write_partitioned(path: str, records: np.ndarray, partitions: int) -> None:
    """Write a shard's key records sorted by partition (stable: document order kept within a partition).

    The offsets file is written first and the records file last, so the records file (the task's output, that
    the executor checks) never exists without its offsets.
    """
    part = records["hi"] % np.uint64(partitions)
    order = np.argsort(part, kind="stable")
    counts = np.bincount(part.astype(np.int64), minlength=partitions)
    offsets = np.zeros(partitions + 1, dtype="<i8")
    np.cumsum(counts, out=offsets[1:])
    storage.remove_stale_temps(offsets_path(path))
    write_npy(offsets_path(path), offsets)
    write_npy(path, records[order])


def load_partition(hash_paths: list[str], partition: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """One partition's records from every shard, in shard order, and each record's shard index."""
    chunks, shards = [], []
    for shard, path in enumerate(hash_paths):
        lo, hi = read_rows(offsets_path(path), partition, partition + 2)
        rows = read_rows(path, int(lo), int(hi))
        if len(rows):
            chunks.append(rows)
            shards.append(np.full(len(rows), shard, dtype="<u4"))
    if not chunks:
        return np.empty(0, dtype=dtype), np.empty(0, dtype="<u4")
    return np.concatenate(chunks), np.concatenate(shards)


def resolve(records: np.ndarray, shards: np.ndarray) -> tuple[np.ndarray, int]:
    """Mark every occurrence of a key after the first in (shard, line, start) order; return (out, duplicates).

    Document keys: the members of every group of two or more, with `dup` and `group_size`. Paragraph keys: the
    duplicates only. Either way sorted by (shard, line, start), ready to be sliced per shard.
    """
    paragraphs = "start" in (records.dtype.names or ())
    n = len(records)
    if paragraphs:
        order = np.lexsort((records["start"], records["line"], shards, records["lo"], records["hi"]))
    else:
        order = np.lexsort((records["line"], shards, records["lo"], records["hi"]))
    hi, lo = records["hi"][order], records["lo"][order]
    first = np.ones(n, dtype=bool)
    first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    duplicates = int(n - first.sum())
    if paragraphs:
        keep = order[~first]
        out = np.empty(len(keep), dtype=PARA_DUP_DTYPE)
        out["start"] = records["start"][keep]
        out["end"] = records["end"][keep]
    else:
        group = np.cumsum(first) - 1
        size = np.bincount(group)[group] if n else np.empty(0, dtype=np.int64)
        in_group = size >= 2
        keep = order[in_group]
        out = np.empty(len(keep), dtype=DOC_GROUP_DTYPE)
        out["dup"] = ~first[in_group]
        out["group_size"] = size[in_group]
    out["shard"] = shards[keep]
    out["line"] = records["line"][keep]
    if paragraphs:
        out = out[np.lexsort((out["start"], out["line"], out["shard"]))]
    else:
        out = out[np.lexsort((out["line"], out["shard"]))]
    return out, duplicates


def write_resolved(path: str, resolved: np.ndarray, shards: int) -> None:
    """Write a partition's resolution with per-shard offsets (S + 1), offsets first (see `write_partitioned`)."""
    offsets = np.searchsorted(resolved["shard"], np.arange(shards + 1), side="left").astype("<i8")
    storage.remove_stale_temps(offsets_path(path))
    write_npy(offsets_path(path), offsets)
    write_npy(path, resolved)


def shard_rows(resolve_paths: list[str], shard: int) -> np.ndarray | None:
    """One shard's resolved rows from every partition, sorted by (line, start); None when it has none."""
    chunks = []
    for path in resolve_paths:
        lo, hi = read_rows(offsets_path(path), shard, shard + 2)
        if hi > lo:
            chunks.append(read_rows(path, int(lo), int(hi)))
    if not chunks:
        return None
    rows = np.concatenate(chunks)
    if "start" in (rows.dtype.names or ()):
        return rows[np.lexsort((rows["start"], rows["line"]))]
    return rows[np.argsort(rows["line"], kind="stable")]
