"""`dolma-kit index TOKENS`: build the suffix-array index of a tokenized folder, beside it, resumably.

Layout (`<tokens>/index/`, one infini-gram shard per tokenized part, so a part is the unit of resume):
- `tokenized.<nnnnn>`: a relative symbolic link to `../part-<n>.npy`. infini-gram's suffix array points at
  byte offsets of a raw little-endian token file, which our part file already is: nothing is copied, and
  disk is the suffix array alone (4 bytes a token for parts under 2 GiB, 5 above).
- `table.<nnnnn>`: the suffix array (infini-gram's format: `ratio`-byte little-endian byte offsets, sorted by
  the suffix they start). Built by the wheel's Rust indexer in jobs of at most
  `memory_gb / SORT_BYTES_PER_BYTE / processes` bytes of tokens each (a job's sort was measured at ~9 bytes
  of memory a token byte: that is the build's memory bound), then merged and concatenated on disk.
- `offset.<nnnnn>`: uint64 byte offsets of the part's documents (the engine's document table).
- `token_counts.npy` (a name the engine does not read as its own "unigram" files): int64 count of every token id over the corpus (the rarity that ranks attributed spans).
- `<part>.done`: written once a shard is complete; a re-run skips those parts. Shard names are zero-padded
  because the engine orders shards by file name.
- `index.json`: written last. It records the sha256 of the tokens' `manifest.json`, so an index whose tokens
  changed is stale and every query says so (`store.TokenIndex.open`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dolma_kit.index.engine import TokenIndexError, engine_version, indexer, run_indexer
from dolma_kit.provenance import MANIFEST_NAME, ProvenanceError, TokenizedDir

FORMAT = "dolma-kit.index/1"
INDEX_DIR = "index"
INDEX_MANIFEST = "index.json"
#: memory of one sorting job per byte of its tokens: ~9 measured (3.6 GB for two 100 M-token jobs), so 10
SORT_BYTES_PER_BYTE = 10
#: infini-gram's overlap between make-part jobs: suffixes are compared on at most this many bytes at a cut
HACK_BYTES = 100_000


@dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """What `dolma-kit index` builds and with how much of the machine."""

    tokens: str
    """The tokenized folder (written by `dolma-kit tokenize`); the index goes to `<tokens>/index/`."""
    processes: int = 0
    """Parallel indexer jobs and merge threads (0: all cores)."""
    memory_gb: float = 4.0
    """Bound on the build's memory: a part larger than memory_gb / SORT_BYTES_PER_BYTE / processes is sorted
    in several jobs."""
    force: bool = False
    """Rebuild every shard, even those a previous run finished."""


@dataclass(slots=True)
class IndexSummary:
    """What a build did: parts indexed now and skipped as done, tokens, and the bytes the index takes."""

    index_dir: Path
    parts_built: int = 0
    parts_skipped: int = 0
    tokens: int = 0
    index_bytes: int = 0
    rebuilt_stale: bool = False
    per_part: list[dict[str, Any]] = field(default_factory=list)


def manifest_digest(tokens_dir: Path) -> str:
    """sha256 of the tokens' manifest.json: the index is valid for these exact bytes only."""
    return hashlib.sha256((tokens_dir / MANIFEST_NAME).read_bytes()).hexdigest()


def shard_name(i: int) -> str:
    return f"{i:05d}"


def pointer_ratio(data_bytes: int) -> int:
    """infini-gram's bytes per suffix-array entry: ceil(log2(size) / 8), computed as its indexer does."""
    return math.ceil(math.log2(max(data_bytes, 2)) / 8)


def open_tokens(tokens: str | Path) -> TokenizedDir:
    try:
        return TokenizedDir.open(tokens)
    except ProvenanceError as exc:
        raise TokenIndexError(str(exc)) from None


