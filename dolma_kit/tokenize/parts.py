"""Writes one input shard's tokens as a run of chunks, each later published as one `part-<n>` (tokenize.py).

A chunk holds whole documents, at most `max_tokens` tokens (a longer document gets a chunk of its own), and
every file of the on-disk format except the global id index, which needs every part (docs/tokenize.md):

    <prefix>.c<k>.npy              raw little-endian token ids, EOS after every document
    <prefix>.c<k>.csv.gz           Dolma's metadata: start,end,id,src,loc (no header, csv module quoting)
    <prefix>.c<k>.index.parquet    start,end,id,source,src,loc, for people and pandas
    <prefix>.c<k>.starts.npy       int64 first token of each document (np.save, memory-mappable)
    <prefix>.c<k>.locs.npy         int64 1-based line of each document in its input file
    <prefix>.c<k>.id_hashes.npy    uint64 xxh3 of each document id (the id index is built from these)
    <prefix>.c<k>.ids.bin          the ids' UTF-8 bytes, concatenated; `.ids.offsets.npy` int64, n + 1 entries
    <prefix>.c<k>.local_sources.npy int16 codes into the shard's own source list (tokenize.py renumbers them)

Every file goes through `storage.atomic_write`; an exception drops all of the chunk's temp files.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
from array import array
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from dolma_kit import storage
from dolma_kit.documents import Document

PARQUET_SCHEMA = pa.schema(
    [
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("id", pa.string()),
        ("source", pa.string()),
        ("src", pa.string()),
        ("loc", pa.int64()),
    ]
)
#: per-part files moved as they are by tokenize.py's publish step (suffix after `part-<n>`)
MOVED_SUFFIXES = (
    ".npy",
    ".csv.gz",
    ".index.parquet",
    ".starts.npy",
    ".locs.npy",
    ".id_hashes.npy",
    ".ids.bin",
    ".ids.offsets.npy",
)
LOCAL_SOURCES = ".local_sources.npy"


@dataclass(slots=True)
class ChunkStats:
    tokens: int = 0
    documents: int = 0
    per_source: dict[str, list[int]] = field(default_factory=dict)
    """source -> [documents, tokens]"""

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "documents": self.documents, "per_source": self.per_source}


def _int64_column(values: np.ndarray) -> pa.Array:
    """An int64 Arrow array over the numpy buffer. Built from buffers, not Python objects: any pyarrow
    conversion from objects imports pandas first (~0.3 s of CPU in every worker, bench/dolma_tokens.py)."""
    data = np.ascontiguousarray(values, dtype="<i8")
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def _string_column(raw: list[bytes]) -> pa.Array:
    """A UTF-8 Arrow array from encoded strings (offsets and bytes), for the same reason as `_int64_column`."""
    offsets = np.zeros(len(raw) + 1, dtype="<i4")
    np.cumsum([len(r) for r in raw], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(raw), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(raw))]
    )


class _Chunk:
    """The open files of one chunk; closed (published) or aborted (temp files dropped) as a whole."""

    def __init__(self, prefix: str, src: str) -> None:
        self.prefix = prefix
        self.src = src
        self._stack = contextlib.ExitStack()
        self.tokens_out: IO[bytes] = self._open(".npy")
        self.ids_out: IO[bytes] = self._open(".ids.bin")
        self._csv_gz = gzip.GzipFile(filename="", fileobj=self._open(".csv.gz"), mode="wb", mtime=0)
        self._csv_text = io.TextIOWrapper(self._csv_gz, encoding="utf-8", newline="")
        self.csv = csv.writer(self._csv_text)  # Dolma's dialect: excel, \r\n line ends
        self.parquet = pq.ParquetWriter(self._open(".index.parquet"), PARQUET_SCHEMA, compression="zstd")
        self.starts = array("q")
        self.locs = array("q")
        self.hashes = array("Q")
        self.id_offsets = array("q", [0])
        self.sources = array("h")
        self.stats = ChunkStats()

    def _open(self, suffix: str) -> IO[bytes]:
        return self._stack.enter_context(storage.atomic_write(self.prefix + suffix))

    def add(
        self, tokens: list[list[np.ndarray]], lengths: np.ndarray, docs: list[Document], codes: list[int]
    ) -> None:
        """Append documents (in output order); a document's tokens, EOS included, are its arrays in turn."""
        base = self.stats.tokens
        starts = base + np.concatenate(([0], np.cumsum(lengths[:-1])))
        ends = starts + lengths
        for arrays in tokens:
            for piece in arrays:
                self.tokens_out.write(np.ascontiguousarray(piece).view(np.uint8).data)  # no copy
        ids_bytes = [d.id.encode("utf-8") for d in docs]
        self.ids_out.write(b"".join(ids_bytes))
        offset = self.id_offsets[-1]
        for doc, raw, code, n in zip(docs, ids_bytes, codes, lengths.tolist(), strict=True):
            offset += len(raw)
            self.id_offsets.append(offset)
            self.hashes.append(xxhash.xxh3_64_intdigest(raw))
            self.locs.append(doc.line)
            self.sources.append(code)
            counts = self.stats.per_source.setdefault(doc.source, [0, 0])
            counts[0] += 1
            counts[1] += n
        self.starts.extend(starts.tolist())
        self.csv.writerows(
            zip(
                starts.tolist(),
                ends.tolist(),
                (d.id for d in docs),
                [self.src] * len(docs),
                (d.line for d in docs),
                strict=True,
            )
        )
        src = self.src.encode("utf-8")
        columns = [
            _int64_column(starts),
            _int64_column(ends),
            _string_column(ids_bytes),
            _string_column([d.source.encode("utf-8") for d in docs]),
            _string_column([src] * len(docs)),
            _int64_column(np.array([d.line for d in docs], dtype=np.int64)),
        ]
        self.parquet.write_table(pa.Table.from_arrays(columns, schema=PARQUET_SCHEMA))
        self.stats.tokens += int(lengths.sum())
        self.stats.documents += len(docs)

    def close(self) -> ChunkStats:
        self.parquet.close()
        self._csv_text.close()
        for suffix, values, dtype in (
            (".starts.npy", self.starts, np.int64),
            (".locs.npy", self.locs, np.int64),
            (".id_hashes.npy", self.hashes, np.uint64),
            (".ids.offsets.npy", self.id_offsets, np.int64),
            (LOCAL_SOURCES, self.sources, np.int16),
        ):
            np.save(
                self._open(suffix), np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype)
            )
        self._stack.close()
        return self.stats

    def abort(self, exc: BaseException) -> None:
        with contextlib.suppress(Exception):
            self.parquet.close()
        with contextlib.suppress(Exception):
            self._csv_text.close()
        with contextlib.suppress(BaseException):
            self._stack.__exit__(type(exc), exc, exc.__traceback__)


