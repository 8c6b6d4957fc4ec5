"""SIGTERM and SIGINT stop a run at once: workers ended, one line saying how far it got, exit 143 / 130, and a
re-run resumes to output byte-identical to a run that never stopped."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dolma_kit.documents import Document, DocumentWriter
from tests.conftest import FIXTURES

SHARDS = 6
DOCS_PER_SHARD = 40  # x 10 ms: each shard takes about 0.4 s, the whole run 1-2 s on two workers


def make_corpus(root: Path) -> None:
    for shard in range(SHARDS):
        with DocumentWriter(str(root / "documents" / "web" / f"part-{shard:04d}.jsonl.gz")) as out:
            for i in range(DOCS_PER_SHARD):
                out.write(Document(id=f"{shard}-{i}", text=f"Document {i} of shard {shard}. " * (1 + i % 5)))


def tag_command(root: Path) -> list[str]:
    return [
        sys.executable, "-m", "dolma_kit", "tag",
        "--documents", f"{root}/documents/web/*.jsonl.gz",
        "--experiment", "k",
        "--taggers", "char_length", "slow_echo_v1:seconds=0.01",
        "--tagger-modules", str(FIXTURES / "user_taggers.py"),
        "--processes", "2",
    ]  # fmt: skip


def outputs(root: Path) -> dict[str, bytes]:
    attr = root / "attributes" / "k" / "web"
    return {p.name: p.read_bytes() for p in sorted(attr.iterdir()) if not p.name.endswith(".done")}


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (read from /proc: psutil is not a dependency)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: the workers are the forkserver's children, not the driver's."""
    found, stack = [], children(pid)
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children(child))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that may never come counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def interrupt(
    proc: subprocess.Popen, root: Path, signum: int, whole_group: bool
) -> tuple[float, str, list[int]]:
    """Send `signum` once the first shard is done; return how long the run took to stop, its stderr, and the
    processes it had started that are still running shortly after it ended."""
    markers = root / "attributes" / "k" / "web"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (markers.exists() and list(markers.glob("*.done"))):
        time.sleep(0.01)
    workers = descendants(proc.pid)
    assert len(workers) >= 3, (
        "the run must have worker processes (and their forkserver) when the signal comes"
    )
    sent = time.monotonic()
    if whole_group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    _, stderr = proc.communicate(timeout=20)  # orphaned workers would hold the pipe open
    stopped = time.monotonic() - sent
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.02)
    return stopped, stderr, [pid for pid in workers if alive(pid)]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The attribute shards of a run that never stopped."""
    root = tmp_path_factory.mktemp("clean")
    make_corpus(root)
    subprocess.run(tag_command(root), check=True, capture_output=True)
    assert len(outputs(root)) == SHARDS
    return outputs(root)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "whole_group"),
    [
        (signal.SIGTERM, 143, False),  # `kill PID`: only the driver gets it
        (signal.SIGINT, 130, True),  # Ctrl-C in a terminal: the whole process group gets it
    ],
    ids=["sigterm", "sigint"],
)
def test_a_signal_ends_the_workers_and_a_rerun_resumes(
    tmp_path: Path, clean: dict[str, bytes], signum: int, code: int, whole_group: bool
) -> None:
    make_corpus(tmp_path)
    proc = subprocess.Popen(tag_command(tmp_path), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        stopped, stderr, lingering = interrupt(proc, tmp_path, signum, whole_group)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever a failing run left behind
    assert proc.returncode == code, stderr
    assert stopped < 5, f"the run took {stopped:.1f} s to stop"
    markers = tmp_path / "attributes" / "k" / "web"
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(rf"interrupted: (\d+) of {SHARDS} shards done, re-run to resume",
                                            lines[0]), stderr  # fmt: skip
    done = int(lines[0].split()[1])
    assert 1 <= done < SHARDS, "the signal must land mid-run for this test to mean anything"
    assert len(list(markers.glob("*.done"))) == done
    assert not lingering, "worker processes outlived the run"
    # no partial shard is visible: only complete outputs (each with its marker) or hidden temp files
    for path in markers.iterdir():
        if path.name.endswith(".jsonl.gz"):
            assert path.read_bytes() == clean[path.name]

    resumed = subprocess.run(tag_command(tmp_path), check=True, capture_output=True, text=True)
    assert "skipped" in resumed.stdout
    assert outputs(tmp_path) == clean


@pytest.mark.slow
def test_workers_die_with_a_sigkilled_driver(tmp_path: Path) -> None:
    """SIGKILL runs no cleanup: the workers end because their parent (the forkserver) ends with the driver and
    each worker asked the kernel to kill it when its parent dies. No orphan keeps writing."""
    make_corpus(tmp_path)
    proc = subprocess.Popen(tag_command(tmp_path), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _, _, lingering = interrupt(proc, tmp_path, signal.SIGKILL, whole_group=False)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not lingering, "worker processes (or their forkserver) outlived a SIGKILLed driver"
