"""`dolma-kit tokenize-adopt`: token files another tool wrote become a tokenized folder `train`, `trace` and
`provenance` read, without copying a token.

The token files stay where they are; beside them go, per file, the index arrays `tokenize` writes
(`<part>.starts.npy`, `.sources.npy`, `.locs.npy`, the ids, `.csv.gz`, `.index.parquet`), the global id index
and `manifest.json` (its parts name their token file: `tokens_file`). Formats, learned from the writers' public
code (facts, not code):

- **OLMo memmap** (`*.npy` without a NumPy header): raw little-endian uint16 or uint32 ids, EOS after every
  document; documents are the runs ending at each EOS (`--dtype`, or the tokenizer's vocabulary size, says the
  width: the file has no header).
- **datatrove** (`*.ds`, `DocumentTokenizer`): raw little-endian tokens, 2 bytes (4 when its `token_size`
  was 4); `<file>.ds.index` holds each document's end as little-endian uint64 token offsets; the optional
  `<file>.ds.metadata` starts with `<tokenizer>|<token size>`.
- **Megatron** (`*.bin` + `*.idx`, `MMapIndexedDataset`): the `.idx` is `MMIDIDX\\x00\\x00`, uint64 version 1,
  a uint8 dtype code (3 int16, 4 int32, 8 uint16), uint64 sequence count S, uint64 document count D, then int32
  sizes[S], int64 byte pointers[S], int64 document indices[D] (the first sequence of each document, and S
  last); the `.bin` is the sequences back to back.

Every part must end with the EOS id (the trainer checks that too); a document is named `<part>:<k>` (k from
0), its `loc` is k + 1, its `src` the token file's absolute path, its source the name given (default: the
folder's name).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.provenance import FORMAT, ID_INDEX_FILES, MANIFEST_NAME, PART_FILES
from dolma_kit.tokenize.loading import load_tokenizer
from dolma_kit.tokenize.parts import PARQUET_SCHEMA
from dolma_kit.tokenize.publish import build_id_index

MEGATRON_HEADER = b"MMIDIDX\x00\x00"
MEGATRON_DTYPES = {3: "uint16", 4: "uint32", 8: "uint16"}
"""Megatron dtype codes we read: int16 and uint16 as uint16, int32 as uint32 (ids are never negative)."""
FORMATS = ("auto", "olmo", "datatrove", "megatron")
_SCAN = 1 << 24  # tokens read at a time when looking for EOS ids or the largest id


@dataclass(kw_only=True)
class AdoptConfig:
    """What `dolma-kit tokenize-adopt` needs."""

    files: list[str]
    """Token files of one folder: OLMo `.npy`, datatrove `.ds`, Megatron `.bin` (their indexes are found)."""
    format: str = "auto"
    """`olmo`, `datatrove`, `megatron`, or `auto` (by suffix)."""
    source: str | None = None
    """The source name of every document (default: the folder's name)."""
    tokenizer: str | None = None
    """The tokenizer.json the files were written with: recorded, and gives EOS and the vocabulary size."""
    eos_id: int | None = None
    dtype: str | None = None
    """`uint16` or `uint32`: needed for an OLMo `.npy` unless the tokenizer says it."""
    vocab_size: int | None = None
    """Default: the tokenizer's, else the largest id + 1."""
    force: bool = False


@dataclass(slots=True)
class _Part:
    name: str
    tokens_file: str
    dtype: str
    starts: np.ndarray
    tokens: int
    meta: dict[str, Any] = field(default_factory=dict)


def _format_of(path: Path, requested: str) -> str:
    if requested != "auto":
        return requested
    kinds = {".npy": "olmo", ".ds": "datatrove", ".bin": "megatron"}
    if path.suffix not in kinds:
        raise DolmaKitError(f"{path}: not .npy, .ds or .bin; say --format olmo, datatrove or megatron")
    return kinds[path.suffix]


def _eos_starts(tokens: np.ndarray, eos: int) -> np.ndarray:
    """Document starts of an EOS-separated memmap: 0 and every position after an EOS (but the end)."""
    ends = [np.flatnonzero(tokens[i : i + _SCAN] == eos) + i + 1 for i in range(0, len(tokens), _SCAN)]
    flat = np.concatenate(ends) if ends else np.zeros(0, np.int64)
    return np.concatenate([[0], flat[:-1]]).astype(np.int64) if len(flat) else np.zeros(0, np.int64)


def _olmo(path: Path, dtype: str | None, eos: int) -> _Part:
    with open(path, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            raise DolmaKitError(f"{path}: a NumPy .npy with a header (np.save), not OLMo's raw memmap")
    if dtype is None:
        raise DolmaKitError(f"{path}: an OLMo memmap has no header; say --dtype uint16|uint32 or --tokenizer")
    width = np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size % width:
        raise DolmaKitError(f"{path}: {size:,} bytes is not a whole number of {dtype} tokens")
    tokens = np.memmap(path, dtype=np.dtype(dtype).newbyteorder("<"), mode="r") if size else np.zeros(0)
    return _Part(path.stem, path.name, dtype, _eos_starts(tokens, eos), size // width)


def _datatrove(path: Path, dtype: str | None) -> _Part:
    index = Path(str(path) + ".index")
    if not index.is_file():
        raise DolmaKitError(
            f"{path}: no {index.name} beside it (datatrove writes it unless save_index=False)"
        )
    raw = index.read_bytes()
    if len(raw) % 8:
        raise DolmaKitError(f"{index}: {len(raw):,} bytes is not a list of uint64 document ends")
    ends = np.frombuffer(raw, dtype="<u8").astype(np.int64)
    meta_file = Path(str(path) + ".metadata")
    meta: dict[str, Any] = {}
    if meta_file.is_file():
        head = meta_file.read_text("utf-8", errors="replace").splitlines()[:1]
        name, _, width = (head[0] if head else "").rpartition("|")
        if width.strip() in ("2", "4"):
            meta = {"tokenizer": name, "token_size": int(width)}
    size = path.stat().st_size
    total = int(ends[-1]) if len(ends) else 0
    if meta:
        dtype = "uint16" if meta["token_size"] == 2 else "uint32"
    elif dtype is None and total:
        dtype = {2: "uint16", 4: "uint32"}.get(size // total) if size % total == 0 else None
    if dtype is None:
        raise DolmaKitError(f"{path}: cannot tell 2- from 4-byte tokens (no .ds.metadata): say --dtype")
    if total * np.dtype(dtype).itemsize != size or np.any(np.diff(ends) <= 0) or (len(ends) and ends[0] <= 0):
        raise DolmaKitError(f"{index}: its document ends do not tile {path.name} ({size:,} bytes of {dtype})")
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64) if len(ends) else np.zeros(0, np.int64)
    return _Part(path.name.removesuffix(".ds"), path.name, dtype, starts, total, meta)


def _megatron(path: Path) -> _Part:
    idx = path.with_suffix(".idx")
    if not idx.is_file():
        raise DolmaKitError(f"{path}: no {idx.name} beside it (Megatron's index)")
    raw = idx.read_bytes()
    head = len(MEGATRON_HEADER) + 8 + 1 + 8 + 8
    if len(raw) < head or not raw.startswith(MEGATRON_HEADER):
        raise DolmaKitError(f"{idx}: not a Megatron index (no MMIDIDX header)")
    version, code, sequences, documents = struct.unpack_from("<QBQQ", raw, len(MEGATRON_HEADER))
    if version != 1 or code not in MEGATRON_DTYPES:
        raise DolmaKitError(
            f"{idx}: version {version}, dtype code {code}: only version 1 with uint16/int16/int32"
        )
    if len(raw) != head + sequences * 12 + documents * 8:
        raise DolmaKitError(
            f"{idx}: {len(raw):,} bytes, not what {sequences:,} sequences and {documents:,} documents take"
        )
    sizes = np.frombuffer(raw, "<i4", sequences, head).astype(np.int64)
    pointers = np.frombuffer(raw, "<i8", sequences, head + 4 * sequences)
    doc_index = np.frombuffer(raw, "<i8", documents, head + 12 * sequences)
    dtype = MEGATRON_DTYPES[code]
    width = np.dtype(dtype).itemsize
    seq_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if sequences else np.zeros(0, np.int64)
    total = int(sizes.sum())
    if not np.array_equal(pointers, seq_starts * width) or path.stat().st_size != total * width:
        raise DolmaKitError(f"{idx}: its sequences do not lie back to back in {path.name}")
    firsts = doc_index[:-1] if len(doc_index) and doc_index[-1] == sequences else doc_index
    if len(firsts) and (firsts[0] != 0 or np.any(np.diff(firsts) <= 0)):
        raise DolmaKitError(f"{idx}: its document indices are not increasing from 0")
    starts = seq_starts[firsts].astype(np.int64) if sequences else np.zeros(0, np.int64)
    return _Part(path.stem, path.name, dtype, starts, total)


def _write_index(folder: Path, part: _Part, source_code: int, source: str, src: str) -> None:
    """The per-part arrays `provenance` reads, and the CSV and parquet `tokenize` writes beside them."""
    n = len(part.starts)
    ids = [f"{part.name}:{k}" for k in range(n)]
    raw = [i.encode("utf-8") for i in ids]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in raw])]).astype(np.int64)
    ends = np.concatenate([part.starts[1:], [part.tokens]]).astype(np.int64) if n else np.zeros(0, np.int64)
    locs = np.arange(1, n + 1, dtype=np.int64)
    arrays = {
        "starts": part.starts,
        "sources": np.full(n, source_code, dtype=np.int16),
        "locs": locs,
        "id_hashes": np.array([xxhash.xxh3_64_intdigest(r) for r in raw], dtype=np.uint64),
        "id_offsets": offsets,
    }
    for key, values in arrays.items():
        with storage.atomic_write(str(folder / PART_FILES[key].format(part=part.name))) as fh:
            np.save(fh, values)
    with storage.atomic_write(str(folder / PART_FILES["ids"].format(part=part.name))) as fh:
        fh.write(b"".join(raw))
    text = io.StringIO(newline="")
    csv.writer(text).writerows(
        zip(part.starts.tolist(), ends.tolist(), ids, [src] * n, locs.tolist(), strict=True)
    )
    with storage.atomic_write(str(folder / PART_FILES["metadata_csv"].format(part=part.name))) as fh:
        fh.write(gzip.compress(text.getvalue().encode("utf-8"), mtime=0))
    table = pa.table(
        {"start": part.starts, "end": ends, "id": ids, "source": [source] * n, "src": [src] * n, "loc": locs},
        schema=PARQUET_SCHEMA,
    )
    with storage.atomic_write(str(folder / PART_FILES["index_parquet"].format(part=part.name))) as fh:
        pq.write_table(table, fh, compression="zstd")


