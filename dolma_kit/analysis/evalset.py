"""The evaluation n-gram set that `decontaminate` looks documents up in: sorted uint64 hashes, built once.

Evaluation texts are normalised as dedup normalises (`dedup.normalize.normalize_text`: NFKC, case-folded,
punctuation removed, digits → 0), so a leak survives changes of case, punctuation and spacing. A text of at
least n words contributes every word n-gram; a text of `min_words` ≤ w < n words contributes one gram of all
its w words (documents are then also hashed in w-grams, so the short text is found inside them); a text of
fewer than `min_words` words is skipped and counted (a two-word answer would match countless documents).
Hashes are `dedup.minhash.shingle_hashes(..., full=True)`: 64-bit, depending only on the gram's bytes.

Documents are normalised the same way, paragraph by paragraph (`normalize_paragraphs`; a long document a piece
at a time, `normalized_pieces`), so that a matched gram maps back to its paragraphs.

Memory: 8 bytes per distinct gram for the hashes, plus 2 for the index of the first evaluation file holding it
(so the report can name the leaked benchmark). Workers memory-map the two arrays from the work folder, so
processes share one copy through the page cache.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dolma_kit import storage
from dolma_kit.dedup.minhash import shingle_hashes
from dolma_kit.dedup.normalize import normalization_table, normalize_text
from dolma_kit.documents import compression_of, iter_raw_lines, parse_json_line
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.text import paragraph_spans

_BATCH_CHARS = 1 << 20


def _field(obj: Any, path: str) -> Any:
    value = obj.get(path) if isinstance(obj, dict) else None
    if value is None and "." in path:
        value = obj
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    return value


def iter_eval_texts(path: str, field: str) -> Iterator[str]:
    """The evaluation texts of one file: JSON Lines (`field`), parquet (column `field`), or plain text.

    Plain text (`.txt`, `.txt.gz`): one evaluation text per block of lines separated by a blank line (a file
    without blank lines is one text).
    """
    name = path.lower()
    if name.endswith((".txt", ".txt.gz")):
        raw = storage.open_raw(path)
        with raw:
            data = gzip.decompress(raw.read()) if name.endswith(".gz") else raw.read()
        block: list[str] = []
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                block.append(line)
            elif block:
                yield "\n".join(block)
                block = []
        if block:
            yield "\n".join(block)
        return
    if compression_of(path) == "parquet":
        import pyarrow.parquet as pq

        with storage.open_raw(path) as raw:
            pf = pq.ParquetFile(raw)
            if field not in pf.schema_arrow.names:
                raise DolmaKitError(f"{path}: no column {field!r}; pick the text column with --eval-field")
            for batch in pf.iter_batches(batch_size=4096, columns=[field]):
                yield from (t for t in batch.column(0).to_pylist() if isinstance(t, str))
        return
    try:
        for line_no, raw_line in iter_raw_lines(path):
            value = _field(parse_json_line(path, line_no, raw_line), field)
            if not isinstance(value, str):
                raise DolmaKitError(
                    f"{path}:{line_no}: no string field {field!r}; pick the text field with --eval-field"
                )
            yield value
    except (
        BadRecordError
    ) as exc:  # its message suggests --skip-bad, which is for documents, not evaluation data
        where = f"{exc.path}:{exc.line}" if exc.line else exc.path
        raise DolmaKitError(
            f"{where}: {exc.reason} (evaluation files: JSON Lines, parquet or .txt)"
        ) from None


@dataclass(slots=True)
class EvalSet:
    """Sorted unique gram hashes, the first evaluation file of each, and which gram lengths occur."""

    hashes: np.ndarray
    """uint64 [G], sorted, unique."""
    files: np.ndarray
    """uint16 [G]: index into `paths` of the first file holding the gram."""
    lengths: list[int]
    """Gram lengths in words: n, and each short-text length that occurs (descending)."""
    paths: list[str]
    per_file: list[dict[str, int]]
    """Per file: texts, texts_skipped_short, grams (with repeats)."""
    _bitmap: np.ndarray | None = None
    _bits: int = 0

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hit mask, index into `hashes`/`files` of each hit's gram) for query hashes.

        Almost every document gram misses, and a binary search per gram costs ~1 µs (a cache miss a step), so
        a bitmap over the hashes' top bits (8 slots per evaluation gram, built on first use, 1 bit each)
        rejects ~88% of misses with one gather; only the rest are searched.
        """
        if len(self.hashes) == 0:
            return np.zeros(len(hashes), dtype=bool), np.zeros(0, dtype=np.int64)
        if self._bitmap is None:
            self._bits = max(10, int(np.ceil(np.log2(len(self.hashes)))) + 3)
            slots = np.zeros(1 << self._bits, dtype=bool)
            slots[np.asarray(self.hashes) >> np.uint64(64 - self._bits)] = True
            self._bitmap = np.packbits(slots, bitorder="little")
        slot = hashes >> np.uint64(64 - self._bits)
        maybe = np.flatnonzero(
            (self._bitmap[slot >> np.uint64(3)] >> (slot & np.uint64(7)).astype(np.uint8)) & 1
        )
        idx = np.searchsorted(self.hashes, hashes[maybe])
        np.minimum(idx, len(self.hashes) - 1, out=idx)
        found = self.hashes[idx] == hashes[maybe]
        hit = np.zeros(len(hashes), dtype=bool)
        hit[maybe[found]] = True
        return hit, idx[found]

    def digest(self) -> str:
        h = hashlib.sha256(np.ascontiguousarray(self.hashes).tobytes())
        h.update(json.dumps(self.lengths).encode())
        return h.hexdigest()[:16]

    def save(self, folder: str) -> None:
        for name, array in (("hashes", self.hashes), ("files", self.files)):
            with storage.atomic_write(storage.join(folder, f"{name}.npy")) as fh:
                np.save(fh, array)
        meta = {"lengths": self.lengths, "paths": self.paths, "per_file": self.per_file}
        storage.write_text(storage.join(folder, "eval.json"), json.dumps(meta, indent=1) + "\n")

    @classmethod
    def load(cls, folder: str) -> EvalSet:
        """Memory-maps the arrays of a local folder (remote folders are read into memory)."""
        meta = json.loads(storage.read_text(storage.join(folder, "eval.json")))
        arrays = []
        for name in ("hashes", "files"):
            path = storage.join(folder, f"{name}.npy")
            if storage.is_remote(path):
                import io

                with storage.open_raw(path) as fh:
                    arrays.append(np.load(io.BytesIO(fh.read())))
            else:
                arrays.append(np.load(path, mmap_mode="r"))
        return cls(arrays[0], arrays[1], meta["lengths"], meta["paths"], meta["per_file"])


