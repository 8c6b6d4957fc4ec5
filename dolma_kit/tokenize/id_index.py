"""The id index of a tokenized folder, built by an external merge sort in a fixed memory budget.

The index (provenance.ID_INDEX_FILES) is every part's `*.id_hashes.npy` sorted by hash, with the part and
document number of each hash beside it; equal hashes keep input order, (part, document), as the stable
in-memory argsort over the concatenated parts did, so the three files are byte for byte what that sort wrote.

Holding all of it in memory (16 bytes a document, plus the sort) stops working past a few hundred million
documents, so the build never holds more than `memory_bytes` of index entries, whatever the corpus size:

1. runs: the documents, in (part, document) order, are cut into slices of `memory_bytes / 48` entries (a
   slice may span several small parts, and a large part is cut); each slice is sorted stably in memory and
   written as a run file under `_work/id_index/` (raw ENTRY records: hash, part, doc). A corpus that fits in one
   slice skips the run files.
2. merge: the runs are read a block at a time (`memory_bytes / 72 / runs` entries each) and k-way merged:
   each round emits every buffered entry not above the smallest last buffered (hash, run) — no run can
   still hold a smaller one — sorted stably, so ties stay in run order, which is input order. More runs
   than `memory_bytes / 72 / 4096` are merged in passes, consecutive groups into longer runs.
3. the final merge streams straight into the three `.npy` files (each written to a temp name and renamed
   when complete, as every file of a tokenized folder is) and, on the way, counts the repeated ids, which
   sit next to each other once sorted.

Reads go through plain file reads rather than memory maps, so resident memory stays at the budget too.
Disk: the run files take 16 bytes a document under `_work/` while the index is built and are deleted after.
"""

from __future__ import annotations

import mmap
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO

import numpy as np

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.provenance import ID_INDEX_FILES

#: default memory for index entries while building (runs, merge buffers, the sort); the process's own
#: footprint (Python, numpy, the tokenize driver) comes on top. The build is linear in documents at any budget.
MEMORY_BYTES = 128 * 2**20
#: one index entry as runs store it; the three output files are its three fields
ENTRY = np.dtype([("hash", "<u8"), ("part", "<u4"), ("doc", "<u4")])
WORK_DIR = "id_index"
# bytes per entry while a slice is sorted: records 16, the stable argsort 16 (result and its buffer), the sorted
# copy 16 (40 measured with tracemalloc, so the budget has a margin)
_SORT_BYTES = 48
# bytes per buffered entry while merging: buffers 16, the round's block 16, its argsort 8, sorted copy 16, a field
_MERGE_BYTES = 72
# entries per run and round below which another merge pass is cheaper than more, smaller rounds
_MIN_BLOCK = 4096
_OPEN_PARTS = 64  # parts whose ids stay mapped while repeated ids are checked
_FIELDS = {"hashes": ("hash", "<u8"), "parts": ("part", "<u4"), "docs": ("doc", "<u4")}


class IdIndexError(DolmaKitError):
    """A part's id hashes cannot be read as a 1-D array (a damaged or foreign file)."""


@dataclass(frozen=True, slots=True)
class _Hashes:
    """One part's `id_hashes.npy`, read by slices (file reads: no mapping left resident)."""

    path: str
    offset: int
    count: int
    dtype: np.dtype

    @classmethod
    def open(cls, path: str) -> _Hashes:
        try:
            with open(path, "rb") as fh:
                major, _ = np.lib.format.read_magic(fh)
                read = (
                    np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(fh)
                offset = fh.tell()
        except (OSError, ValueError) as exc:
            raise IdIndexError(f"{path}: cannot read the id hashes: {exc}") from exc
        if len(shape) != 1 or dtype.kind != "u":
            raise IdIndexError(
                f"{path}: id hashes of shape {shape} and dtype {dtype}, not 1-D unsigned integers"
            )
        return cls(path, offset, int(shape[0]), dtype)

    def read(self, start: int, count: int) -> np.ndarray:
        out = np.empty(count, self.dtype)
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + start * self.dtype.itemsize)
            _read_into(fh, out, self.path)
        return out.astype("<u8", copy=False)


def _read_into(fh: IO[bytes], out: np.ndarray, path: str) -> None:
    view = out.view(np.uint8)
    got = fh.readinto(view)  # type: ignore[attr-defined]
    if got != len(view):
        raise IdIndexError(f"{path}: ends early ({got:,} of {len(view):,} bytes at byte {fh.tell():,})")


