"""`dolma-kit tokenize-adopt`: OLMo memmaps, datatrove `.ds` and Megatron `.bin/.idx` written here by hand
(their formats as their writers' public code lays them out) become tokenized folders that train reads."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.errors import DolmaKitError
from dolma_kit.provenance import TokenizedDir
from dolma_kit.tokenize.adopt import MEGATRON_HEADER, AdoptConfig, adopt
from tests.conftest import DEMO_TOKENIZER

EOS = 0
DOCS = [[5, 6, 7, EOS], [8, EOS], [9, 10, 11, 12, 13, EOS], [300, EOS]]


def flat(docs: list[list[int]]) -> list[int]:
    return [t for d in docs for t in d]


def write_olmo(folder: Path, name: str, docs: list[list[int]], dtype: str = "uint16") -> Path:
    path = folder / f"{name}.npy"
    path.write_bytes(np.array(flat(docs), dtype=np.dtype(dtype).newbyteorder("<")).tobytes())
    return path


def write_datatrove(folder: Path, name: str, docs: list[list[int]], token_size: int = 2) -> Path:
    """`<name>.ds` raw tokens, `.ds.index` uint64 document ends, `.ds.metadata` `tokenizer|size` first."""
    path = folder / f"{name}.ds"
    path.write_bytes(struct.pack(f"<{len(flat(docs))}{'I' if token_size == 4 else 'H'}", *flat(docs)))
    ends = np.cumsum([len(d) for d in docs]).astype("<u8")
    (folder / f"{name}.ds.index").write_bytes(ends.tobytes())
    (folder / f"{name}.ds.metadata").write_text(f"demo-bpe|{token_size}\n{ends[-1]}\n{ends[-1]}T")
    return path


def write_megatron(folder: Path, name: str, docs: list[list[int]], code: int = 8) -> Path:
    """`<name>.bin` sequences back to back; `.idx`: header, version, dtype code, counts, sizes, pointers,
    document indices (one sequence per document here, and the sentinel)."""
    dtype = {8: "<u2", 4: "<i4", 3: "<i2", 5: "<i8"}[code]
    path = folder / f"{name}.bin"
    path.write_bytes(np.array(flat(docs), dtype=dtype).tobytes())
    sizes = np.array([len(d) for d in docs], dtype="<i4")
    pointers = (np.concatenate([[0], np.cumsum(sizes)[:-1]]) * np.dtype(dtype).itemsize).astype("<i8")
    doc_index = np.arange(len(docs) + 1, dtype="<i8")
    header = MEGATRON_HEADER + struct.pack("<QBQQ", 1, code, len(docs), len(doc_index))
    (folder / f"{name}.idx").write_bytes(header + sizes.tobytes() + pointers.tobytes() + doc_index.tobytes())
    return path


def documents_of(tokenized: TokenizedDir) -> list[list[int]]:
    out = []
    for i in range(len(tokenized.parts)):
        tokens, starts = tokenized.tokens(i), tokenized.document_starts(i)
        ends = [*starts[1:].tolist(), tokenized.num_tokens(i)]
        out += [tokens[s:e].tolist() for s, e in zip(starts.tolist(), ends, strict=True)]
    return out


@pytest.mark.parametrize(
    "write",
    [
        lambda f: write_olmo(f, "part-0-00000", DOCS),
        lambda f: write_datatrove(f, "000_tokenized", DOCS),
        lambda f: write_datatrove(f, "000_tokenized", DOCS, token_size=4),
        lambda f: write_megatron(f, "shard_00000", DOCS),
        lambda f: write_megatron(f, "shard_00000", DOCS, code=4),
    ],
    ids=["olmo", "datatrove", "datatrove-4", "megatron", "megatron-int32"],
)
def test_each_format_is_adopted_and_traced(tmp_path: Path, write) -> None:
    folder = tmp_path / "c4"
    folder.mkdir()
    path = write(folder)
    dtype = "uint16" if path.suffix == ".npy" else None
    manifest = adopt(AdoptConfig(files=[str(path)], eos_id=EOS, dtype=dtype))
    tokenized = TokenizedDir.open(folder)
    assert documents_of(tokenized) == DOCS and manifest["documents"] == 4
    assert tokenized.sources == ["c4"] and manifest["vocab_size"] == 301
    hit = tokenized.locate(0, 7)  # token 9, the third document
    assert (hit.start, hit.end, hit.loc, hit.src) == (6, 12, 3, str(path))
    assert tokenized.find_document(hit.id) == [hit]


def test_the_cli_adopts_several_files_and_train_reads_them(tmp_path: Path) -> None:
    from train.data import DataConfig

    folder = tmp_path / "foreign"
    folder.mkdir()
    files = [write_datatrove(folder, f"{i:03d}", DOCS * 3) for i in range(2)]
    result = CliRunner().invoke(app, ["tokenize-adopt", *map(str, files), "--tokenizer", str(DEMO_TOKENIZER),
                                      "--source", "web"])  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["vocab_size"] == 1024 and manifest["tokenizer"]["name"] == "demo-bpe.json"
    dataset = DataConfig(paths=[str(folder)], seq_len=4).build()
    assert dataset.num_instances == 2 * (len(flat(DOCS * 3)) // 4) and dataset.sources == ["web"]
    again = CliRunner().invoke(app, ["tokenize-adopt", str(files[0]), "--eos-id", "0"])
    assert isinstance(again.exception, DolmaKitError) and "--force" in str(again.exception)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda f: write_olmo(f, "x", [[5, 6]]), "does not end with EOS"),
        (lambda f: (f / "y.npy").write_bytes(b"\x93NUMPY" + bytes(10)) and f / "y.npy", "with a header"),
        (lambda f: (write_datatrove(f, "z", DOCS) and (f / "z.ds.index").unlink()) or f / "z.ds", "no z.ds.index"),
        (lambda f: write_megatron(f, "m", DOCS, code=5), "dtype code 5"),
    ],
)  # fmt: skip
def test_foreign_files_that_cannot_be_read_are_named(tmp_path: Path, write, message: str) -> None:
    path = write(tmp_path)
    with pytest.raises(DolmaKitError, match=message):
        adopt(AdoptConfig(files=[str(path)], eos_id=EOS, dtype="uint16"))