def _batch_grams(
    norms: list[str], ngram: int, min_words: int, stats: dict[str, int], lengths: set[int]
) -> np.ndarray:
    """Gram hashes of a batch of normalised texts: every n-gram of texts of ≥ n words, and the one all-words
    gram of texts with `min_words` ≤ w < n words (their lengths go into `lengths`); counts into `stats`."""
    words = np.array([len(t.split()) for t in norms], dtype=np.int64)
    stats["texts_skipped_short"] += int(np.sum(words < min_words))
    lengths.update(int(w) for w in np.unique(words[(words >= min_words) & (words < ngram)]))
    h, counts = shingle_hashes(norms, ngram, full=True)
    grams = h[np.repeat(words >= min_words, counts)]
    stats["grams"] += len(grams)
    return grams


def build_eval_set(paths: list[str], *, field: str, ngram: int, min_words: int) -> EvalSet:
    """Read every evaluation file and hash its grams (see the module docstring)."""
    if len(paths) > np.iinfo(np.uint16).max:
        raise DolmaKitError(f"{len(paths):,} evaluation files: at most 65,535")
    parts: list[np.ndarray] = []
    file_parts: list[np.ndarray] = []
    lengths = {ngram}
    per_file = []
    for index, path in enumerate(paths):
        stats = {"texts": 0, "texts_skipped_short": 0, "grams": 0}
        norms: list[str] = []
        size = 0
        for text in iter_eval_texts(path, field):
            stats["texts"] += 1
            norms.append(normalize_text(text))
            size += len(text)
            if size >= _BATCH_CHARS:
                parts.append(_batch_grams(norms, ngram, min_words, stats, lengths))
                norms, size = [], 0
        if norms:
            parts.append(_batch_grams(norms, ngram, min_words, stats, lengths))
        file_parts.append(np.full(stats["grams"], index, dtype=np.uint16))
        per_file.append(stats)
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    files = np.concatenate(file_parts) if file_parts else np.zeros(0, dtype=np.uint16)
    order = np.argsort(hashes, kind="stable")  # stable: the first file of a repeated gram comes first
    hashes, files = hashes[order], files[order]
    first = np.ones(len(hashes), dtype=bool)
    first[1:] = hashes[1:] != hashes[:-1]
    return EvalSet(hashes[first], files[first], sorted(lengths, reverse=True), list(paths), per_file)


