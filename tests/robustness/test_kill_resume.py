"""Kill-and-resume, per stage: SIGKILL a run once k shard markers exist (several k, counted on disk, not timed),
re-run it, and every output file equals an uninterrupted run's byte for byte, with no temp file left behind.

tag and mix have their own kill tests (tests/test_resume_after_kill.py, tests/mix/test_kill.py), tokenize too
(tests/tokenize/test_kill.py); this covers the multi-pass stages and the report.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dolma_kit.documents import Document, DocumentWriter

SHARDS = 8
DOCS = 120
KILL_AT = (1, 5)  # markers on disk when the run is killed


def make_corpus(root: Path) -> None:
    for shard in range(SHARDS):
        with DocumentWriter(str(root / "documents" / "web" / f"part-{shard:04d}.jsonl.gz")) as out:
            for i in range(DOCS):
                base = f"Shard {shard % 3} document {i % 40} talks about rivers and hills and the towns between them. "
                out.write(Document(id=f"{shard}-{i}", text=base * (1 + i % 5) + f"\nLine {i}.", source="web"))
    (root / "eval.jsonl").write_text(
        '{"text": "shard 1 document 7 talks about rivers and hills and the towns"}\n'
    )


STAGES: dict[str, Callable[[Path], list[str]]] = {
    "dedup exact": lambda root: [
        "dedup",
        "exact",
        "-d",
        f"{root}/documents/*/*",
        "-e",
        "x",
        "--key",
        "paragraphs",
    ],
    "dedup minhash": lambda root: ["dedup", "minhash", "-d", f"{root}/documents/*/*", "-e", "m"],
    "decontaminate": lambda root: [
        "decontaminate",
        "--eval",
        str(root / "eval.jsonl"),
        "-d",
        f"{root}/documents/*/*",
        "-e",
        "c",
        "--ngram",
        "8",
    ],
    "stats": lambda root: ["stats", str(root), "--output", str(root / "report")],
}
#: files whose bytes carry timing (seconds, progress): compared without it or not at all
TIMED = ("_summary.json", ".done", "report.html", "stats.json")


def command(stage: str, root: Path) -> list[str]:
    return [sys.executable, "-m", "dolma_kit", *STAGES[stage](root), "-p", "1"]


def outputs(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(TIMED) and "documents" not in p.parts
    }


def kill_when(cmd: list[str], root: Path, markers: int) -> bool:
    """Run `cmd`, SIGKILL it once `markers` `.done` files exist; True when it was killed before finishing."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if len(list(root.rglob("*.done"))) >= markers:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


def reset(root: Path) -> None:
    """Everything a run wrote goes; the corpus stays (same paths: outputs record where they came from)."""
    for path in sorted(root.iterdir()):
        if path.name not in ("documents", "eval.jsonl"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_killed_and_resumed_equals_uninterrupted(tmp_path: Path, stage: str) -> None:
    root = tmp_path / "corpus"
    make_corpus(root)
    subprocess.run(command(stage, root), check=True, capture_output=True)
    expected = outputs(root)
    assert expected
    killed_somewhere = False
    for k in KILL_AT:
        reset(root)
        killed_somewhere |= kill_when(command(stage, root), root, k)
        done = subprocess.run(command(stage, root), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert outputs(root) == expected, f"{stage}: resumed after {k} markers differs"
        assert not [p for p in root.rglob("*.tmp*")], "temp files left behind"
    assert killed_somewhere, f"{stage} finished before any kill point: make the corpus bigger"
