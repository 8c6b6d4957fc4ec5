"""The three per-shard functions of exact dedup (hash, resolve, attributes) and the names they share.

Each is an executor `ShardFn` (module-level, given its options with `functools.partial`), so every pass gets
parallelism, `.done` markers and resume from `run_shards`. The driver is `exact.dedup_exact`.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np
import xxhash

from dolma_kit import storage
from dolma_kit.attributes import write_attribute_shard
from dolma_kit.dedup import dolma as dolma_rules
from dolma_kit.dedup import exact_partition as part
from dolma_kit.dedup.dolma import DolmaDedupe
from dolma_kit.dedup.normalize import normalize_text, normalize_url, normalized_pieces
from dolma_kit.documents import Document, DocumentReader, dumps
from dolma_kit.executor import ShardStats, ShardTask
from dolma_kit.text import paragraph_spans

PLAN_NAME = "plan.json"


def attribute_names(experiment: str, key: str, dolma: DolmaDedupe | None = None) -> dict[str, str]:
    """The attribute names a run writes, by role: `<experiment>__exact_<key>__<name>`; with Dolma's semantics
    (`key="dolma"`) its one attribute, named as Dolma names it (`bff_duplicate_url`, unprefixed)."""
    if key == "dolma":
        assert dolma is not None
        return {"dolma": dolma.attribute_name}
    prefix = f"{experiment}__exact_{key}__"
    if key == "paragraphs":
        return {"spans": prefix + "duplicate_paragraph", "fraction": prefix + "duplicate_paragraph_fraction"}
    return {"duplicate": prefix + "duplicate", "group_size": prefix + "group_size"}


def spans(key: str, dolma: DolmaDedupe | None = None) -> bool:
    """Whether the keys are paragraphs (or their n-grams), marked as spans, rather than whole documents."""
    return key == "paragraphs" or (key == "dolma" and dolma is not None and dolma.paragraphs)


def count_names(key: str, dolma: DolmaDedupe | None = None) -> tuple[str, ...]:
    """The per-shard counts the attributes pass keeps beside kept/removed, by key."""
    if key == "paragraphs":  # Dolma's paragraph dedup has its own minimums (`dolma.py`), counted there
        return (
            "documents_with_duplicate_paragraphs",
            "duplicate_paragraphs",
            "duplicate_chars",
            "paragraphs_under_minimum",
        )
    if spans(key, dolma):
        return ("documents_with_duplicate_paragraphs", "duplicate_paragraphs", "duplicate_chars")
    if key == "dolma":
        return ("duplicates", "documents_without_key", "documents_not_checked")
    return ("duplicates", "documents_without_key") if key == "url" else ("duplicates",)


def hash_path(work: str, shard_key: str) -> str:
    """A shard's key records in the work dir (the offsets file sits beside it)."""
    return storage.join(work, "hash", shard_key + ".npy")


def resolve_key(partition: int) -> str:
    return f"part-{partition:05d}.npy"


def counts_path(work: str, shard_key: str) -> str:
    return storage.join(work, "counts", shard_key + ".json")


def under_minimum_path(work: str, shard_key: str) -> str:
    """The hash pass's count of a shard's paragraphs under the minimum, which the attributes pass reports."""
    return storage.join(work, "counts", shard_key + ".under_minimum.json")


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


def text_digest(text: str) -> bytes:
    """`_digest(normalize_text(text))`, hashed piece by piece so that a long document's normalised text and
    its UTF-8 bytes are never held whole (texts that normalise to nothing share the empty string's digest)."""
    hasher = xxhash.xxh3_128()
    for i, piece in enumerate(normalized_pieces(text)):
        if i:
            hasher.update(b" ")
        hasher.update(piece.encode("utf-8"))
    return hasher.digest()


# --------------------------------------------------------------------------------------------- pass 1: hash


