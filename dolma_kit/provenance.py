"""Reads a tokenized folder: token offset ↔ document ↔ source ↔ input file and line, in O(log n).

`dolma-kit tokenize` writes, per part, the tokens (`part-<n>.npy`, raw, OLMo's layout) and beside them
memory-mappable index arrays: document starts (int64), source codes (int16), input line numbers, and the
document ids as one UTF-8 blob with int64 offsets. A global id index (sorted uint64 xxh3 hashes of the ids,
with the part and document number of each) makes `find_document` a binary search; every hash hit is checked
against the stored id string, so a hash collision can never return the wrong document. Nothing is read
into memory but the manifest: a 1-billion-token corpus opens instantly and a lookup touches a few pages.

The trainer uses this API for per-token source ids (`document_starts` + `document_sources`) and to answer
"where did this token come from" (`locate`) and "when did the model see this document" (`find_document`).
The format is documented in docs/tokenize.md.
"""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from dolma_kit.errors import DolmaKitError

# the format's names, shared with the writer (`tokenize.publish`, `tokenize.parts`)
FORMAT = "dolma-kit.tokenized/1"
#: file names of a part, `{part}` replaced by e.g. `part-00000` (recorded in the manifest for readers)
PART_FILES = {
    "tokens": "{part}.npy",
    "metadata_csv": "{part}.csv.gz",
    "index_parquet": "{part}.index.parquet",
    "starts": "{part}.starts.npy",
    "sources": "{part}.sources.npy",
    "locs": "{part}.locs.npy",
    "id_hashes": "{part}.id_hashes.npy",
    "ids": "{part}.ids.bin",
    "id_offsets": "{part}.ids.offsets.npy",
}
ID_INDEX_FILES = {"hashes": "id_index.hashes.npy", "parts": "id_index.parts.npy", "docs": "id_index.docs.npy"}
MANIFEST_NAME = "manifest.json"
"""Written last: a tokenized folder without it is incomplete."""
#: the index files a reader needs for every part (the CSV and parquet are for people and other tools)
REQUIRED_PART_FILES = ("starts", "sources", "locs", "ids", "id_offsets")


def id_hash(doc_id: str) -> int:
    """The 64-bit key of the id index: xxh3 of the id's UTF-8 bytes (hits are verified against the id)."""
    return xxhash.xxh3_64_intdigest(doc_id.encode("utf-8"))


class ProvenanceError(DolmaKitError, LookupError):
    """A bad tokenized folder, an unknown part, or an offset outside a part."""


@dataclass(frozen=True, slots=True)
class DocumentLocation:
    """Where one document lies in the tokenized corpus and where it came from."""

    part: str
    """e.g. "part-00000"."""
    start: int
    """First token offset within the part."""
    end: int
    """Exclusive; includes the document's EOS token."""
    id: str
    source: str
    src: str
    """The input file the document was read from."""
    loc: int
    """1-based line number in `src` (row number for parquet)."""


