"""Documents I/O: every format round-trips; every kind of bad input names its file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import zstandard

from dolma_kit.documents import Document, DocumentWriter, JsonlWriter, read_documents
from dolma_kit.errors import BadRecordError
from dolma_kit.storage import atomic_write
from tests.conftest import write_lines

DOCS = [
    Document(
        id="a", text="first\nline two", source="s", added="2026-01-01", metadata={"url": "http://x.example"}
    ),
    Document(
        id="b", text="ünïcödé 中文 😀", source="s", created="2020-05-05", metadata={"n": 3, "tags": ["x"]}
    ),
    Document(id="c", text="", source="s"),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    path = str(tmp_path / f"shard{suffix}")
    with DocumentWriter(path) as out:
        for doc in DOCS:
            out.write(doc)
    back = list(read_documents(path))
    assert [(d.id, d.text, d.source, d.added, d.created, d.metadata) for d in back] == [
        (d.id, d.text, d.source, d.added, d.created, d.metadata) for d in DOCS
    ]
    assert [d.line for d in back] == [1, 2, 3]
    assert all(d.path == path for d in back)


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst", ".parquet"])
def test_writes_are_byte_identical(tmp_path: Path, suffix: str) -> None:
    paths = [str(tmp_path / f"{i}{suffix}") for i in range(2)]
    for path in paths:
        with DocumentWriter(path) as out:
            for doc in DOCS:
                out.write(doc)
    assert Path(paths[0]).read_bytes() == Path(paths[1]).read_bytes()


def test_zstd_concatenated_frames(tmp_path: Path) -> None:
    cctx = zstandard.ZstdCompressor()
    path = tmp_path / "multi.jsonl.zst"
    path.write_bytes(
        cctx.compress(b'{"id":"1","text":"one"}\n') + cctx.compress(b'{"id":"2","text":"two"}\n')
    )
    assert [d.text for d in read_documents(str(path))] == ["one", "two"]


def test_source_defaults_to_folder(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "documents" / "books" / "0.jsonl", [{"id": "x", "text": "t"}])
    assert next(read_documents(str(path))).source == "books"


BAD_LINES = [
    (b'{"id": "1", "text": "ok"', "malformed JSON"),
    (b'{"text": "no id"}', "missing 'id'"),
    (b'{"id": 7, "text": "int id"}', "'id' must be a string"),
    (b'{"id": "1"}', "missing 'text'"),
    (b'{"id": "1", "text": ["list"]}', "'text' must be a string"),
    (b'["not", "an", "object"]', "expected a JSON object"),
    (b"   ", "blank line"),
    (b'{"id": "1", "text": "bad \xff\xfe bytes"}', "invalid UTF-8"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_LINES)
def test_bad_record_names_file_and_line(tmp_path: Path, bad: bytes, reason: str) -> None:
    path = write_lines(tmp_path / "s.jsonl", [{"id": "0", "text": "good"}, bad, {"id": "2", "text": "good"}])
    with pytest.raises(BadRecordError) as info:
        list(read_documents(str(path)))
    assert info.value.line == 2
    assert reason in str(info.value)
    assert f"{path}:2" in str(info.value)


def test_skip_bad_collects_and_continues(tmp_path: Path) -> None:
    lines: list[bytes | dict] = [{"id": "0", "text": "good"}]
    lines += [bad for bad, _ in BAD_LINES]
    lines.append({"id": "9", "text": "good"})
    path = write_lines(tmp_path / "s.jsonl", lines)
    rejected: list[BadRecordError] = []
    docs = list(read_documents(str(path), on_bad=rejected.append))
    assert [d.id for d in docs] == ["0", "9"]
    assert [r.line for r in rejected] == list(range(2, 2 + len(BAD_LINES)))
    raw = rejected[-1].to_reject()["raw"]
    assert isinstance(raw, str) and "\\xff" in raw  # undecodable bytes are kept, escaped


def _many_lines(n: int) -> bytes:
    return b"".join(b'{"id":"%d","text":"document number %d with some text"}\n' % (i, i) for i in range(n))


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(_many_lines(5000))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    seen = []
    with pytest.raises(BadRecordError, match="truncated or corrupt gzip") as info:
        for doc in read_documents(str(path)):
            seen.append(doc)
    assert seen, "documents before the cut are still read"
    assert info.value.line == len(seen) + 1
    assert str(path) in str(info.value)


def test_truncated_zstd(tmp_path: Path) -> None:
    data = zstandard.ZstdCompressor().compress(_many_lines(5000))
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadRecordError, match="truncated or corrupt zstd"):
        list(read_documents(str(path)))


def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    with DocumentWriter(str(path)) as out:
        for doc in DOCS:
            out.write(doc)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(BadRecordError, match="not a readable parquet file"):
        list(read_documents(str(path)))


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.jsonl.gz", "empty.jsonl.zst"])
def test_empty_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(b""))
    elif name.endswith(".zst"):
        path.write_bytes(zstandard.ZstdCompressor().compress(b""))
    else:
        path.write_bytes(b"")
    with pytest.raises(BadRecordError, match="empty file") as info:
        list(read_documents(str(path)))
    assert info.value.line == 0


def test_atomic_write_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out" / "x.jsonl.gz"
    with pytest.raises(RuntimeError), JsonlWriter(str(target)) as out:
        out.write({"a": 1})
        raise RuntimeError("boom")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(RuntimeError), atomic_write(str(target)) as fh:
        fh.write(b"partial")
        raise RuntimeError("boom")
    assert list((tmp_path / "out").iterdir()) == []


DATATROVE_ROWS = [  # datatrove's JsonlWriter: text, id, media, metadata (the source inside metadata)
    {"text": "a page about the river", "id": "d0", "media": [], "metadata": {"source": "web", "url": "u"}},
    {"text": "a forum post", "id": "d1", "media": [], "metadata": {"source": "forum"}},
    {"text": "no source at all", "id": "d2", "media": [], "metadata": {}},
    {"text": "top level wins", "id": "d3", "source": "top", "metadata": {"source": "inner"}},
]
SOURCE_TAGGER = """
from dolma_kit.taggers.base import Tagger, whole_document
from dolma_kit.taggers.registry import register_tagger


