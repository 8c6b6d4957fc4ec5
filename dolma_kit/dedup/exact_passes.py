"""The three per-shard functions of exact dedup (hash, resolve, attributes) and the names they share.

Each is an executor `ShardFn` (module-level, given its options with `functools.partial`), so every pass gets
parallelism, `.done` markers and resume from `run_shards`. The driver is `exact.dedup_exact`.
"""

from __future__ import annotations

import json
from array import array
from typing import Any

import numpy as np
import xxhash

from dolma_kit import storage
from dolma_kit.attributes import write_attribute_shard
from dolma_kit.dedup import exact_partition as part
from dolma_kit.dedup.normalize import normalize_text, normalize_url
from dolma_kit.documents import Document, DocumentReader, dumps
from dolma_kit.executor import ShardStats, ShardTask
from dolma_kit.text import paragraph_spans

PLAN_NAME = "plan.json"


def attribute_names(experiment: str, key: str) -> dict[str, str]:
    """The attribute names a run writes, by role: `<experiment>__exact_<key>__<name>`."""
    prefix = f"{experiment}__exact_{key}__"
    if key == "paragraphs":
        return {"spans": prefix + "duplicate_paragraph", "fraction": prefix + "duplicate_paragraph_fraction"}
    return {"duplicate": prefix + "duplicate", "group_size": prefix + "group_size"}


def count_names(key: str) -> tuple[str, ...]:
    """The per-shard counts the attributes pass keeps beside kept/removed, by key."""
    if key == "paragraphs":
        return ("documents_with_duplicate_paragraphs", "duplicate_paragraphs", "duplicate_chars")
    return ("duplicates", "documents_without_key") if key == "url" else ("duplicates",)


def hash_path(work: str, shard_key: str) -> str:
    """A shard's key records in the work dir (the offsets file sits beside it)."""
    return storage.join(work, "hash", shard_key + ".npy")


def resolve_key(partition: int) -> str:
    return f"part-{partition:05d}.npy"


def counts_path(work: str, shard_key: str) -> str:
    return storage.join(work, "counts", shard_key + ".json")


# --------------------------------------------------------------------------------------------- keys


def url_of(doc: Document, field: str) -> str | None:
    """The document's normalised URL, or None when it has none (`a.b` looks into nested metadata)."""
    value: Any = doc.metadata.get(field)
    if value is None and "." in field:
        value = doc.metadata
        for part_name in field.split("."):
            value = value.get(part_name) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value.strip():
        return None
    return normalize_url(value) or None


def _digest(key: str) -> bytes:
    return xxhash.xxh3_128_digest(key.encode("utf-8"))


# --------------------------------------------------------------------------------------------- pass 1: hash


def hash_shard(
    task: ShardTask,
    stats: ShardStats,
    *,
    key: str,
    url_field: str,
    min_paragraph_chars: int,
    partitions: int,
    skip_bad: bool,
) -> None:
    """Hash every key of one document shard into partitioned records (`exact_partition.write_partitioned`).

    Bad records are counted here but written to rejects only by the attributes pass, which reads the same
    records again (one rejects file per shard, as `tag` writes).
    """
    digests = bytearray()  # 16 bytes a key, big-endian (hi, lo)
    lines, starts, ends = array("I"), array("I"), array("I")

    reader = DocumentReader(task.input, on_bad=stats.reject_bad if skip_bad else None)
    for doc in reader:
        if key == "paragraphs":
            for start, end in paragraph_spans(doc.text):
                normalized = normalize_text(doc.text[start:end])
                if normalized and len(normalized) >= min_paragraph_chars:
                    digests += _digest(normalized)
                    lines.append(doc.line)
                    starts.append(start)
                    ends.append(end)
        else:
            if key == "id":  # unique within a source, as the Dolma format asks
                normalized: str | None = f"{doc.source}\0{doc.id}"
            else:
                normalized = url_of(doc, url_field) if key == "url" else normalize_text(doc.text)
            if normalized is not None:
                digests += _digest(normalized)
                lines.append(doc.line)
        stats.keep()
        stats.progress_bytes(reader.bytes_read)
    stats.progress_bytes(reader.bytes_read)

    hashes = np.frombuffer(bytes(digests), dtype=">u8").reshape(-1, 2)
    records = np.empty(len(lines), dtype=part.PARA_DTYPE if key == "paragraphs" else part.DOC_DTYPE)
    records["hi"], records["lo"] = hashes[:, 0], hashes[:, 1]
    records["line"] = np.frombuffer(lines, dtype=np.uint32)
    if key == "paragraphs":
        records["start"] = np.frombuffer(starts, dtype=np.uint32)
        records["end"] = np.frombuffer(ends, dtype=np.uint32)
    part.write_partitioned(task.output, records, partitions)


