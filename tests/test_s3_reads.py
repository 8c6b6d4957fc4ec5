"""A read from S3 that fails in the middle of the stream is one line naming the object (`s3://bucket/key`).

smart_open resumes a stream whose connection dropped by reopening it at the current offset; what it gives up
with (S3 unreachable or throttling past botocore's retries on the reopen, or a connection that breaks on
every reopen) must come out as a `StorageError` naming the object, not a bare botocore error or smart_open's
own repr. S3 is a moto server on 127.0.0.1 (the `s3_bucket` fixture of test_s3); the broken connection is a
botocore `before-send` hook that answers GetObject with a body that stops short.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import numpy as np
import pytest

from dolma_kit import storage
from tests.test_s3 import s3_bucket  # noqa: F401  (the moto server fixture)

DATA = os.urandom(3 << 20)  # several smart_open buffers: the first reads succeed, a later one fails


class _BrokenBody:
    """An HTTP body that delivers `good` bytes and then breaks, as a connection reset does."""

    def __init__(self, data: bytes, good: int) -> None:
        self.data, self.good, self.pos = data, good, 0

    def read(self, amt: int | None = None) -> bytes:
        import urllib3

        if self.pos >= self.good:
            raise urllib3.exceptions.ProtocolError("Connection broken: ConnectionResetError(104)")
        n = len(self.data) if amt is None else amt
        out = self.data[self.pos : min(self.pos + n, self.good)]
        self.pos += len(out)
        return out

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.read()

    def close(self) -> None:
        pass


class BreaksMidStream:
    """Answers GetObject (honouring its Range) with a body that breaks after `first` bytes; every later request
    gets `then`: "slowdown" (S3 throttling past the retries), "down" (unreachable) or "broken" (a body that
    breaks at once)."""

    def __init__(self, data: bytes, first: int, then: str) -> None:
        self.data, self.first, self.then, self.calls = data, first, then, 0

    def __call__(self, request, **_: object):
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import EndpointConnectionError

        self.calls += 1
        if self.calls > 1 and self.then == "down":
            raise EndpointConnectionError(endpoint_url=request.url)
        if self.calls > 1 and self.then == "slowdown":
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            return AWSResponse(request.url, 503, {}, _BrokenBody(body, len(body)))
        asked = request.headers.get("Range", b"bytes=0-")
        start = int(
            re.match(rb"bytes=(\d+)-", asked if isinstance(asked, bytes) else asked.encode()).group(1)
        )
        end = len(self.data) - 1
        headers = {
            "Content-Range": f"bytes {start}-{end}/{len(self.data)}",
            "Content-Length": str(end - start + 1),
        }
        good = self.first if self.calls == 1 else 0
        return AWSResponse(request.url, 206, headers, _BrokenBody(self.data[start:], good))


@pytest.fixture
def broken_object(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object]]:  # noqa: F811
    """(url, client) of an object on the moto server; register a `BreaksMidStream` on the client to break it."""
    import smart_open.s3

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # botocore's retries run out at once
    monkeypatch.setattr(smart_open.s3.time, "sleep", lambda seconds: None)  # smart_open's reopen pauses
    url = f"{s3_bucket}/data/blob.npy"
    client = storage.s3_client()
    client.put_object(Bucket=s3_bucket.removeprefix("s3://"), Key="data/blob.npy", Body=DATA)
    yield url, client


@pytest.mark.parametrize(
    ("then", "reason"),
    [
        ("slowdown", r"S3 answered SlowDown: Please reduce your request rate\."),
        ("down", r"S3 unreachable after retries \(Could not connect to the endpoint URL: .*\)"),
        ("broken", r"the connection to S3 broke \(failed to read \d+ bytes after 5 attempts\)"),
    ],
)
def test_a_stream_broken_mid_read_names_the_object(broken_object, then: str, reason: str) -> None:
    url, client = broken_object
    hook = BreaksMidStream(DATA, first=1 << 20, then=then)
    client.meta.events.register("before-send.s3.GetObject", hook)
    try:
        with storage.open_raw(url) as fh, pytest.raises(storage.StorageError) as failed:
            while fh.read(1 << 16):
                pass
    finally:
        client.meta.events.unregister("before-send.s3.GetObject", hook)
    assert hook.calls > 1, "the first body broke and smart_open reopened the stream"
    message = str(failed.value)
    assert re.fullmatch(rf"{re.escape(url)}: cannot read from byte [\d,]+: {reason}", message), message
    assert failed.value.transient, "S3 throttling or unreachable, a broken connection: worth a retry"


def test_one_dropped_connection_is_resumed_with_the_same_bytes(broken_object) -> None:
    """What smart_open recovers from stays recovered: the reopened stream continues at the right offset."""
    url, client = broken_object
    hook = BreaksMidStream(DATA, first=1 << 20, then="fine")
    hook_fine = lambda request, **kw: hook(request) if hook.calls == 0 else None  # noqa: E731
    client.meta.events.register("before-send.s3.GetObject", hook_fine)
    try:
        with storage.open_raw(url) as fh:
            assert fh.read() == DATA
    finally:
        client.meta.events.unregister("before-send.s3.GetObject", hook_fine)
    assert hook.calls == 1


def test_seeking_reads_and_npy_headers_go_through_the_named_handle(broken_object) -> None:
    url, _ = broken_object
    array = np.arange(1000, dtype=np.uint32)
    with storage.atomic_write(url) as fh:
        np.save(fh, array, allow_pickle=False)
    with storage.open_raw(url) as fh:
        assert fh.seekable() and fh.name == url
        assert np.load(fh).tolist() == array.tolist()


def test_a_document_shard_broken_mid_stream_is_a_storage_error_not_a_reject(
    s3_bucket: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gzip shard whose S3 stream breaks is not "truncated or corrupt gzip data": no reject is counted for
    the rest of the shard (`--skip-bad`), the error names the object, and it stays transient (Ray retries)."""
    import gzip
    import random

    import smart_open.s3

    from dolma_kit.documents import iter_raw_lines

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setattr(smart_open.s3.time, "sleep", lambda seconds: None)
    rng = random.Random(0)
    texts = ["".join(rng.choice("abcdefgh ") for _ in range(400)) for _ in range(8000)]
    lines = [f'{{"id": "d{i}", "text": "{text}"}}'.encode() for i, text in enumerate(texts)]
    body = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)
    url = f"{s3_bucket}/documents/web/part-0.jsonl.gz"
    client = storage.s3_client()
    client.put_object(Bucket=s3_bucket.removeprefix("s3://"), Key="documents/web/part-0.jsonl.gz", Body=body)
    hook = BreaksMidStream(body, first=len(body) // 3, then="down")
    client.meta.events.register("before-send.s3.GetObject", hook)
    try:
        with pytest.raises(storage.StorageError) as failed:
            for _ in iter_raw_lines(url):
                pass
    finally:
        client.meta.events.unregister("before-send.s3.GetObject", hook)
    assert str(failed.value).startswith(f"{url}: cannot read from byte ")
    assert failed.value.transient
