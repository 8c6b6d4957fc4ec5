"""A run killed mid-way and re-run gives output byte-identical to a run that never stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dolma_kit.documents import Document, DocumentWriter
from tests.conftest import FIXTURES

SHARDS = 6
DOCS_PER_SHARD = 150


def make_corpus(root: Path) -> None:
    for shard in range(SHARDS):
        with DocumentWriter(str(root / "documents" / "web" / f"part-{shard:04d}.jsonl.gz")) as out:
            for i in range(DOCS_PER_SHARD):
                text = f"Document {i} of shard {shard}. " * (1 + i % 7) + "\nContact: someone@example.org"
                out.write(Document(id=f"{shard}-{i}", text=text, source="web"))


def tag_command(root: Path) -> list[str]:
    return [
        sys.executable, "-m", "dolma_kit", "tag",
        "--documents", f"{root}/documents/web/*.jsonl.gz",
        "--experiment", "k",
        "--taggers", "char_length", "slow_echo_v1:seconds=0.002",
        "--tagger-modules", str(FIXTURES / "user_taggers.py"),
        "--processes", "2",
    ]  # fmt: skip


def outputs(root: Path) -> dict[str, bytes]:
    attr = root / "attributes" / "k" / "web"
    return {p.name: p.read_bytes() for p in sorted(attr.iterdir()) if not p.name.endswith(".done")}


@pytest.mark.slow
def test_kill_and_resume_is_byte_identical(tmp_path: Path) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    make_corpus(clean)
    make_corpus(killed)
    subprocess.run(tag_command(clean), check=True, capture_output=True)

    proc = subprocess.Popen(tag_command(killed), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    markers = killed / "attributes" / "k" / "web"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = list(markers.glob("*.done")) if markers.exists() else []
        if len(done) >= 1:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(markers.glob("*.done")))
    assert 1 <= finished < SHARDS, "the kill must land mid-run for this test to mean anything"
    # what a killed run leaves is either complete (renamed) or a hidden temp file, never a partial shard
    visible = [p for p in markers.iterdir() if not p.name.startswith(".")]
    for path in visible:
        if path.name.endswith(".jsonl.gz"):
            assert path.read_bytes() == (clean / "attributes" / "k" / "web" / path.name).read_bytes()

    resumed = subprocess.run(tag_command(killed), check=True, capture_output=True, text=True)
    assert outputs(killed) == outputs(clean)
    assert len(outputs(clean)) == SHARDS
    assert "skipped" in resumed.stdout