# --------------------------------------------------------------------------------------------- pass 2: resolve

_PLANS: dict[tuple[str, str], dict[str, Any]] = {}


def _plan(work: str, digest: str) -> dict[str, Any]:
    """The run's plan (shard order), loaded once per worker process."""
    cache_key = (work, digest)
    if cache_key not in _PLANS:
        plan = json.loads(storage.read_text(storage.join(work, PLAN_NAME)))
        plan["index"] = {key: i for i, key in enumerate(plan["shards"])}
        _PLANS[cache_key] = plan
    return _PLANS[cache_key]


def resolve_partition(
    task: ShardTask, stats: ShardStats, *, work: str, digest: str, paragraphs: bool
) -> None:
    """Resolve one partition across all shards; counts are keys here (in = first + later occurrences)."""
    plan = _plan(work, digest)
    partition = int(task.key[len("part-") : -len(".npy")])
    dtype = part.PARA_DTYPE if paragraphs else part.DOC_DTYPE
    hash_paths = [hash_path(work, key) for key in plan["shards"]]
    records, shards = part.load_partition(hash_paths, partition, dtype)
    resolved, duplicates = part.resolve(records, shards)
    part.write_resolved(task.output, resolved, len(hash_paths))
    stats.documents_in = len(records)
    stats.kept = len(records) - duplicates
    stats.removed = duplicates
    stats.removed_by = {"duplicate_key": duplicates} if duplicates else {}
    stats.progress_bytes(records.nbytes)


# --------------------------------------------------------------------------------------------- pass 3: attributes


def attribute_shard(
    task: ShardTask,
    stats: ShardStats,
    *,
    work: str,
    digest: str,
    experiment: str,
    key: str,
    url_field: str,
    skip_bad: bool,
) -> None:
    """Write one shard's attributes from its resolved rows; documents are joined on their line number."""
    plan = _plan(work, digest)
    resolve_paths = [storage.join(work, "resolve", resolve_key(p)) for p in range(plan["partitions"])]
    rows = part.shard_rows(resolve_paths, plan["index"][task.key])
    names = attribute_names(experiment, key)
    counts: dict[str, int] = {}
    if key == "paragraphs":
        spans: dict[int, list[list[float]]] = {}
        if rows is not None:
            for line, start, end in zip(
                rows["line"].tolist(), rows["start"].tolist(), rows["end"].tolist(), strict=True
            ):
                spans.setdefault(line, []).append([start, end, 1.0])
        counts = dict.fromkeys(count_names(key), 0)

        def attributes_of(doc: Document) -> dict[str, list[list[float]]]:
            n = len(doc.text)
            found = spans.get(doc.line)
            if not found:
                return {names["fraction"]: [[0, n, 0.0]]}
            chars = sum(end - start for start, end, _ in found)
            counts["documents_with_duplicate_paragraphs"] += 1
            counts["duplicate_paragraphs"] += len(found)
            counts["duplicate_chars"] += chars
            return {names["spans"]: found, names["fraction"]: [[0, n, round(chars / n, 6) if n else 0.0]]}

    else:
        groups: dict[int, tuple[int, int]] = {}
        if rows is not None:
            groups = dict(
                zip(
                    rows["line"].tolist(),
                    zip(rows["dup"].tolist(), rows["group_size"].tolist(), strict=True),
                    strict=True,
                )
            )
        counts = dict.fromkeys(count_names(key), 0)

        def attributes_of(doc: Document) -> dict[str, list[list[float]]]:
            n = len(doc.text)
            if key == "url" and url_of(doc, url_field) is None:
                counts["documents_without_key"] += 1
                return {names["duplicate"]: [[0, n, 0.0]]}
            dup, size = groups.get(doc.line, (0, 1))
            counts["duplicates"] += dup
            return {names["duplicate"]: [[0, n, float(dup)]], names["group_size"]: [[0, n, float(size)]]}

    def removal(attributes: dict[str, list[list[float]]]) -> str | None:
        # later occurrences are what `mix` will remove (paragraph dedup removes spans, not documents)
        if key != "paragraphs" and attributes[names["duplicate"]][0][2]:
            return f"exact_{key}_duplicate"
        return None

    write_attribute_shard(task, stats, attributes_of, skip_bad=skip_bad, removal=removal)
    storage.write_text(counts_path(work, task.key), dumps(counts) + "\n")
