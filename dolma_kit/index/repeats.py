"""The most repeated long spans of a corpus, per source: a duplicate signal that MinHash does not give.

MinHash finds *documents* that are near each other; a boilerplate paragraph, a license header or a scraped
footer shared by thousands of otherwise different documents never makes two documents similar enough. The
suffix array sees it directly: all occurrences of an n-gram are adjacent in suffix order, so one pass over
the array, comparing each suffix's first `length` tokens with the previous one's (by a 64-bit polynomial hash
of the window, computed in chunks), gives every repeated n-gram and its count without sorting anything.
Memory is bounded by the chunk (`chunk` suffixes at a time); windows that contain EOS are skipped (they span
two documents).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from dolma_kit.index.engine import TokenIndexError
from dolma_kit.index.store import TokenIndex

_BASE = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True, slots=True)
class Repeat:
    """One n-gram repeated in the corpus."""

    tokens: list[int]
    text: str | None
    count: int
    """Occurrences in the whole corpus."""
    documents: int
    """Distinct documents of `source` holding it."""
    source: str
    source_count: int
    """Occurrences in this source (this and `documents` are counted over the first `sample` occurrences in
    corpus order: exact when `count` ≤ `sample`)."""


def _window_hashes(tokens: np.ndarray, positions: np.ndarray, length: int, eos: int) -> np.ndarray:
    """Hash of tokens[p : p + length] for each p; 0 where the window runs off the part or holds EOS."""
    n = len(tokens)
    h = np.zeros(len(positions), dtype=np.uint64)
    bad = positions + length > n
    safe = np.where(bad, 0, positions)
    with np.errstate(over="ignore"):
        for k in range(length):
            t = np.asarray(tokens[np.minimum(safe + k, n - 1)], dtype=np.uint64)
            bad |= t == eos
            h = h * _BASE + t + np.uint64(1)
    h[bad] = 0
    return h


def top_repeats(
    index: TokenIndex, *, length: int = 32, top: int = 5, chunk: int = 1 << 20, sample: int = 1000
) -> dict[str, list[Repeat]]:
    """The `top` most frequent `length`-token spans of each source. Candidates are the spans seen at least twice
    within one part (a span repeated only across parts, once in each, is not one); their counts are exact."""
    if length < 1:
        raise TokenIndexError(f"--repeats must be at least 1 token, got {length}")
    counts: Counter[int] = Counter()
    where: dict[int, tuple[int, int]] = {}
    for shard, info in enumerate(index.shards):
        tokens = index.tokenized.tokens(shard)
        n = int(info["tokens"])
        prev, run, run_rank = 0, 0, 0  # the run of equal windows still open at the chunk's end
        for lo in range(0, n, chunk):
            h = _window_hashes(tokens, index.positions(shard, lo, min(n, lo + chunk)), length, index.eos_id)
            change = np.empty(len(h), dtype=bool)
            change[0] = int(h[0]) != prev
            change[1:] = h[1:] != h[:-1]
            starts = np.flatnonzero(change)
            if not len(starts):
                run += len(h)
                continue
            _add(counts, where, prev, run + int(starts[0]), shard, run_rank)
            keys, lengths = h[starts[:-1]], np.diff(starts)
            sel = (keys != 0) & (lengths >= 2)
            for key, size, rank in zip(
                keys[sel].tolist(), lengths[sel].tolist(), starts[:-1][sel].tolist(), strict=True
            ):
                _add(counts, where, key, size, shard, lo + rank)
            prev, run, run_rank = int(h[starts[-1]]), len(h) - int(starts[-1]), lo + int(starts[-1])
        _add(counts, where, prev, run, shard, run_rank)
    by_source: dict[str, list[Repeat]] = defaultdict(list)
    for key, _ in counts.most_common(top * 10 * max(1, len(index.tokenized.sources))):
        shard, rank = where[key]
        p = int(index.positions(shard, rank, rank + 1)[0])
        ids = [int(t) for t in index.tokenized.tokens(shard)[p : p + length]]
        total, found = index.find(ids, limit=sample)
        per_source = Counter(o.source for o in found)
        docs: dict[str, set[str]] = defaultdict(set)
        for o in found:
            docs[o.source].add(o.id)
        for source, n_source in per_source.items():
            by_source[source].append(
                Repeat(ids, index.decode(ids), total, len(docs[source]), source, n_source)
            )
    return {
        source: sorted(found, key=lambda r: (-r.source_count, r.tokens))[:top]
        for source, found in sorted(by_source.items())
    }


def _add(
    counts: Counter[int], where: dict[int, tuple[int, int]], key: int, run: int, shard: int, rank: int
) -> None:
    """Count a run of `run` equal windows within one shard: candidates are those seen at least twice there
    (hash 0 marks no window)."""
    if key != 0 and run >= 2:
        counts[key] += run
        where.setdefault(key, (shard, rank))


def report_section(tokens: str, *, length: int = 32, top: int = 5) -> dict[str, object] | None:
    """The pipeline report's "repeated spans" section for a tokenized folder, as JSON-ready data; None when the
    folder has no up-to-date index or the engine is not installed (the report then leaves the section out)."""
    from pathlib import Path

    from dolma_kit.index.build import INDEX_DIR, INDEX_MANIFEST

    if not (Path(tokens) / INDEX_DIR / INDEX_MANIFEST).is_file():
        return None
    try:
        index = TokenIndex.open(tokens)
        found = top_repeats(index, length=length, top=top)
    except TokenIndexError:
        return None
    return {
        "length": length,
        "sources": {
            source: [
                {"text": r.text, "in_source": r.source_count, "documents": r.documents, "in_corpus": r.count}
                for r in rows
            ]
            for source, rows in found.items()
        },
    }