# --------------------------------------------------------------------------------------------- documents


def normalize_paragraphs(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """`normalize_text` of each paragraph, computed on the whole text at once (a third faster than per paragraph).

    NFKC, case folding and the translation table never create or remove a newline, and nothing composes across
    one, so normalising the whole text and splitting at newlines gives each line's normalisation; a paragraph
    is one whole line. Should a text ever break that (the line counts differ), each paragraph is normalised
    on its own.
    """
    lines = unicodedata.normalize("NFKC", text).casefold().translate(normalization_table()).split("\n")
    if len(lines) != text.count("\n") + 1:
        return [normalize_text(text[s:e]) for s, e in spans]
    out = []
    line, pos = 0, 0
    for start, _ in spans:
        line += text.count("\n", pos, start)
        pos = start
        out.append(" ".join(lines[line].split()))
    return out


def normalized_pieces(text: str, max_chars: int) -> Iterator[tuple[list[str], list[tuple[int, int]]]]:
    """A long text's paragraphs, normalised a piece of about `max_chars` characters at a time: per piece, the
    non-empty normalised texts of its paragraphs (or parts of one) and the span of each one's whole paragraph.

    Pieces end just after a newline or, inside a longer line, just after a space: as `normalize_paragraphs`
    relies on for newlines and `normalize_text` on long texts, nothing composes across either and the cut is
    whitespace anyway, so the parts of a paragraph, joined by one space, normalise as the whole paragraph, and
    the words of all pieces, in order, are those the whole text gives (`str.casefold` of a 50 MB text would
    take 600 MB). A whitespace-only part adds no words (no whitespace character normalises to a word).
    """
    line_start, line_end = 0, -1  # the line the next piece begins in; the end of a line cut inside
    for start, stop in _pieces(text, max_chars):
        piece = text[start:stop]
        spans = paragraph_spans(piece)
        norms, whole = [], []
        for (s, e), norm in zip(spans, normalize_paragraphs(piece, spans), strict=True):
            if not norm:
                continue
            if e == len(piece) and line_end < stop:  # the line runs on past the piece (or ends the text)
                line_end = text.find("\n", stop) if stop < len(text) else -1
                line_end = len(text) if line_end == -1 else line_end
            norms.append(norm)
            whole.append((line_start if s == 0 else start + s, line_end if e == len(piece) else start + e))
        if piece.endswith("\n"):
            line_start = stop
        if norms:
            yield norms, whole


def _pieces(text: str, size: int) -> Iterator[tuple[int, int]]:
    """[start, stop) of about `size` characters, each but the last ending just after a newline, or in a line
    longer than `size` just after a space (with neither in reach, a piece runs on to the next one)."""
    start = 0
    while len(text) - start > size:
        cut = text.rfind("\n", start, start + size)
        if cut < start:
            cut = text.rfind(" ", start, start + size)
        if cut < start:  # neither in reach: run on to the next one
            ahead = [i for i in (text.find("\n", start + size), text.find(" ", start + size)) if i != -1]
            cut = min(ahead, default=len(text) - 1)
        yield start, cut + 1
        start = cut + 1
    if start < len(text):
        yield start, len(text)