def _sorted_slices(inputs: list[_Hashes], size: int) -> Iterator[np.ndarray]:
    """The documents in (part, doc) order cut into slices of `size` entries, each sorted stably by hash."""
    total = sum(h.count for h in inputs)
    part, doc = 0, 0
    for start in range(0, total, size):
        entries = np.empty(min(size, total - start), ENTRY)
        filled = 0
        while filled < len(entries):
            while doc == inputs[part].count:
                part, doc = part + 1, 0
            n = min(inputs[part].count - doc, len(entries) - filled)
            entries["hash"][filled : filled + n] = inputs[part].read(doc, n)
            entries["part"][filled : filled + n] = part
            entries["doc"][filled : filled + n] = np.arange(doc, doc + n, dtype=np.uint32)
            filled, doc = filled + n, doc + n
        ordered = entries[np.argsort(entries["hash"], kind="stable")]
        del entries  # not held while the caller writes the slice and asks for the next
        yield ordered
        del ordered


@dataclass(slots=True)
class _Run:
    """A sorted run file and how far the merge has read it."""

    path: str
    count: int
    read: int = 0

    def next_block(self, n: int) -> np.ndarray:
        out = np.empty(min(n, self.count - self.read), ENTRY)
        with open(self.path, "rb") as fh:
            fh.seek(self.read * ENTRY.itemsize)
            _read_into(fh, out, self.path)
        self.read += len(out)
        return out


