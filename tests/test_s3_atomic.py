"""Failed writes: no partial output, one clean error line naming the file, and a re-run that resumes.

Object storage: a failed write leaves no object (and no open upload), transient errors are retried, an outage
longer than the retries names the object and the next run aborts the upload it left. Local disks: a full disk
(or any write error, in a worker process too) names the file. S3 runs against a moto server on 127.0.0.1 (the
`s3_bucket` fixture of test_s3).
"""

from __future__ import annotations

import errno
import io
import os
import re
import resource
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from smart_open.s3 import DEFAULT_PART_SIZE

from dolma_kit import storage
from dolma_kit.cli import main
from dolma_kit.documents import Document, DocumentWriter
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.stage import TagConfig, tag
from tests.conftest import CORPUS, write_lines
from tests.test_s3 import s3_bucket  # noqa: F401  (the moto server fixture)


class Boom(Exception):
    """Raised inside a write, as a failing stage would."""


def objects(bucket_url: str) -> list[str]:
    bucket = bucket_url.removeprefix("s3://")
    return [o["Key"] for o in storage.s3_client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def open_uploads(bucket_url: str) -> list[str]:
    bucket = bucket_url.removeprefix("s3://")
    return [u["Key"] for u in storage.s3_client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@pytest.mark.parametrize("size", [10, DEFAULT_PART_SIZE + 1])  # in the buffer; one part already uploaded
def test_failed_atomic_write_leaves_no_object_and_keeps_the_old_one(s3_bucket: str, size: int) -> None:  # noqa: F811
    url = f"{s3_bucket}/out/file.bin"
    storage.write_text(url, "old content\n")
    with pytest.raises(Boom), storage.atomic_write(url) as fh:
        fh.write(os.urandom(size))
        raise Boom
    assert storage.read_text(url) == "old content\n"
    with pytest.raises(Boom), storage.atomic_write(f"{s3_bucket}/out/new.bin") as fh:
        fh.write(os.urandom(size))
        raise Boom
    assert objects(s3_bucket) == ["out/file.bin"]
    assert open_uploads(s3_bucket) == [], "a failed upload must be aborted, not left open"


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst", ".parquet"])
def test_failed_document_writer_leaves_no_object(s3_bucket: str, suffix: str) -> None:  # noqa: F811
    url = f"{s3_bucket}/documents/web/part-0000{suffix}"
    with pytest.raises(Boom), DocumentWriter(url) as out:
        for i in range(100):
            out.write(Document(id=str(i), text="text " * 50, source="web"))
        raise Boom
    assert objects(s3_bucket) == []
    assert open_uploads(s3_bucket) == []


def test_a_failed_shard_on_s3_leaves_no_attribute_object(s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    bad = write_lines(
        tmp_path / "part-0000.jsonl", [{"id": str(i), "text": "t " * 9} for i in range(50)] + [b"{x"]
    )
    storage.s3_client().upload_file(
        str(bad), s3_bucket.removeprefix("s3://"), "documents/web/part-0000.jsonl"
    )
    with pytest.raises(DolmaKitError, match=r"part-0000\.jsonl:51"):
        tag(TagConfig(documents=[f"{s3_bucket}/documents/web/*.jsonl"], experiment="e",
                      taggers=["char_length"], processes=1))  # fmt: skip
    assert objects(s3_bucket) == ["documents/web/part-0000.jsonl"]
    assert open_uploads(s3_bucket) == []


class FailingFirst:
    """A botocore `before-send` hook answering the first `times` requests with 503 SlowDown (S3's throttling)."""

    def __init__(self, times: int) -> None:
        self.left = times

    def __call__(self, request, **_: object):
        from botocore.awsrequest import AWSResponse

        if self.left <= 0:
            return None  # send the request
        self.left -= 1
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return AWSResponse(request.url, 503, {}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.body


def test_transient_errors_are_retried(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    url = f"{s3_bucket}/k.txt"
    storage.write_text(url, "hello\n")
    client = storage.s3_client()
    hook = FailingFirst(1)
    client.meta.events.register("before-send.s3.GetObject", hook)
    try:
        assert storage.read_text(url) == "hello\n"  # the throttled request was retried
        assert hook.left == 0
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # the environment overrides our retries: now it fails
        single = storage.s3_client()
        assert single is not client
        single.meta.events.register("before-send.s3.GetObject", FailingFirst(1))
        with pytest.raises(Exception, match=r"SlowDown|503"):
            storage.read_text(url)
    finally:
        client.meta.events.unregister("before-send.s3.GetObject", hook)


# --------------------------------------------------------------------------------------------- clean errors


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`dolma-kit ARGS` in this process (monkeypatches hold): (exit status, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return exited.value.code or 0, capsys.readouterr().err


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below `root`, hidden temp files included; markers (which hold timings) as their names."""
    return {str(p.relative_to(root)): b"" if p.name.endswith(".done") else p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith("_summary.json")}  # fmt: skip


class FullDisk(io.FileIO):
    """A file on a full disk: writing fails as the kernel says when no block is left."""

    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_is_one_line_naming_the_file_and_a_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = f"{CORPUS}/documents/*/*.jsonl"
    command = ["tag", "--documents", documents, "--experiment", "e", "--taggers", "char_length", "-p", "1"]
    run_cli(capsys, *command, "--destination", str(tmp_path / "clean"))
    monkeypatch.setattr(storage, "io", types.SimpleNamespace(FileIO=FullDisk))
    code, err = run_cli(capsys, *command, "--destination", str(tmp_path / "full"))
    assert code == 2
    assert re.fullmatch(rf"error: {tmp_path}/full/\w+/part-0000\.jsonl: no space left on device\n", err), err
    assert not (tmp_path / "full").exists() or not list((tmp_path / "full").rglob("*.jsonl*")), (
        "no partial file"
    )
    monkeypatch.undo()
    assert run_cli(capsys, *command, "--destination", str(tmp_path / "full"))[0] == 0
    assert files_under(tmp_path / "full") == files_under(tmp_path / "clean")


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))  # Python ignores SIGXFSZ: writes fail with EFBIG


@pytest.mark.slow
def test_a_write_error_in_a_worker_process_is_one_line_naming_the_file(tmp_path: Path) -> None:
    for shard in range(4):  # random ids: attribute files that compress to well over the 1 KiB limit
        with DocumentWriter(str(tmp_path / "documents" / "web" / f"part-{shard:04d}.jsonl.gz")) as out:
            for _ in range(300):
                out.write(Document(id=os.urandom(8).hex(), text="text", source="web"))
    command = [sys.executable, "-m", "dolma_kit", "tag", "--documents", f"{tmp_path}/documents/web/*.jsonl.gz",
               "--experiment", "k", "--taggers", "char_length", "--processes", "2"]  # fmt: skip
    failed = subprocess.run(command, capture_output=True, text=True, preexec_fn=limit_file_size, timeout=60)
    assert failed.returncode == 2, failed.stderr
    attributes = tmp_path / "attributes" / "k"
    assert re.fullmatch(rf"error: {attributes}/web/part-\d{{4}}\.jsonl\.gz: file too large\n", failed.stderr)
    subprocess.run(command, check=True, capture_output=True)
    assert len(list((attributes / "web").glob("*.done"))) == 4


class Outage:
    """A botocore `before-send` hook: from the first `UploadPart` on, every request fails as it does when the
    server is gone (after the client's retries), until `end()`."""

    def __init__(self) -> None:
        self.state = "up"

    def __call__(self, request: object, event_name: str, **_: object) -> None:
        from botocore.exceptions import EndpointConnectionError

        if self.state == "up" and event_name.endswith(".UploadPart"):
            self.state = "down"
        if self.state == "down":
            raise EndpointConnectionError(endpoint_url=request.url)  # type: ignore[attr-defined]

    def end(self) -> None:
        self.state = "over"


def test_an_s3_outage_is_one_line_naming_the_object_and_the_rerun_aborts_its_upload(
    s3_bucket: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # the outage outlasts the retries at once
    client = storage.s3_client()
    bucket = s3_bucket.removeprefix("s3://")
    for path in sorted(CORPUS.glob("documents/*/*.jsonl")):
        client.upload_file(str(path), bucket, str(path.relative_to(CORPUS)))
    command = ["tag", "--documents", f"{s3_bucket}/documents/*/*.jsonl", "--experiment", "e",
               "--taggers", "char_length", "-p", "1"]  # fmt: skip
    outage = Outage()
    client.meta.events.register("before-send.s3", outage)
    try:
        code, err = run_cli(capsys, *command)
        outage.end()
        assert code == 2
        match = re.fullmatch(rf"error: ({s3_bucket}/attributes/e/\w+/part-0000\.jsonl): cannot write: S3 "
                             r"unreachable after retries \(Could not connect to the endpoint URL: .*\)\n", err)  # fmt: skip
        assert match, err
        key = match.group(1).removeprefix(f"{s3_bucket}/")
        assert open_uploads(s3_bucket) == [key], "S3 was down: the upload could not be aborted then"
        code, err = run_cli(capsys, *command)
        assert code == 0, err
    finally:
        client.meta.events.unregister("before-send.s3", outage)
    assert open_uploads(s3_bucket) == [], "the re-run aborts the upload the failed run left"
    here = tag(TagConfig(documents=[f"{CORPUS}/documents/*/*.jsonl"], experiment="e", taggers=["char_length"],
                         processes=1, destination=str(tmp_path)))  # fmt: skip
    for shard in here.shards:
        body = client.get_object(Bucket=bucket, Key=f"attributes/e/{shard.shard}")["Body"].read()
        assert body == (tmp_path / shard.shard).read_bytes()