def hash_shard(
    task: ShardTask,
    stats: ShardStats,
    *,
    key: str,
    url_field: str,
    min_paragraph_chars: int,
    partitions: int,
    min_paragraph_words: int,
    work: str,
    skip_bad: bool,
    dolma: DolmaDedupe | None = None,
) -> None:
    """Hash every key of one document shard into partitioned records (`exact_partition.write_partitioned`).

    Bad records are counted here but written to rejects only by the attributes pass, which reads the same
    records again (one rejects file per shard, as `tag` writes). Paragraphs under the minimum (chars or
    words) are counted into `under_minimum_path(work, …)` for the summary, so a skip is never silent.
    """
    under_minimum = 0
    digests = bytearray()  # 16 bytes a key, big-endian (hi, lo)
    lines, starts, ends = array("I"), array("I"), array("I")

    names = dolma_rules.json_path(dolma.documents_key) if dolma and dolma.documents_key else ()
    doc = None
    reader = DocumentReader(task.input, on_bad=stats.reject_bad if skip_bad else None)
    for doc in reader:
        if dolma is not None and dolma.paragraphs:  # every key in Dolma's check order: (seq, paragraph)
            seq = 0
            for index, paragraph in enumerate(dolma_rules.plan_paragraphs(doc.text, dolma)):
                for paragraph_key in paragraph.keys:
                    digests += paragraph_key
                    lines.append(doc.line)
                    starts.append(seq)
                    ends.append(index)
                    seq += 1
        elif dolma is not None:
            what, value = dolma_rules.check_document(doc, dolma, names)
            if what == "check":
                assert value is not None
                digests += dolma_rules.digest((value,))
                lines.append(doc.line)
        elif key == "paragraphs":
            for start, end in paragraph_spans(doc.text):
                normalized = normalize_text(doc.text[start:end])
                if not normalized:
                    continue
                if len(normalized) < min_paragraph_chars or normalized.count(" ") + 1 < min_paragraph_words:
                    under_minimum += 1
                    continue
                digests += _digest(normalized)
                lines.append(doc.line)
                starts.append(start)
                ends.append(end)
        elif key == "text":
            digests += text_digest(doc.text)
            lines.append(doc.line)
        else:
            # ids are unique within a source, as the Dolma format asks
            normalized = f"{doc.source}\0{doc.id}" if key == "id" else url_of(doc, url_field)
            if normalized is not None:
                digests += _digest(normalized)
                lines.append(doc.line)
        stats.keep()
        stats.progress_bytes(reader.bytes_read)
    stats.progress_bytes(reader.bytes_read)
    del reader, doc  # the last document (one long text can be most of the shard) is not needed any more
    if key == "paragraphs" and dolma is None:
        shard_key = task.key.removesuffix(".npy")
        storage.write_text(
            under_minimum_path(work, shard_key), dumps({"paragraphs_under_minimum": under_minimum})
        )

    paragraphs = spans(key, dolma)
    records = np.empty(len(lines), dtype=part.PARA_DTYPE if paragraphs else part.DOC_DTYPE)
    hashes = np.frombuffer(digests, dtype=">u8").reshape(-1, 2)  # a view: the 16 bytes a key are not copied
    records["hi"], records["lo"] = hashes[:, 0], hashes[:, 1]
    del hashes, digests
    records["line"] = np.frombuffer(lines, dtype=np.uint32)
    if paragraphs:
        records["start"] = np.frombuffer(starts, dtype=np.uint32)
        records["end"] = np.frombuffer(ends, dtype=np.uint32)
    del (
        lines,
        starts,
        ends,
    )  # what stays is the records alone (28 bytes a paragraph key) while they are sorted
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
    dolma: DolmaDedupe | None = None,
) -> None:
    """Write one shard's attributes from its resolved rows; documents are joined on their line number."""
    plan = _plan(work, digest)
    resolve_paths = [storage.join(work, "resolve", resolve_key(p)) for p in range(plan["partitions"])]
    shard = plan["index"][task.key]
    names = attribute_names(experiment, key, dolma)
    counts: dict[str, int] = dict.fromkeys(count_names(key, dolma), 0)
    if dolma is not None:
        if dolma.paragraphs:
            attributes_of = _dolma_paragraph_attributes(_duplicate_keys(resolve_paths, shard), dolma, counts)
        else:
            attributes_of = _dolma_document_attributes(part.shard_rows(resolve_paths, shard), dolma, counts)

        def removal(attributes: dict[str, list[list[float]]]) -> str | None:
            if dolma.paragraphs or not attributes.get(dolma.attribute_name):
                return None
            return "exact_dolma_duplicate"

        write_attribute_shard(task, stats, attributes_of, skip_bad=skip_bad, removal=removal)
        storage.write_text(counts_path(work, task.key), dumps(counts) + "\n")
        return
    rows = part.shard_rows(resolve_paths, shard)
    if key == "paragraphs":
        spans: dict[int, list[list[float]]] = {}
        if rows is not None:
            for line, start, end in zip(
                rows["line"].tolist(), rows["start"].tolist(), rows["end"].tolist(), strict=True
            ):
                spans.setdefault(line, []).append([start, end, 1.0])
        counts = dict.fromkeys(count_names(key), 0)
        skipped = under_minimum_path(work, task.key)
        if storage.exists(skipped):
            counts["paragraphs_under_minimum"] = json.loads(storage.read_text(skipped))[
                "paragraphs_under_minimum"
            ]

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