class ChunkWriter:
    """Rolls chunks at `max_tokens` (document boundaries only) for one input shard."""

    def __init__(self, prefix: str, src: str, max_tokens: int) -> None:
        self.prefix = prefix
        self.src = src
        self.max_tokens = max_tokens
        self.chunks: list[ChunkStats] = []
        self.sources: list[str] = []
        self._codes: dict[str, int] = {}
        self._chunk: _Chunk | None = None

    def _code(self, source: str) -> int:
        code = self._codes.get(source)
        if code is None:
            code = self._codes[source] = len(self.sources)
            if code > np.iinfo(np.int16).max:
                raise ValueError("more than 32,767 sources in one input file")
            self.sources.append(source)
        return code

    def write(self, tokens: list[list[np.ndarray]], docs: list[Document]) -> None:
        """Append documents in output order; `tokens[i]` holds document i's token arrays, EOS included
        (little-endian; a long document's pieces are written one after the other, never joined)."""
        codes = [self._code(d.source) for d in docs]
        lengths = np.array([sum(len(a) for a in arrays) for arrays in tokens], dtype=np.int64)
        ends = np.cumsum(lengths)
        i = 0
        while i < len(docs):
            if self._chunk is None:
                self._chunk = _Chunk(f"{self.prefix}.c{len(self.chunks)}", self.src)
            written = self._chunk.stats.tokens
            start = int(ends[i - 1]) if i else 0
            # documents i..k-1 fit in what is left of this chunk
            k = int(np.searchsorted(ends, start + self.max_tokens - written, side="right"))
            if k <= i:
                if written:
                    self._roll()
                    continue
                k = i + 1  # a document longer than max_tokens gets a chunk of its own
            self._chunk.add(tokens[i:k], lengths[i:k], docs[i:k], codes[i:k])
            i = k
            if self._chunk.stats.tokens >= self.max_tokens:
                self._roll()

    def _roll(self) -> None:
        assert self._chunk is not None
        self.chunks.append(self._chunk.close())
        self._chunk = None

    def close(self) -> list[ChunkStats]:
        if self._chunk is not None and self._chunk.stats.documents:
            self._roll()
        return self.chunks

    def abort(self, exc: BaseException) -> None:
        if self._chunk is not None:
            self._chunk.abort(exc)
            self._chunk = None