@register_tagger("source_is_web_v1")
class SourceIsWeb(Tagger):
    def predict(self, doc):
        return [whole_document(doc, "web", float(doc.source == "web"))]

    def attribute_names(self):
        return ["web"]
"""


def test_source_falls_back_to_datatrove_metadata(tmp_path: Path) -> None:
    """datatrove writes `metadata.source`; without a top-level `source` that names it, not the folder."""
    from typer.testing import CliRunner

    from dolma_kit.cli import app
    from dolma_kit.provenance import TokenizedDir
    from tests.conftest import DEMO_TOKENIZER

    path = tmp_path / "jsonl" / "00000.jsonl.gz"  # datatrove's default output name, in its default folder
    with JsonlWriter(str(path)) as out:
        for row in DATATROVE_ROWS:
            out.write(row)
    assert [d.source for d in read_documents(str(path))] == ["web", "forum", "jsonl", "top"]
    tagger = tmp_path / "source_tagger.py"
    tagger.write_text(SOURCE_TAGGER)
    runner = CliRunner()
    tagged = runner.invoke(app, ["tag", "-d", str(path), "-e", "e", "-t", "source_is_web_v1",
                                 "--tagger-modules", str(tagger), "--destination", str(tmp_path / "attrs"),
                                 "-p", "1"])  # fmt: skip
    assert tagged.exit_code == 0, tagged.output
    (attr_file,) = (tmp_path / "attrs").rglob("*.jsonl.gz")
    with gzip.open(attr_file, "rt") as fh:
        rows = [__import__("json").loads(line) for line in fh]
    assert [r["attributes"]["e__source_is_web_v1__web"][0][2] for r in rows] == [1.0, 0.0, 0.0, 0.0]
    out = tmp_path / "tokens"
    done = runner.invoke(app, ["tokenize", "-d", str(path), "--destination", str(out),
                               "--tokenizer", str(DEMO_TOKENIZER), "-p", "1"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert TokenizedDir.open(out).sources == ["forum", "jsonl", "top", "web"]