def _max_id(folder: Path, part: _Part) -> int:
    tokens = np.memmap(folder / part.tokens_file, dtype=np.dtype(part.dtype).newbyteorder("<"), mode="r")
    return max((int(tokens[i : i + _SCAN].max()) for i in range(0, len(tokens), _SCAN)), default=0)


def adopt(config: AdoptConfig) -> dict[str, Any]:
    """Index the foreign token files in place; write and return the manifest."""
    if not config.files:
        raise DolmaKitError("no token files given")
    if config.format not in FORMATS:
        raise DolmaKitError(f"--format {config.format!r}: choose {', '.join(FORMATS)}")
    paths = sorted(Path(f).resolve() for f in config.files)
    folders = {p.parent for p in paths}
    if len(folders) != 1:
        raise DolmaKitError(f"the token files lie in {len(folders)} folders; adopt one folder at a time")
    folder = folders.pop()
    for p in paths:
        if not p.is_file():
            raise DolmaKitError(f"{p}: no such file")
    manifest_path = folder / MANIFEST_NAME
    if manifest_path.exists():
        earlier = storage.read_json_object(str(manifest_path)) or {}
        if not earlier.get("adopted"):
            raise DolmaKitError(f"{manifest_path}: {folder} is already a tokenized folder; nothing to adopt")
        if not config.force:
            raise DolmaKitError(f"{manifest_path} exists; pass --force to index {folder} again")
    loaded = load_tokenizer(config.tokenizer, eos_id=config.eos_id) if config.tokenizer else None
    eos = loaded.eos_id if loaded else config.eos_id
    if eos is None:
        raise DolmaKitError("say --eos-id, or --tokenizer to find it: documents are told apart by it")
    dtype = config.dtype
    if dtype is None and loaded is not None:
        dtype = "uint16" if loaded.vocab_size <= 2**16 else "uint32"
    if dtype not in (None, "uint16", "uint32"):
        raise DolmaKitError(f"--dtype {dtype!r}: choose uint16 or uint32")
    parts = []
    for p in paths:
        kind = _format_of(p, config.format)
        part = (
            _olmo(p, dtype, eos)
            if kind == "olmo"
            else _datatrove(p, dtype)
            if kind == "datatrove"
            else _megatron(p)
        )
        part.meta["format"] = kind
        parts.append(part)
    widths = {p.dtype for p in parts}
    if len(widths) != 1:
        raise DolmaKitError(f"the files mix token widths ({', '.join(sorted(widths))}); adopt them apart")
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise DolmaKitError("two token files give the same part name (e.g. x.npy and x.ds); adopt them apart")
    source = config.source or folder.name
    for part in parts:
        tokens = np.memmap(folder / part.tokens_file, dtype=np.dtype(part.dtype).newbyteorder("<"), mode="r")
        if part.tokens and int(tokens[part.tokens - 1]) != eos:
            raise DolmaKitError(
                f"{folder / part.tokens_file}: does not end with EOS id {eos} (the trainer needs every part to); "
                "check --eos-id"
            )
        del tokens
        _write_index(folder, part, 0, source, str(folder / part.tokens_file))
    repeated = build_id_index(str(folder), names)
    assert not repeated  # ids are <part>:<k>, unique by construction
    vocab = config.vocab_size or (loaded.vocab_size if loaded else max(_max_id(folder, p) for p in parts) + 1)
    docs = sum(len(p.starts) for p in parts)
    total = sum(p.tokens for p in parts)
    manifest = {
        "format": FORMAT,
        "tokenizer": {
            "name": Path(config.tokenizer).name if config.tokenizer else "unknown",
            "spec": config.tokenizer,
            "sha256": loaded.sha256 if loaded else None,
        },
        "eos_id": eos,
        "pad_id": loaded.pad_id if loaded else None,
        "vocab_size": vocab,
        "dtype": parts[0].dtype,
        "documents": docs,
        "tokens": total,
        "input_documents": docs,
        "empty_documents_skipped": 0,
        "rejected_documents": 0,
        "sources": [source],
        "per_source": {source: {"documents": docs, "tokens": total}},
        "repeated_ids": {},
        "parts": [
            {
                "name": p.name,
                "tokens_file": p.tokens_file,
                "src": str(folder / p.tokens_file),
                "documents": len(p.starts),
                "tokens": p.tokens,
                "adopted": p.meta,
            }
            for p in parts
        ],
        "files": {"part": PART_FILES, "id_index": ID_INDEX_FILES},
        "adopted": True,
    }
    storage.write_text(str(manifest_path), json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest
