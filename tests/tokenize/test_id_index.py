"""The external-merge id index against the in-memory stable argsort it replaced, byte for byte.

Small memory budgets force many runs, several merge passes and blocks of a few entries; the inputs carry
equal hashes within and across parts (repeated ids and 64-bit collisions between different ids) and empty parts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dolma_kit.provenance import ID_INDEX_FILES, TokenizedDir
from dolma_kit.tokenize import id_index
from dolma_kit.tokenize.id_index import IdIndexError, build_id_index

PARTS_PER_CASE = 7


def write_parts(
    folder: Path, ids: list[list[str]], hashes: list[np.ndarray], sources: list[np.ndarray]
) -> list[str]:
    """The part files the index reads: id hashes, id strings (blob + offsets) and source codes."""
    names = []
    for k, (part_ids, part_hashes, part_sources) in enumerate(zip(ids, hashes, sources, strict=True)):
        name = f"part-{k:05d}"
        blob = [i.encode() for i in part_ids]
        np.save(folder / f"{name}.id_hashes.npy", part_hashes.astype(np.uint64))
        (folder / f"{name}.ids.bin").write_bytes(b"".join(blob))
        np.save(folder / f"{name}.ids.offsets.npy", np.cumsum([0, *map(len, blob)]).astype(np.int64))
        np.save(folder / f"{name}.sources.npy", part_sources.astype(np.int16))
        names.append(name)
    return names


def reference(folder: Path, names: list[str]) -> tuple[dict[str, bytes], dict[int, int]]:
    """What the in-memory build wrote (np.save of a stable argsort) and its repeated-id count, brute force."""
    hashes = [np.load(folder / f"{n}.id_hashes.npy") for n in names]
    counts = [len(h) for h in hashes]
    all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    parts = np.repeat(np.arange(len(names), dtype=np.uint32), counts)
    docs = (
        np.concatenate([np.arange(c, dtype=np.uint32) for c in counts]) if counts else np.zeros(0, np.uint32)
    )
    order = np.argsort(all_hashes, kind="stable")
    out = folder / "_reference"
    out.mkdir()
    files = {}
    for key, values in (("hashes", all_hashes), ("parts", parts), ("docs", docs)):
        np.save(out / ID_INDEX_FILES[key], values[order])
        files[ID_INDEX_FILES[key]] = (out / ID_INDEX_FILES[key]).read_bytes()
    shutil.rmtree(out)
    seen, repeated = set(), {}
    for n in names:
        blob = (folder / f"{n}.ids.bin").read_bytes()
        offsets, sources = np.load(folder / f"{n}.ids.offsets.npy"), np.load(folder / f"{n}.sources.npy")
        for d in range(len(offsets) - 1):
            key = (int(sources[d]), blob[offsets[d] : offsets[d + 1]].decode())
            if key in seen:
                repeated[key[0]] = repeated.get(key[0], 0) + 1
            seen.add(key)
    return files, repeated


def corpus(folder: Path, seed: int, sizes: list[int]) -> list[str]:
    """Parts of these sizes: ids drawn from a small pool (so ids repeat, in one source or across two), and
    hashes from a smaller one (so different ids collide), which makes long runs of equal hashes."""
    rng = np.random.default_rng(seed)
    pool = [f"doc-{i}" for i in range(max(1, sum(sizes) // 2))]
    fake_hash = rng.integers(0, 2**64 - 1, size=max(1, len(pool) // 3), dtype=np.uint64, endpoint=True)
    ids, hashes, sources = [], [], []
    for size in sizes:
        picks = rng.integers(0, len(pool), size=size)
        ids.append([pool[p] for p in picks])
        hashes.append(fake_hash[picks % len(fake_hash)])
        sources.append(rng.integers(0, 2, size=size))
    return write_parts(folder, ids, hashes, sources)


def index_files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ID_INDEX_FILES.values()}


@pytest.mark.parametrize("memory_bytes", [144, 1000, 5000, id_index.MEMORY_BYTES])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_in_memory_argsort(tmp_path: Path, memory_bytes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(0, 90, size=PARTS_PER_CASE)]
    sizes[2] = sizes[-1] = 0  # empty parts, inside and at the end
    names = corpus(tmp_path, seed, sizes)
    expected, repeated = reference(tmp_path, names)
    assert repeated  # the case really has repeats
    assert build_id_index(str(tmp_path), names, memory_bytes=memory_bytes) == repeated
    assert index_files(tmp_path) == expected
    assert not (tmp_path / "_work" / id_index.WORK_DIR).exists()  # runs deleted


def test_many_runs_and_merge_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget of 144 bytes sorts runs of 3 entries and merges 2 at a time: ~log2(300/3) passes."""
    names = corpus(tmp_path, 3, [150, 0, 120, 30])
    expected, repeated = reference(tmp_path, names)
    merges = []
    real_merge = id_index._merge
    monkeypatch.setattr(id_index, "_merge", lambda runs, *a: (merges.append(len(runs)), real_merge(runs, *a)))
    assert build_id_index(str(tmp_path), names, memory_bytes=144) == repeated
    assert index_files(tmp_path) == expected
    assert len(merges) > 50 and max(merges) == 2


def test_all_equal_hashes_keep_input_order(tmp_path: Path) -> None:
    sizes = [5, 0, 9, 4]
    ids = [[f"p{k}-{d}" for d in range(n)] for k, n in enumerate(sizes)]
    names = write_parts(
        tmp_path, ids, [np.full(n, 42, np.uint64) for n in sizes], [np.zeros(n) for n in sizes]
    )
    expected, _ = reference(tmp_path, names)
    assert build_id_index(str(tmp_path), names, memory_bytes=200) == {}  # collisions are not repeats
    assert index_files(tmp_path) == expected
    parts, docs = np.load(tmp_path / ID_INDEX_FILES["parts"]), np.load(tmp_path / ID_INDEX_FILES["docs"])
    assert list(zip(parts.tolist(), docs.tolist(), strict=True)) == [
        (k, d) for k, n in enumerate(sizes) for d in range(n)
    ]


@pytest.mark.parametrize("sizes", [[], [0, 0]])
def test_no_documents(tmp_path: Path, sizes: list[int]) -> None:
    names = corpus(tmp_path, 0, sizes)
    expected, _ = reference(tmp_path, names)
    assert build_id_index(str(tmp_path), names, memory_bytes=1000) == {}
    assert index_files(tmp_path) == expected


def test_a_killed_build_leaves_the_old_index_and_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = corpus(tmp_path, 5, [40, 40])
    expected, _ = reference(tmp_path, names)
    (tmp_path / "_work" / id_index.WORK_DIR).mkdir(parents=True)
    (tmp_path / "_work" / id_index.WORK_DIR / "pass0-run000007.bin").write_bytes(b"stale")

    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(id_index, "_merge", killed)
    with pytest.raises(KeyboardInterrupt):
        build_id_index(str(tmp_path), names, memory_bytes=200)
    assert not any((tmp_path / name).exists() for name in ID_INDEX_FILES.values())  # nothing half-written
    monkeypatch.undo()
    build_id_index(str(tmp_path), names, memory_bytes=200)
    assert index_files(tmp_path) == expected
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files


def test_bad_hash_file_is_named(tmp_path: Path) -> None:
    names = corpus(tmp_path, 0, [4])
    np.save(tmp_path / "part-00000.id_hashes.npy", np.zeros((2, 2), np.uint64))
    with pytest.raises(IdIndexError, match=r"part-00000\.id_hashes\.npy: id hashes of shape \(2, 2\)"):
        build_id_index(str(tmp_path), names)
    (tmp_path / "part-00000.id_hashes.npy").write_bytes(b"not numpy")
    with pytest.raises(IdIndexError, match=r"part-00000\.id_hashes\.npy: cannot read the id hashes"):
        build_id_index(str(tmp_path), names)


def test_lookups_on_an_index_rebuilt_in_a_tiny_budget(tokenized_demo: Path, tmp_path: Path) -> None:
    """The shared tokenized demo with its index rebuilt at 144 bytes: same bytes, and find_document answers."""
    copy = tmp_path / "tokens"
    shutil.copytree(tokenized_demo, copy, ignore=shutil.ignore_patterns("_work"))
    before = index_files(copy)
    for name in ID_INDEX_FILES.values():
        (copy / name).unlink()
    tokenized = TokenizedDir.open(tokenized_demo)
    assert build_id_index(str(copy), tokenized.parts, memory_bytes=144) == {}
    assert index_files(copy) == before
    rebuilt = TokenizedDir.open(copy)
    for part in range(len(rebuilt.parts)):
        for doc in range(0, len(rebuilt.document_starts(part)), 7):
            location = rebuilt._location(part, doc)
            assert rebuilt.find_document(location.id, source=location.source) == [location]


def test_repeats_across_more_parts_than_stay_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(id_index, "_OPEN_PARTS", 2)
    names = corpus(tmp_path, 9, [30] * 12)
    expected, repeated = reference(tmp_path, names)
    assert build_id_index(str(tmp_path), names, memory_bytes=500) == repeated
    assert index_files(tmp_path) == expected
