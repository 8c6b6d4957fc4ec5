"""One run per destination: a second run on it is refused at once, a lock left by a dead run is taken over
(locally and on S3), and the lock is gone when the run ends."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dolma_kit import storage
from dolma_kit.executor import lock
from dolma_kit.executor.lock import LOCK_NAME, DestinationInUse, destination_locks
from dolma_kit.taggers.stage import TagConfig, tag
from tests.conftest import CORPUS
from tests.test_s3 import s3_bucket  # noqa: F401  (the moto server fixture)
from tests.test_signals import DOCS_PER_SHARD, SHARDS, make_corpus, tag_command


def dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def lock_text(pid: int, host: str | None = None, since: float | None = None) -> str:
    holder = {"pid": pid, "host": host or socket.gethostname(), "since": since or time.time(), "token": "t"}
    return json.dumps(holder) + "\n"


def tag_fixture_corpus(documents: str, **options: object):
    return tag(
        TagConfig(documents=[documents], experiment="e", taggers=["char_length"], processes=1, **options)
    )


@pytest.mark.slow
def test_a_second_run_on_the_same_destination_is_refused_at_once(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    first = subprocess.Popen(tag_command(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    attributes = tmp_path / "attributes" / "k"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (attributes / "web").exists():
            time.sleep(0.01)  # the first run holds the lock before it writes its first shard
        started = time.monotonic()
        second = subprocess.run(tag_command(tmp_path), capture_output=True, text=True, timeout=60)
        refused_after = time.monotonic() - started
        first_still_running = first.poll() is None
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {attributes}: in use by PID {first.pid} on "
                                                   f"{socket.gethostname()} since "), second.stderr  # fmt: skip
    assert "Traceback" not in second.stderr
    assert first_still_running and refused_after < 10, "refused while the first run ran, not after waiting"
    assert first.returncode == 0, err
    # the first run finished undisturbed: every shard complete, line-aligned with its documents
    for shard in range(SHARDS):
        with gzip.open(attributes / "web" / f"part-{shard:04d}.jsonl.gz", "rt") as fh:
            rows = [json.loads(line) for line in fh]
        assert [r["id"] for r in rows] == [f"{shard}-{i}" for i in range(DOCS_PER_SHARD)]
        assert (attributes / "web" / f"part-{shard:04d}.jsonl.gz.done").exists()
    assert not (attributes / LOCK_NAME).exists(), "the lock is released when the run ends"


def test_a_lock_held_in_this_process_refuses_a_run_and_is_released(tmp_path: Path) -> None:
    documents = f"{CORPUS}/documents/*/*.jsonl"
    root = tmp_path / "attributes" / "e"
    with (
        destination_locks([str(root)]),
        pytest.raises(DestinationInUse, match=rf"in use by PID {os.getpid()}"),
    ):
        tag_fixture_corpus(documents, destination=str(root))
    assert not (root / LOCK_NAME).exists()
    assert tag_fixture_corpus(documents, destination=str(root)).total.documents_in == 12


def test_a_lock_left_by_a_dead_run_is_taken_over(tmp_path: Path) -> None:
    root = tmp_path / "attributes" / "e"
    root.mkdir(parents=True)
    (root / LOCK_NAME).write_text(lock_text(dead_pid()))  # what a SIGKILLed run leaves behind
    result = tag_fixture_corpus(f"{CORPUS}/documents/*/*.jsonl", destination=str(root))
    assert result.total.documents_in == 12
    assert not (root / LOCK_NAME).exists()


# --------------------------------------------------------------------------------------------- s3


def upload_fixture_corpus(bucket_url: str) -> str:
    client = storage.s3_client()
    for path in sorted(CORPUS.glob("documents/*/*.jsonl")):
        client.upload_file(str(path), bucket_url.removeprefix("s3://"), str(path.relative_to(CORPUS)))
    return f"{bucket_url}/documents/*/*.jsonl"


def put_lock(bucket_url: str, text: str) -> None:
    key = f"attributes/e/{LOCK_NAME}"
    storage.s3_client().put_object(Bucket=bucket_url.removeprefix("s3://"), Key=key, Body=text.encode())


def test_s3_a_live_lock_refuses_a_run_and_says_how_it_goes_stale(s3_bucket: str) -> None:  # noqa: F811
    documents = upload_fixture_corpus(s3_bucket)
    with destination_locks([f"{s3_bucket}/attributes/e"]):
        with pytest.raises(DestinationInUse) as refused:
            tag_fixture_corpus(documents)
        assert storage.exists(f"{s3_bucket}/attributes/e/{LOCK_NAME}")
    message = str(refused.value)
    assert f"in use by PID {os.getpid()} on {socket.gethostname()}" in message
    assert "cannot tell whether its holder still runs" in message
    assert f"delete {s3_bucket}/attributes/e/{LOCK_NAME}" in message
    assert not storage.exists(f"{s3_bucket}/attributes/e/{LOCK_NAME}"), "released when the block ended"


@pytest.mark.parametrize("left_by", ["a dead PID on this host", "another host, not renewed"])
def test_s3_a_stale_lock_is_taken_over(s3_bucket: str, monkeypatch: pytest.MonkeyPatch, left_by: str) -> None:  # noqa: F811
    documents = upload_fixture_corpus(s3_bucket)
    if left_by.startswith("a dead"):
        put_lock(s3_bucket, lock_text(dead_pid()))
    else:
        put_lock(s3_bucket, lock_text(1, host="elsewhere"))
        with pytest.raises(DestinationInUse, match="in use by PID 1 on elsewhere"):
            tag_fixture_corpus(documents)
        monkeypatch.setattr(lock, "S3_STALE_SECONDS", 0.0)  # as if it had not been renewed for an hour
    assert tag_fixture_corpus(documents).total.documents_in == 12
    assert not storage.exists(f"{s3_bucket}/attributes/e/{LOCK_NAME}")