class TokenizedDir:
    """A tokenized folder opened for reading. Arrays are memory-mapped on first use and cached."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.dtype = np.dtype(manifest["dtype"]).newbyteorder("<")
        self.eos_id: int = manifest["eos_id"]
        self.pad_id: int | None = manifest["pad_id"]
        self.vocab_size: int = manifest["vocab_size"]
        self.sources: list[str] = list(manifest["sources"])
        self.parts: list[str] = [p["name"] for p in manifest["parts"]]
        # an adopted foreign part (`tokenize adopt`) keeps its own token file name (`x.ds`, `x.bin`)
        self.token_files: list[str] = [p.get("tokens_file") or f"{p['name']}.npy" for p in manifest["parts"]]
        self._part_index = {name: i for i, name in enumerate(self.parts)}
        self._arrays: dict[tuple[int, str], np.ndarray] = {}
        self._blobs: dict[int, bytes | mmap.mmap] = {}

    @classmethod
    def open(cls, path: str | Path) -> TokenizedDir:
        """Read `manifest.json` and check that every part's token file is there with the recorded size."""
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise ProvenanceError(
                f"{path}: no manifest.json, so not a complete tokenized folder "
                "(run `dolma-kit tokenize`, or let an interrupted run finish)"
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProvenanceError(f"{manifest_path}: unreadable: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ProvenanceError(f"{manifest_path}: not a {FORMAT} manifest")
        missing = [
            k for k in ("dtype", "eos_id", "pad_id", "vocab_size", "sources", "parts") if k not in manifest
        ]
        if missing:
            raise ProvenanceError(f"{manifest_path}: missing fields {missing}")
        tokenized = cls(path, manifest)
        for i, token_file in enumerate(tokenized.token_files):
            file = path / token_file
            expected = tokenized.num_tokens(i) * tokenized.dtype.itemsize
            if not file.is_file() or file.stat().st_size != expected:
                raise ProvenanceError(f"{file}: missing or not {expected:,} bytes as the manifest says")
        tokenized._check_index_files()
        return tokenized

    def _check_index_files(self) -> None:
        """Every index file the manifest implies is there: a missing one is named now, not a
        FileNotFoundError at the first lookup (a copy that left out some files, a half-deleted folder)."""
        patterns = {**PART_FILES, **(self.manifest.get("files") or {}).get("part", {})}
        wanted = [
            self.path / patterns[k].format(part=name) for name in self.parts for k in REQUIRED_PART_FILES
        ]
        wanted += [self.path / name for name in ID_INDEX_FILES.values()]
        missing = [p.name for p in wanted if not p.is_file()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5:,} more" if len(missing) > 5 else "")
            raise ProvenanceError(
                f"{self.path}: the manifest lists files that are missing: {shown}; copy the whole folder, or "
                "re-run `dolma-kit tokenize` (or `dolma-kit tokenize-adopt` for foreign token files)"
            )

    # ----------------------------------------------------------------------------------------- arrays

    def _index(self, part: int | str) -> int:
        if isinstance(part, str):
            if part not in self._part_index:
                raise ProvenanceError(
                    f"{self.path}: no part {part!r} (parts: {self.parts[0]} … {self.parts[-1]})"
                )
            return self._part_index[part]
        if not 0 <= part < len(self.parts):
            raise ProvenanceError(f"{self.path}: part {part} out of range (0 … {len(self.parts) - 1})")
        return int(part)

    def _npy(self, part: int, suffix: str) -> np.ndarray:
        key = (part, suffix)
        if key not in self._arrays:
            self._arrays[key] = np.load(self.path / f"{self.parts[part]}{suffix}", mmap_mode="r")
        return self._arrays[key]

    def num_tokens(self, part: int) -> int:
        return int(self.manifest["parts"][self._index(part)]["tokens"])

    def tokens(self, part: int) -> np.memmap:
        """The part's token ids, read-only (what OLMo maps: raw little-endian, no header)."""
        i = self._index(part)
        key = (i, ".npy")
        if key not in self._arrays:
            self._arrays[key] = np.memmap(self.path / self.token_files[i], dtype=self.dtype, mode="r")
        return self._arrays[key]  # type: ignore[return-value]

    def document_starts(self, part: int) -> np.ndarray:
        """int64 first token of each document, ascending; starts[0] == 0 and documents tile the part."""
        return self._npy(self._index(part), ".starts.npy")

    def document_sources(self, part: int) -> np.ndarray:
        """int16 source code (index into `sources`) of each document, aligned with `document_starts`."""
        return self._npy(self._index(part), ".sources.npy")

    def _doc_id(self, part: int, doc: int) -> str:
        offsets = self._npy(part, ".ids.offsets.npy")
        if part not in self._blobs:
            with open(self.path / f"{self.parts[part]}.ids.bin", "rb") as fh:
                size = fh.seek(0, 2)
                self._blobs[part] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        return self._blobs[part][int(offsets[doc]) : int(offsets[doc + 1])].decode("utf-8")

    def _location(self, part: int, doc: int) -> DocumentLocation:
        starts = self.document_starts(part)
        end = int(starts[doc + 1]) if doc + 1 < len(starts) else self.num_tokens(part)
        return DocumentLocation(
            part=self.parts[part],
            start=int(starts[doc]),
            end=end,
            id=self._doc_id(part, doc),
            source=self.sources[int(self.document_sources(part)[doc])],
            src=self.manifest["parts"][part]["src"],
            loc=int(self._npy(part, ".locs.npy")[doc]),
        )

    # ----------------------------------------------------------------------------------------- lookups

    def locate(self, part: int | str, offset: int) -> DocumentLocation:
        """The document holding token `offset` of `part` (a binary search over the part's starts)."""
        i = self._index(part)
        n = self.num_tokens(i)
        if not 0 <= offset < n:
            raise ProvenanceError(f"{self.parts[i]}: offset {offset} out of range (0 … {n - 1})")
        doc = int(np.searchsorted(self.document_starts(i), offset, side="right")) - 1
        return self._location(i, doc)

    def find_document(self, doc_id: str, source: str | None = None) -> list[DocumentLocation]:
        """Every occurrence of `doc_id` (in `source` if given), ordered by part and offset.

        Ids are unique within a source, so one source gives at most one hit unless the input repeated it.
        """
        hashes = self._id_index("hashes")
        key = np.uint64(id_hash(doc_id))
        lo = int(np.searchsorted(hashes, key, side="left"))
        hi = int(np.searchsorted(hashes, key, side="right"))
        parts, docs = self._id_index("parts"), self._id_index("docs")
        found = []
        for j in range(lo, hi):
            part, doc = int(parts[j]), int(docs[j])
            if self._doc_id(part, doc) != doc_id:
                continue  # a hash collision with another id
            location = self._location(part, doc)
            if source is None or location.source == source:
                found.append(location)
        return sorted(found, key=lambda loc: (loc.part, loc.start))

    def _id_index(self, name: str) -> np.ndarray:
        key = (-1, name)
        if key not in self._arrays:
            self._arrays[key] = np.load(self.path / ID_INDEX_FILES[name], mmap_mode="r")
        return self._arrays[key]