def _duplicate_keys(resolve_paths: list[str], shard: int) -> tuple[np.ndarray, np.ndarray]:
    """A shard's duplicate paragraph keys as (line, check order) sorted by line: only the two columns are
    kept from each partition's rows, so one long document's millions of n-gram keys cost 8 bytes each."""
    lines, seqs = [], []
    for path in resolve_paths:
        lo, hi = part.read_rows(part.offsets_path(path), shard, shard + 2)
        if hi > lo:
            rows = part.read_rows(path, int(lo), int(hi))
            lines.append(rows["line"].copy())
            seqs.append(rows["start"].copy())
            del rows
    if not lines:
        return np.empty(0, dtype="<u4"), np.empty(0, dtype="<u4")
    line, seq = np.concatenate(lines), np.concatenate(seqs)
    del lines, seqs
    order = np.argsort(line, kind="stable")
    return line[order], seq[order]


def _dolma_paragraph_attributes(
    duplicates: tuple[np.ndarray, np.ndarray], dolma: DolmaDedupe, counts: dict[str, int]
) -> Callable[[Document], dict[str, list[list[float]]]]:
    """`attributes_of` for Dolma's paragraph dedup: the spans `dolma dedupe` writes (see `dolma.py`), from
    the shard's duplicate keys (their line and their check order inside the document)."""
    name = dolma.attribute_name
    dup_lines, dup_seqs = duplicates

    def paragraph_attributes(doc: Document) -> dict[str, list[list[float]]]:
        if not doc.text:
            return {}  # Dolma writes nothing for an empty text
        lo, hi = np.searchsorted(dup_lines, [doc.line, doc.line + 1])
        mask = np.zeros(int(dup_seqs[lo:hi].max()) + 1 if hi > lo else 0, dtype=bool)
        mask[dup_seqs[lo:hi]] = True
        found: list[Any] = []
        seq = 0
        for paragraph in dolma_rules.plan_paragraphs(doc.text, dolma):
            n = len(paragraph.keys)
            answers = mask[seq : seq + n].tolist()
            answers += [False] * (n - len(answers))
            seq += n
            value = dolma_rules.paragraph_value(paragraph, answers, dolma)
            if value is not None:
                found.append(tuple(value))  # a tuple is 16 bytes less than a list; JSON writes both alike
        chars = marked = 0
        for start, end, score in found:
            if score > 0:
                marked += 1
                chars += min(end, len(doc.text)) - start
        if marked:
            counts["documents_with_duplicate_paragraphs"] += 1
            counts["duplicate_paragraphs"] += marked
            counts["duplicate_chars"] += int(chars)
        return {name: found}

    return paragraph_attributes


def _dolma_document_attributes(
    rows: np.ndarray | None, dolma: DolmaDedupe, counts: dict[str, int]
) -> Callable[[Document], dict[str, list[list[float]]]]:
    """`attributes_of` for Dolma's document dedup, from the shard's resolved rows (their `dup` flags)."""
    name = dolma.attribute_name
    names = dolma_rules.json_path(dolma.documents_key or "")
    duplicate_lines: set[int] = set()
    if rows is not None:
        duplicate_lines = {
            line for line, dup in zip(rows["line"].tolist(), rows["dup"].tolist(), strict=True) if dup
        }

    def document_attributes(doc: Document) -> dict[str, list[list[float]]]:
        what, value = dolma_rules.check_document(doc, dolma, names)
        if what == "none":
            missing = dolma_rules.document_key(doc, names) is None
            counts["documents_without_key" if missing else "documents_not_checked"] += 1
            return {}
        if what == "skip":
            counts["documents_not_checked"] += 1
            return {name: []}
        assert value is not None
        if doc.line in duplicate_lines:
            counts["duplicates"] += 1
            return {name: dolma_rules.document_value(doc, value, dolma)}
        return {}

    return document_attributes
