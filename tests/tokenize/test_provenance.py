"""Provenance lookups against brute force on the shared tokenized demo (tests/conftest.py `tokenized_demo`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dolma_kit.provenance import DocumentLocation, ProvenanceError, TokenizedDir
from tests.conftest import corpus_documents


def brute_force(tokenized: TokenizedDir) -> list[DocumentLocation]:
    """Every document from the human-readable parquet index (a different file than the lookups read)."""
    out = []
    for name in tokenized.parts:
        for row in pq.read_table(tokenized.path / f"{name}.index.parquet").to_pylist():
            out.append(DocumentLocation(part=name, **row))
    return out


def test_locate_every_token_matches_brute_force(tokenized_demo: Path) -> None:
    tokenized = TokenizedDir.open(tokenized_demo)
    documents = brute_force(tokenized)
    assert len(tokenized.parts) > 3  # parts were rolled at 600 tokens
    checked = 0
    for part_index, name in enumerate(tokenized.parts):
        for offset in range(tokenized.num_tokens(part_index)):
            expected = [d for d in documents if d.part == name and d.start <= offset < d.end]
            assert len(expected) == 1
            assert tokenized.locate(part_index, offset) == expected[0]
            checked += 1
    assert checked == tokenized.manifest["tokens"]
    assert tokenized.locate("part-00000", 0) == tokenized.locate(0, 0)


def test_documents_tile_each_part_and_end_with_eos(tokenized_demo: Path) -> None:
    tokenized = TokenizedDir.open(tokenized_demo)
    for i in range(len(tokenized.parts)):
        starts, codes, tokens = (
            tokenized.document_starts(i),
            tokenized.document_sources(i),
            tokenized.tokens(i),
        )
        assert starts.dtype == np.int64 and codes.dtype == np.int16 and isinstance(starts, np.memmap)
        assert starts[0] == 0 and np.all(np.diff(starts) > 0) and len(codes) == len(starts)
        ends = np.append(starts[1:], tokenized.num_tokens(i))
        assert np.all(tokens[ends - 1] == tokenized.eos_id)
        assert np.count_nonzero(tokens == tokenized.eos_id) == len(starts)  # EOS only at document ends
        with pytest.raises(ValueError):
            tokens[0] = 1  # read-only


def test_find_document_every_id(tokenized_demo: Path) -> None:
    tokenized = TokenizedDir.open(tokenized_demo)
    for doc in brute_force(tokenized):
        assert tokenized.find_document(doc.id) == [doc]
        assert tokenized.find_document(doc.id, doc.source) == [doc]
        other = next(s for s in tokenized.sources if s != doc.source)
        assert tokenized.find_document(doc.id, other) == []
    assert tokenized.find_document("no-such-id") == []
    by_source = {s: {d.id for d in docs} for s, docs in corpus_documents().items()}
    assert {s: {d.id for d in brute_force(tokenized) if d.source == s} for s in by_source} == by_source


def test_hash_collisions_are_verified(
    tokenized_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every id forged to the same hash: the id strings still pick the right document."""
    copy = tmp_path / "copy"
    shutil.copytree(tokenized_demo, copy)
    hashes = np.load(copy / "id_index.hashes.npy")
    np.save(copy / "id_index.hashes.npy", np.full_like(hashes, 7))
    monkeypatch.setattr("dolma_kit.provenance.id_hash", lambda _: 7)
    tokenized = TokenizedDir.open(copy)
    for doc in brute_force(tokenized):
        assert tokenized.find_document(doc.id) == [doc]
    assert tokenized.find_document("no-such-id") == []


def test_open_errors(tokenized_demo: Path, tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match=r"no manifest\.json"):
        TokenizedDir.open(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ProvenanceError, match="unreadable"):
        TokenizedDir.open(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(tokenized_demo, copy)
    (copy / "part-00001.npy").write_bytes(b"\0\0")
    with pytest.raises(ProvenanceError, match=r"part-00001.npy: missing or not"):
        TokenizedDir.open(copy)
    tokenized = TokenizedDir.open(tokenized_demo)
    with pytest.raises(ProvenanceError, match="out of range"):
        tokenized.locate(0, tokenized.num_tokens(0))
    with pytest.raises(ProvenanceError, match="no part"):
        tokenized.locate("part-99999", 0)
    assert json.loads((tokenized_demo / "manifest.json").read_text())["sources"] == ["forum", "web", "wiki"]
