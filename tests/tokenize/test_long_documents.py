"""`tokenize` on long documents: the same bytes in pieces as whole, and memory bounded by the piece size."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from tokenizers import Tokenizer

from dolma_kit.documents import Document, DocumentWriter
from dolma_kit.provenance import TokenizedDir
from dolma_kit.tokenize.encoding import piecewise_blocker
from dolma_kit.tokenize.reading import Batches
from tests.conftest import DEMO_TOKENIZER
from tests.tokenize.test_tokenize import WORDS, output_files, run

ROOT = Path(__file__).resolve().parents[2]
ODD = ["\n", "\n\n", "  ", "\t", "é", "e\u0301", "жизнь", "日本語", "😀", "42,", "3.14"]
ODD += ["|||EMAIL_ADDRESS|||", "<|endoftext|>"]


def long_text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) if rng.random() < 0.9 else rng.choice(ODD) for _ in range(words))


def write_shard(path: Path, docs: list[tuple[str, str]]) -> None:
    with DocumentWriter(str(path)) as out:
        for doc_id, text in docs:
            out.write(Document(id=doc_id, text=text, source=path.parent.name))


def test_long_document_in_pieces_is_byte_identical(tmp_path: Path) -> None:
    """A 3 M-character document among short ones: pieces of 1,000 characters and whole texts give the same
    parts, and the document's tokens are those of encoding its text at once."""
    assert piecewise_blocker(Tokenizer.from_file(str(DEMO_TOKENIZER))) is None  # the piecewise path is taken
    rng = random.Random(0)
    text = long_text(rng, 600_000)
    assert len(text) > 3_000_000
    short = [(f"s{i}", long_text(rng, rng.randrange(1, 300))) for i in range(40)]
    write_shard(
        tmp_path / "documents" / "web" / "part-0000.jsonl.gz", [*short[:20], ("long", text), *short[20:]]
    )
    write_shard(tmp_path / "documents" / "wiki" / "part-0000.jsonl.gz", short[:5])
    documents = str(tmp_path / "documents" / "*" / "*.jsonl.gz")
    options = {"max_tokens_per_file": 200_000, "shuffle_window": 8}
    run(documents, tmp_path / "pieces", piece_chars=1_000, **options)
    run(documents, tmp_path / "whole", piece_chars=0, **options)
    assert output_files(tmp_path / "pieces") == output_files(tmp_path / "whole")

    tokenized = TokenizedDir.open(tmp_path / "pieces")
    (hit,) = tokenized.find_document("long", source="web")
    ids = np.fromfile(tmp_path / "pieces" / f"{hit.part}.npy", dtype=np.uint16)[hit.start : hit.end]
    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    tok.encode_special_tokens = True
    assert ids.tolist() == [*tok.encode(text).ids, tokenized.eos_id]


def test_window_closes_at_its_token_budget(tmp_path: Path) -> None:
    """With `shuffle_window_tokens`, windows are runs of input documents that just reach the budget, each
    shuffled on its own; without it (the default budget) the whole file is one window."""
    rng = random.Random(1)
    docs = [(f"d{i:03d}", long_text(rng, rng.randrange(5, 120))) for i in range(120)]
    write_shard(tmp_path / "documents" / "web" / "part-0000.jsonl.gz", docs)
    documents = str(tmp_path / "documents" / "*" / "*.jsonl.gz")
    manifest = run(documents, tmp_path / "small", shuffle_window=1_000, shuffle_window_tokens=2_000)
    assert manifest["shuffle_window_tokens"] == 2_000
    index = pq.read_table(tmp_path / "small" / "part-00000.index.parquet").to_pylist()
    lengths = {row["id"]: row["end"] - row["start"] for row in index}
    windows, current, size = [], set(), 0
    for doc_id, _ in docs:
        current.add(doc_id)
        size += lengths[doc_id]
        if size >= 2_000:
            windows.append(current)
            current, size = set(), 0
    windows.append(current)
    assert len(windows) > 5
    written = [row["id"] for row in index]
    at = 0
    for window in windows:
        assert set(written[at : at + len(window)]) == window
        at += len(window)
    assert written != [d for d, _ in docs]  # shuffled within windows
    run(documents, tmp_path / "default", shuffle_window=1_000)
    whole = [
        row["id"] for row in pq.read_table(tmp_path / "default" / "part-00000.index.parquet").to_pylist()
    ]
    assert sorted(whole) == sorted(written) and whole != written
    # the same bound from the command line: the same windows, so the same bytes
    from typer.testing import CliRunner

    from dolma_kit.cli import app

    args = ["tokenize", "-d", documents, "--destination", str(tmp_path / "cli"), "--tokenizer"]
    args += [str(DEMO_TOKENIZER), "-p", "1", "--shuffle-window", "1000", "--shuffle-window-tokens", "2000"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cli = pq.read_table(tmp_path / "cli" / "part-00000.index.parquet").column("id").to_pylist()
    assert cli == written


def test_reader_waits_while_a_long_document_is_encoded(tmp_path: Path) -> None:
    """Past `ahead_chars` of unencoded text the reader thread reads nothing more until the batch is released:
    a second long document never joins the first in memory."""
    shard = tmp_path / "documents" / "web" / "part-0000.jsonl.gz"
    write_shard(shard, [("a", "x " * 5_000), ("b", "y " * 5_000), ("c", "z")])
    batches = Batches(str(shard), skip_bad=False, max_docs=100, batch_chars=1_000, ahead_chars=2_000)
    it = iter(batches)
    first = next(it)
    assert [d.id for d in first.docs] == ["a"]
    got: list = []
    thread = threading.Thread(target=lambda: got.append(next(it)), daemon=True)
    thread.start()
    thread.join(0.5)
    assert not got  # blocked: "a" is not released yet
    batches.release(first.chars)
    thread.join(10)
    assert [d.id for d in got[0].docs] == ["b"]
    batches.release(got[0].chars)
    assert [d.id for b in it for d in b.docs] == ["c"]


def test_long_document_memory_is_bounded(tmp_path: Path) -> None:
    """A 4 M-character document took ~760 MB when encoded whole (and 9 GB at 50 M); in pieces the whole
    `dolma-kit tokenize` process stays near its base (~150 MB)."""
    rng = random.Random(2)
    write_shard(tmp_path / "documents" / "web" / "part-0000.jsonl.gz", [("long", long_text(rng, 800_000))])
    args = ["tokenize", "-d", str(tmp_path / "documents" / "*" / "*.jsonl.gz"), "--destination"]
    args += [str(tmp_path / "tokens"), "--tokenizer", str(DEMO_TOKENIZER), "-p", "1"]
    measure = (  # in a fresh parent, so no earlier child of this test run counts
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    command = [sys.executable, "-c", measure, sys.executable, "-m", "dolma_kit", *args]
    peak_mb = int(subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout) / 1024
    assert peak_mb < 350, peak_mb
