"""The bad-input matrix: every malformed class × every data stage, strict and with `--skip-bad`.

Each cell writes one corpus whose `web` shard holds the fault (a bad record between two good ones, or a bad file)
beside a clean `wiki` shard, runs the stage through the CLI, and checks what the user gets:
- strict: a `DolmaKitError` (the CLI prints it as one `error:` line, never a traceback) naming the file, and the
  line for a record fault; no `.done` marker for the bad shard and no temp file left behind;
- `--skip-bad`: success; every shard marker adds up (in = kept + removed + rejected); the fault is counted
  (a rejected record, or a rejected file) and written to a rejects file with its file and line.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.errors import DolmaKitError
from tests.conftest import DEMO_TOKENIZER

GOOD = [
    {
        "id": f"g{i}",
        "text": f"Good document number {i} has a few words about rivers, hills and towns.\nA second line.",
    }
    for i in range(2)
]
EVAL_TEXT = "the quick brown fox jumps over the lazy dog near the quiet river bank at dawn"

#: record faults: the raw line written between two good documents (so it is line 2)
RECORDS: dict[str, bytes] = {
    "malformed json": b'{"id": "x", "text": ',
    "invalid utf-8": b'{"id":"x","text":"caf\xe9"}',
    "blank line": b"   ",
    "not an object": b"[1, 2]",
    "missing id": b'{"text":"no id here"}',
    "missing text": b'{"id":"x"}',
    "id not a string": b'{"id":5,"text":"t"}',
    "empty id": b'{"id":" ","text":"t"}',
    "lone surrogate in text": b'{"id":"x","text":"a \\ud800 b"}',
    "lone surrogate in id": b'{"id":"x\\udfff","text":"fine text"}',
    "nested too deeply": b'{"id":"x","text":"t","metadata":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
}


def _jsonl(docs: list[dict]) -> bytes:
    return b"".join(json.dumps(d).encode() + b"\n" for d in docs)


def _write_empty(path: Path) -> Path:
    path = path.with_name("part-0000.jsonl")
    path.write_bytes(b"")
    return path


def _write_zero_gz(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _write_truncated_gz(path: Path) -> Path:
    docs = [{"id": f"t{i}", "text": f"line {i} " + "word " * (i % 97)} for i in range(3000)]
    data = gzip.compress(_jsonl(docs), mtime=0)
    path.write_bytes(data[: len(data) // 2])
    return path


def _write_misnamed_zst(path: Path) -> Path:
    path = path.with_name("part-0000.jsonl.zst")
    path.write_bytes(gzip.compress(_jsonl(GOOD), mtime=0))
    return path


def _write_bad_parquet(path: Path) -> Path:
    path = path.with_name("part-0000.parquet")
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), path)
    return path


#: file faults: a writer given the default shard path (…/web/part-0000.jsonl.gz) that writes the bad file
FILES: dict[str, Callable[[Path], Path]] = {
    "empty file": _write_empty,
    "zero-byte gzip": _write_zero_gz,
    "truncated gzip": _write_truncated_gz,
    "gzip named .zst": _write_misnamed_zst,
    "parquet without id/text": _write_bad_parquet,
}

STAGES: dict[str, Callable[[Path, Path], list[str]]] = {
    "tag": lambda root, out: ["tag", "-d", f"{root}/documents/*/*", "-e", "t", "-t", "char_length"],
    "dedup exact": lambda root, out: [
        "dedup",
        "exact",
        "-d",
        f"{root}/documents/*/*",
        "-e",
        "x",
        "--key",
        "text",
    ],
    "dedup minhash": lambda root, out: ["dedup", "minhash", "-d", f"{root}/documents/*/*", "-e", "m"],
    "decontaminate": lambda root, out: [
        "decontaminate",
        "--eval",
        str(root.parent / "eval.jsonl"),
        "-d",
        f"{root}/documents/*/*",
        "-e",
        "c",
        "--ngram",
        "8",
        "--min-words",
        "5",
    ],
    "mix": lambda root, out: ["mix", str(root.parent / "recipe.yaml")],
    "tokenize": lambda root, out: [
        "tokenize",
        "-d",
        f"{root}/documents/*/*",
        "--destination",
        str(out),
        "--tokenizer",
        str(DEMO_TOKENIZER),
    ],
    "stats": lambda root, out: ["stats", str(root), "--output", str(out)],
}

#: file faults that still hold readable records before the fault: counted as one rejected record at the cut
TRUNCATED = ("truncated gzip",)
CASES = [(kind, "record") for kind in RECORDS] + [(kind, "file") for kind in FILES]


def make_corpus(tmp_path: Path, kind: str, level: str) -> tuple[Path, Path]:
    """(corpus root, the bad shard)."""
    root = tmp_path / "corpus"
    wiki = root / "documents" / "wiki" / "part-0000.jsonl.gz"
    wiki.parent.mkdir(parents=True)
    wiki.write_bytes(gzip.compress(_jsonl([{**d, "id": "w" + d["id"]} for d in GOOD]), mtime=0))
    bad = root / "documents" / "web" / "part-0000.jsonl.gz"
    bad.parent.mkdir(parents=True)
    if level == "record":
        lines = [json.dumps(GOOD[0]).encode(), RECORDS[kind], json.dumps(GOOD[1]).encode()]
        bad.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))
    else:
        bad = FILES[kind](bad)
    (tmp_path / "eval.jsonl").write_text(json.dumps({"text": EVAL_TEXT}) + "\n")
    (tmp_path / "recipe.yaml").write_text(
        f"streams:\n  - name: all\n    documents: ['{root}/documents/*/*']\n    output: {{path: {tmp_path}/mixed}}\n"
    )
    return root, bad


def _markers(tmp_path: Path) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text())) for p in tmp_path.rglob("*.done")]


def _rejects(tmp_path: Path) -> list[dict]:
    rows = []
    for path in tmp_path.rglob("rejects/**/*.jsonl.gz"):
        rows += [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines() if line]
    return rows


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize(("kind", "level"), CASES)
def test_strict_run_fails_cleanly(tmp_path: Path, stage: str, kind: str, level: str) -> None:
    root, bad = make_corpus(tmp_path, kind, level)
    result = CliRunner().invoke(app, [*STAGES[stage](root, tmp_path / "out"), "-p", "1"])
    assert isinstance(result.exception, DolmaKitError), (result.exception, result.output)
    message = str(result.exception)
    assert str(bad) in message, message
    if level == "record":
        assert f"{bad}:2" in message, message
    assert not [p for p in tmp_path.rglob("*.tmp*")], "temp files left behind"
    assert not [p for p, _ in _markers(tmp_path) if p.name.startswith(bad.name) and "web" in str(p)]


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize(("kind", "level"), CASES)
def test_skip_bad_counts_and_keeps_every_fault(tmp_path: Path, stage: str, kind: str, level: str) -> None:
    root, bad = make_corpus(tmp_path, kind, level)
    result = CliRunner().invoke(app, [*STAGES[stage](root, tmp_path / "out"), "-p", "1", "--skip-bad"])
    assert result.exit_code == 0, (result.exception, result.output)
    markers = _markers(tmp_path)
    assert markers
    for path, m in markers:
        assert m["documents_in"] == m["kept"] + m["removed"] + m["rejected"], (path, m)
    counted = [m for p, m in markers if m["shard"].startswith("web/") or "/web/" in m["shard"]]
    assert counted, [m["shard"] for _, m in markers]
    rows = [r for r in _rejects(tmp_path) if r["file"] == str(bad)]
    if level == "record":
        assert all(m["rejected"] == 1 and m["documents_in"] == 3 for m in counted), counted
        assert rows and all(r["line"] == 2 for r in rows), rows
    elif kind in TRUNCATED:  # the records before the cut are read; the rest is one reject at the next line
        assert all(m["rejected"] == 1 for m in counted), counted
        assert rows and all(r["line"] == counted[0]["documents_in"] for r in rows), (rows, counted)
    else:
        assert all(m["rejected_files"] and str(bad) in m["rejected_files"][0] for m in counted), counted
        assert rows and all(r["line"] == 0 for r in rows), rows
    assert not [p for p in tmp_path.rglob("*.tmp*")], "temp files left behind"


def test_mix_after_tag_lines_up_with_an_all_rejected_shard(tmp_path: Path) -> None:
    """tag --skip-bad writes an empty attribute file for a shard none of whose records is readable; mix
    --skip-bad must take it (no documents, no attribute lines) rather than refuse it as an empty file."""
    root, _ = make_corpus(tmp_path, "empty file", "file")
    docs = f"{root}/documents/*/*"
    runner = CliRunner()
    result = runner.invoke(app, ["tag", "-d", docs, "-e", "t", "-t", "char_length", "-p", "1", "--skip-bad"])
    assert result.exit_code == 0, (result.exception, result.output)
    (tmp_path / "recipe.yaml").write_text(
        f"streams:\n  - name: all\n    documents: ['{docs}']\n    attributes: [t]\n"
        f"    filter: {{exclude: ['char_length.length < 1']}}\n    output: {{path: {tmp_path}/mixed}}\n"
    )
    result = runner.invoke(app, ["mix", str(tmp_path / "recipe.yaml"), "-p", "1", "--skip-bad"])
    assert result.exit_code == 0, (result.exception, result.output)
    markers = {m["shard"]: m for _, m in _markers(tmp_path) if "_mix" in str(_)}
    web = next(m for k, m in markers.items() if "web" in k)
    assert web["documents_in"] == 0 and web["rejected_files"], web
