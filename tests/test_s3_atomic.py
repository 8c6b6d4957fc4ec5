"""Object storage end to end: a failed write leaves no object (and no open upload), transient errors are retried.

Against a moto server on 127.0.0.1 (the `s3_bucket` fixture of test_s3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from smart_open.s3 import DEFAULT_PART_SIZE

from dolma_kit import storage
from dolma_kit.documents import Document, DocumentWriter
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.stage import TagConfig, tag
from tests.conftest import write_lines
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