def build_index(cfg: IndexConfig) -> IndexSummary:
    """Index every part of `cfg.tokens` not yet indexed; write `index.json` last (see the module doc)."""
    tokenized = open_tokens(cfg.tokens)
    width = tokenized.dtype.itemsize
    indexer()  # the install line before any work
    out = tokenized.path / INDEX_DIR
    digest = manifest_digest(tokenized.path)
    summary = IndexSummary(index_dir=out)
    old = out / INDEX_MANIFEST
    stale = (
        old.is_file() and json.loads(old.read_text(encoding="utf-8")).get("tokens_manifest_sha256") != digest
    )
    if cfg.force or stale:
        summary.rebuilt_stale = stale and not cfg.force
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    old.unlink(missing_ok=True)  # an index is complete only once index.json is rewritten below
    processes = cfg.processes or os.cpu_count() or 1
    job_bytes = int(cfg.memory_gb * 2**30) // (SORT_BYTES_PER_BYTE * processes)
    unigram = np.zeros(max(tokenized.vocab_size, tokenized.eos_id + 1), dtype=np.int64)
    # parts are built `workers` at a time, each with its share of the processes for its sorting jobs
    todo = [i for i in range(len(tokenized.parts)) if not _is_done(out, tokenized.parts[i], digest)]
    workers = max(1, min(processes, len(todo)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        entries = list(
            pool.map(
                lambda i: _build_part(tokenized, i, out, digest, max(1, processes // workers), job_bytes),
                range(len(tokenized.parts)),
            )
        )
    parts = []
    for i, entry in enumerate(entries):
        if entry.pop("skipped"):
            summary.parts_skipped += 1
        else:
            summary.parts_built += 1
        counts = _token_counts(tokenized.tokens(i))
        if len(counts) > len(unigram):
            unigram = np.pad(unigram, (0, len(counts) - len(unigram)))
        unigram[: len(counts)] += counts
        parts.append(entry)
        summary.tokens += entry["tokens"]
        summary.index_bytes += entry["table_bytes"] + entry["offset_bytes"]
    _save(out / "token_counts.npy", unigram)
    summary.index_bytes += (out / "token_counts.npy").stat().st_size
    summary.per_part = parts
    manifest = {
        "format": FORMAT,
        "engine": f"infini-gram {engine_version()}",
        "tokens_manifest_sha256": digest,
        "dtype": tokenized.dtype.name,
        "token_width": width,
        "eos_id": tokenized.eos_id,
        "vocab_size": tokenized.vocab_size,
        "tokens": summary.tokens,
        "documents": int(tokenized.manifest.get("documents", 0)),
        "shards": parts,
    }
    tmp = out / f"{INDEX_MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out / INDEX_MANIFEST)
    return summary


def _token_counts(tokens: np.ndarray, chunk: int = 1 << 24) -> np.ndarray:
    """Count of each id in a memory-mapped part, a chunk at a time: `np.bincount` copies its input to int64,
    8 bytes a token (4 GiB for a 512 Mi-token part) when handed the whole part."""
    counts = np.zeros(1, np.int64)
    for s in range(0, len(tokens), chunk):
        c = np.bincount(np.asarray(tokens[s : s + chunk]))
        if len(c) > len(counts):
            counts = np.pad(counts, (0, len(c) - len(counts)))
        counts[: len(c)] += c
    return counts


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _is_done(out: Path, part: str, digest: str) -> bool:
    """The part's shard was completed from these tokens (its `.done` marker names their manifest)."""
    done = out / f"{part}.done"
    if not done.is_file():
        return False
    recorded = json.loads(done.read_text(encoding="utf-8"))
    table = out / f"table.{recorded['entry']['shard']}"
    return recorded.get("tokens_manifest_sha256") == digest and table.is_file()


def _build_part(
    tokenized: TokenizedDir, i: int, out: Path, digest: str, processes: int, job_bytes: int
) -> dict[str, Any]:
    """One part's shard (link, document offsets, suffix array); skipped when its `.done` says it is built
    from these tokens."""
    part = tokenized.parts[i]
    width = tokenized.dtype.itemsize
    n = tokenized.num_tokens(i)
    name = shard_name(i)
    data, table, offsets = out / f"tokenized.{name}", out / f"table.{name}", out / f"offset.{name}"
    done = out / f"{part}.done"
    entry = {"part": part, "shard": name, "tokens": n}
    if _is_done(out, part, digest):
        return {**json.loads(done.read_text(encoding="utf-8"))["entry"], "skipped": True}
    for stale in (data, table, offsets, done):
        stale.unlink(missing_ok=True)
    # the part's raw token file: `part-<n>.npy`, or a foreign file an adopted folder names (`tokenize-adopt`)
    os.symlink(os.path.join("..", tokenized.token_files[i]), data)
    starts = np.asarray(tokenized.document_starts(i), dtype=np.uint64) * np.uint64(width)
    starts.tofile(offsets)
    data_bytes = n * width
    ratio = pointer_ratio(data_bytes)
    if n:
        _suffix_array(data, table, data_bytes, ratio, width, processes, job_bytes, out / f"_work.{name}")
    else:
        table.write_bytes(b"")
    if table.stat().st_size != n * ratio:
        raise TokenIndexError(
            f"{table}: the indexer wrote {table.stat().st_size:,} bytes, expected {n * ratio:,}"
        )
    entry.update(ratio=ratio, table_bytes=n * ratio, offset_bytes=int(starts.nbytes))
    tmp = done.with_name(done.name + ".tmp")
    tmp.write_text(json.dumps({"tokens_manifest_sha256": digest, "entry": entry}) + "\n", encoding="utf-8")
    os.replace(tmp, done)
    return {**entry, "skipped": False}


def _suffix_array(
    data: Path,
    table: Path,
    data_bytes: int,
    ratio: int,
    width: int,
    processes: int,
    job_bytes: int,
    work: Path,
) -> None:
    """infini-gram's three steps: sort jobs of ≤ job_bytes (processes at a time), merge, concatenate."""
    shutil.rmtree(work, ignore_errors=True)
    parts_dir, merged_dir = work / "parts", work / "merged"
    parts_dir.mkdir(parents=True)
    merged_dir.mkdir()
    # as infini-gram cuts: jobs of ⌊size / jobs⌋ bytes, each reading HACK_BYTES past its end. Only the last job
    # may reach the end of the file (the merge keeps a job's suffixes before its overlap unless it does), so
    # every job is at least 2 · HACK_BYTES long; otherwise jobs hold ≤ job_bytes (the memory bound).
    jobs = max(1, min(-(-data_bytes // max(job_bytes, 1)), data_bytes // (2 * HACK_BYTES)))
    size = data_bytes // jobs
    size += (-size) % width  # jobs start on a token boundary
    ranges = [(i * size, min((i + 1) * size + HACK_BYTES, data_bytes)) for i in range(jobs)]
    common = {"data_file": data, "ratio": ratio, "token_width": width}
    with ThreadPoolExecutor(max_workers=processes) as pool:
        list(
            pool.map(
                lambda r: run_indexer(
                    "make-part", parts_dir=parts_dir, start_byte=r[0], end_byte=r[1], **common
                ),
                ranges,
            )
        )
    tmp = table.with_name(table.name + ".tmp")
    if jobs == 1:
        # one job's sorted part is the whole suffix array, byte for byte what merge + concat would write
        # (tested): skip them; merging is the slow step on repetitive text (long common prefixes)
        (only,) = list(parts_dir.iterdir())
        os.replace(only, tmp)
    else:
        run_indexer(
            "merge",
            parts_dir=parts_dir,
            merged_dir=merged_dir,
            num_threads=processes,
            hacksize=HACK_BYTES,
            **common,
        )
        # merge writes fewer files than threads on small data; concat must be told how many there are
        merged = len(list(merged_dir.iterdir()))
        run_indexer("concat", merged_dir=merged_dir, merged_file=tmp, num_threads=merged, **common)
    os.replace(tmp, table)
    shutil.rmtree(work, ignore_errors=True)