def _merge(runs: list[_Run], memory_bytes: int, sink: Callable[[np.ndarray], None]) -> None:
    """Feed `sink` the entries of `runs` (consecutive in input order) in (hash, input order), block by block."""
    block = max(1, memory_bytes // (_MERGE_BYTES * max(1, len(runs))))
    buffers = [run.next_block(block) for run in runs]
    while True:
        # a run with entries left on disk bounds the round by its last buffered one; ties go to the lower run
        bounds = [(int(buf["hash"][-1]), r) for r, buf in enumerate(buffers) if runs[r].read < runs[r].count]
        last, owner = min(bounds) if bounds else (0, -1)
        taken = []
        for r, buf in enumerate(buffers):
            if not bounds or r == owner:
                n = len(buf)
            else:
                side = "right" if r < owner else "left"
                n = int(np.searchsorted(buf["hash"], np.uint64(last), side=side))
            taken.append(buf[:n])
            buffers[r] = buf[n:]
        out = np.concatenate(taken)
        del taken
        if len(out):
            sink(out[np.argsort(out["hash"], kind="stable")])
        del out
        if not bounds:
            return
        for r, run in enumerate(runs):
            if run.read < run.count and len(buffers[r]) < block:
                buffers[r] = np.concatenate([buffers[r], run.next_block(block - len(buffers[r]))])


class _Repeats:
    """Counts later occurrences of an (id, source) pair per source code, fed the sorted index block by block.

    Only equal-hash neighbours are read back (their id strings and sources, from the parts' files), and only
    the ids of one hash at a time are remembered: a 64-bit collision between other ids is not a repeat."""

    def __init__(self, destination: str, parts: list[str]) -> None:
        self.destination, self.parts = destination, parts
        self.repeated: dict[int, int] = {}
        self._opened: dict[int, tuple[np.ndarray, np.ndarray, mmap.mmap | bytes]] = {}
        self._hash: int | None = None
        self._seen: set[tuple[int, str]] = set()
        self._last: tuple[int, int, int, bool] | None = None  # hash, part, doc, visited

    def _visit(self, hash_: int, part: int, doc: int) -> None:
        if part not in self._opened:
            if len(self._opened) >= _OPEN_PARTS:  # each mapping holds a descriptor: keep few open
                del self._opened[next(iter(self._opened))]
            name = storage.join(self.destination, self.parts[part])
            with open(name + ".ids.bin", "rb") as fh:
                size = fh.seek(0, 2)
                blob = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            offsets = np.load(name + ".ids.offsets.npy", mmap_mode="r")
            self._opened[part] = (offsets, np.load(name + ".sources.npy", mmap_mode="r"), blob)
        offsets, sources, blob = self._opened[part]
        key = (int(sources[doc]), blob[int(offsets[doc]) : int(offsets[doc + 1])].decode("utf-8"))
        if hash_ != self._hash:
            self._hash, self._seen = hash_, set()
        if key in self._seen:
            self.repeated[key[0]] = self.repeated.get(key[0], 0) + 1
        self._seen.add(key)

    def add(self, block: np.ndarray) -> None:
        hashes = block["hash"]
        equal = hashes[1:] == hashes[:-1]
        candidate = np.zeros(len(block), bool)
        candidate[1:] |= equal
        candidate[:-1] |= equal
        if self._last is not None and self._last[0] == int(hashes[0]):
            candidate[0] = True
            if not self._last[3]:
                self._visit(*self._last[:3])
        for j in np.flatnonzero(candidate).tolist():
            self._visit(int(hashes[j]), int(block["part"][j]), int(block["doc"][j]))
        end = block[-1]
        self._last = (int(end["hash"]), int(end["part"]), int(end["doc"]), bool(candidate[-1]))


def _write_header(fh: IO[bytes], dtype: str, count: int) -> None:
    """The header np.save writes for a 1-D array of `count` × `dtype` (so the bytes equal np.save's)."""
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    np.lib.format.write_array_header_1_0(fh, {"descr": descr, "fortran_order": False, "shape": (count,)})


def build_id_index(destination: str, parts: list[str], memory_bytes: int = MEMORY_BYTES) -> dict[int, int]:
    """Write the id index of `parts` (in part order) into `destination`; return the repeated ids by source code.

    Repeated ids are later occurrences of an (id, source) pair (ids must be unique within a source; the
    manifest records any that are not). Memory for index entries stays within `memory_bytes`."""
    if memory_bytes < _MERGE_BYTES * 2:
        raise DolmaKitError(f"id index memory of {memory_bytes:,} bytes: give at least {_MERGE_BYTES * 2}")
    inputs = [_Hashes.open(storage.join(destination, p + ".id_hashes.npy")) for p in parts]
    total = sum(h.count for h in inputs)
    work = storage.join(destination, "_work", WORK_DIR)
    shutil.rmtree(work, ignore_errors=True)  # a killed build's runs
    repeats = _Repeats(destination, parts)
    with ExitStack() as stack:
        outputs = {}
        for name, (field, dtype) in _FIELDS.items():
            outputs[field] = stack.enter_context(
                storage.atomic_write(storage.join(destination, ID_INDEX_FILES[name]))
            )
            _write_header(outputs[field], dtype, total)

        def write(block: np.ndarray) -> None:
            for field, fh in outputs.items():
                fh.write(np.ascontiguousarray(block[field]).data)
            repeats.add(block)

        slice_size = max(1, memory_bytes // _SORT_BYTES)
        if total <= slice_size:
            for entries in _sorted_slices(inputs, slice_size):
                write(entries)
        else:
            _external_sort(inputs, slice_size, work, memory_bytes, write)
    shutil.rmtree(work, ignore_errors=True)
    return repeats.repeated


def _external_sort(
    inputs: list[_Hashes], slice_size: int, work: str, memory_bytes: int, sink: Callable[[np.ndarray], None]
) -> None:
    """Sorted runs on disk, merged in passes of at most `fan_in` runs until one pass can feed `sink`."""
    os.makedirs(work, exist_ok=True)
    runs = []
    for entries in _sorted_slices(inputs, slice_size):  # not enumerate(): its cached tuple keeps the slice
        runs.append(_Run(os.path.join(work, f"pass0-run{len(runs):06d}.bin"), len(entries)))
        entries.tofile(runs[-1].path)
        del entries  # before the next slice is read
    fan_in = max(2, memory_bytes // (_MERGE_BYTES * _MIN_BLOCK))
    level = 0
    while len(runs) > fan_in:
        level += 1
        merged = []
        for g in range(0, len(runs), fan_in):
            group = runs[g : g + fan_in]
            path = os.path.join(work, f"pass{level}-run{len(merged):06d}.bin")
            with open(path, "wb") as fh:
                _merge(group, memory_bytes, lambda block, fh=fh: block.tofile(fh))
            merged.append(_Run(path, sum(r.count for r in group)))
            for run in group:
                os.remove(run.path)
        runs = merged
    _merge(runs, memory_bytes, sink)
