"""S3 through one boto3 client per process: errors named by object, listing, atomic multipart writes, reads.

The client is configured from the usual AWS environment variables (AWS_ENDPOINT_URL[_S3], credentials, region,
profile) and retries transient errors (throttling, 5xx, dropped connections) with botocore's exponential
backoff; AWS_RETRY_MODE / AWS_MAX_ATTEMPTS override our defaults. smart_open's own extra retry layer (6 more
tries, 10 s apart, which loses the error) is turned off; its resumption of a read whose connection dropped
(reopened at the offset reached) is kept, and what it gives up with names the object (`S3Reader`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import io
import os
import re
import sys
from collections.abc import Iterator
from typing import IO, Any, cast
from urllib.parse import urlparse

from dolma_kit.storage.base import GLOB_CHARS, FileInfo, StorageError, static_prefix

# Retries when the environment sets none: botocore's "standard" mode (exponential backoff with jitter on
# throttling, 5xx, timeouts and connection errors), more attempts than its default 3 since a shard task that
# fails here redoes the whole shard.
S3_RETRY_MODE = "standard"
S3_MAX_ATTEMPTS = 10


def _s3_failure(url: str, doing: str, exc: BaseException | None) -> StorageError | None:
    """A botocore error as a `StorageError` naming `url`; None for any other exception."""
    botocore = sys.modules.get("botocore.exceptions")  # loaded whenever an S3 call was made
    if botocore is None or exc is None:
        return None
    if isinstance(exc, botocore.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        transient = status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout")
        return StorageError(url, f"{doing}: S3 answered {code}: {error.get('Message', '')}".rstrip(": "),
                            transient=transient)  # fmt: skip
    if isinstance(exc, (botocore.ConnectionError, botocore.HTTPClientError)):
        return StorageError(url, f"{doing}: S3 unreachable after retries ({exc})", transient=True)
    if isinstance(exc, botocore.BotoCoreError):
        return StorageError(url, f"{doing}: {exc}")
    return None


@contextlib.contextmanager
def s3_errors(url: str, doing: str) -> Iterator[None]:
    """Turn botocore errors raised in the block into a `StorageError`: "URL: DOING: S3 unreachable …"."""
    try:
        yield
    except Exception as exc:
        failure = _s3_failure(url, doing, exc)
        if failure is None:
            raise
        raise failure from exc


def aws_environment() -> dict[str, str]:
    """The AWS_* variables set in this process: what the S3 client is built from (and what the Ray executor
    forwards to its tasks, so they reach the same endpoint with the same credentials)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("AWS_")}


def s3_client() -> Any:
    """A boto3 S3 client honouring AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 (local S3 servers, MinIO), with retries.

    Cached per process and AWS environment: building a client costs tens of milliseconds, and every shard
    makes several calls (exists, read, write, marker). A changed environment gets a new client.
    """
    return _s3_client(tuple(aws_environment().items()))


@functools.lru_cache(maxsize=8)
def _s3_client(env: tuple[tuple[str, str], ...]) -> Any:
    import boto3
    from botocore.config import Config

    settings = dict(env)
    endpoint = settings.get("AWS_ENDPOINT_URL_S3") or settings.get("AWS_ENDPOINT_URL")
    retries: dict[str, Any] = {}
    if "AWS_RETRY_MODE" not in settings:
        retries["mode"] = S3_RETRY_MODE
    if "AWS_MAX_ATTEMPTS" not in settings:
        retries["total_max_attempts"] = S3_MAX_ATTEMPTS
    config = Config(retries=retries or None, tcp_keepalive=True, max_pool_connections=32)  # type: ignore[arg-type]
    # a session of its own: boto3's default session caches credentials across environment changes
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


def transport_params(path: str) -> dict[str, Any]:
    if path.startswith("s3://"):
        import smart_open.s3

        # botocore's retries are the only ones (module docstring); smart_open documents RETRY as settable
        smart_open.s3.RETRY.exceptions = []
        smart_open.s3.RETRY.client_error_codes = []
        return {"client": s3_client()}
    return {}


def expand_s3(pattern: str) -> list[FileInfo]:
    parsed = urlparse(pattern)
    bucket, key_pattern = parsed.netloc, parsed.path.lstrip("/")
    base = static_prefix(pattern)
    m = GLOB_CHARS.search(key_pattern)
    prefix = key_pattern if m is None else key_pattern[: m.start()]
    client = s3_client()
    found = []
    with s3_errors(pattern, "cannot list"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if m is None and key != key_pattern:
                    continue
                if m is not None and not _glob_match(key, key_pattern):
                    continue
                found.append(FileInfo(f"s3://{bucket}/{key}", int(obj["Size"]), base))
    return found


def _glob_match(key: str, pattern: str) -> bool:
    """fnmatch where `*` stays within one path segment and `**` crosses segments (as local globbing)."""
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        else:
            j = i
            while j < len(pattern) and pattern[j] not in "*":
                j += 1
            regex += fnmatch.translate(pattern[i:j])[4:-3]
            i = j
    return re.fullmatch(regex, key) is not None


class S3Reader(io.BufferedIOBase):
    """smart_open's S3 reader, its errors named: "s3://bucket/key: cannot read from byte N: S3 answered …".

    smart_open resumes a stream whose connection dropped (reopening at the current offset, five tries with
    1-16 s pauses); what it gives up with is a botocore error, or an OSError wrapping one or saying it failed
    after its tries, none of them naming the object as a URL. Seekable as the handle it wraps (parquet, .npy).
    """

    def __init__(self, inner: Any, url: str) -> None:
        self.inner = inner
        self.url = url

    @property
    def name(self) -> str:
        return self.url

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @contextlib.contextmanager
    def _named(self) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            failure = _read_failure(self.url, self._offset(), exc)
            if failure is None:
                raise
            raise failure from exc

    def _offset(self) -> int | None:
        try:
            return int(self.inner.tell())
        except Exception:
            return None

    def read(self, size: int | None = -1) -> bytes:
        with self._named():
            return self.inner.read(-1 if size is None else size)

    def read1(self, size: int | None = -1) -> bytes:
        with self._named():
            return self.inner.read1(-1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        with self._named():
            return self.inner.readinto(buffer)

    def readline(self, size: int | None = -1) -> bytes:
        with self._named():
            return self.inner.readline(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        with self._named():
            return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self.inner.close()
        super().close()


def _read_failure(url: str, offset: int | None, exc: BaseException) -> StorageError | None:
    """A failure while reading an S3 object's stream as a transient `StorageError`; None for anything else
    (a bug, or an error of the caller's own)."""
    doing = "cannot read" if offset is None else f"cannot read from byte {offset:,}"
    cause = exc.__cause__ if isinstance(exc, OSError) and exc.__cause__ is not None else exc
    failure = _s3_failure(url, doing, cause)  # smart_open wraps a failed reopen's ClientError in an OSError
    if failure is not None:
        return failure
    urllib3 = sys.modules.get("urllib3.exceptions")
    if isinstance(exc, OSError) or (urllib3 is not None and isinstance(exc, urllib3.HTTPError)):
        reason = str(exc).rpartition(": ")[2] or type(exc).__name__  # smart_open's text leads with its repr
        return StorageError(url, f"{doing}: the connection to S3 broke ({reason})", transient=True)
    return None


class _S3File(io.BufferedIOBase):
    """The handle `atomic_write_s3` yields: writes go to smart_open's upload, whose errors (a part upload
    failing) become a `StorageError` naming the object. Closing it publishes nothing: the block's end does."""

    def __init__(self, upload: Any, url: str) -> None:
        self.upload = upload
        self.url = url

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        with s3_errors(self.url, "cannot write"):
            return self.upload.write(data)

    def tell(self) -> int:
        return self.upload.tell()


@contextlib.contextmanager
def atomic_write_s3(url: str) -> Iterator[IO[bytes]]:
    """An S3 multipart upload, completed when the block ends well and aborted otherwise. One left open by an
    earlier writer of `url` (killed, or S3 unreachable when it tried to abort) is aborted first."""
    import smart_open

    abort_stale_uploads(url)
    try:
        upload = smart_open.open(url, "wb", compression="disable", transport_params=transport_params(url))
    except Exception as exc:  # smart_open reports a missing bucket as a ValueError from the ClientError
        failure = _s3_failure(url, "cannot write", exc.__cause__ if isinstance(exc, ValueError) else exc)
        if failure is None:
            raise
        raise failure from exc
    try:
        yield cast(IO[bytes], _S3File(upload, url))
        with s3_errors(url, "cannot write"):
            upload.close()  # completes the upload: the object appears
    except BaseException:
        with contextlib.suppress(Exception):
            upload.terminate()  # abort it; if S3 is unreachable, the next write of `url` does
        raise


def abort_stale_uploads(url: str) -> int:
    """Abort the incomplete S3 multipart uploads of exactly `url`; returns how many. Best effort: without
    permission to list uploads, or with S3 unreachable, it does nothing (the write that follows will say).

    Only the writer of `url` may call this (a destination has one run at a time: `executor.lock`).
    """
    parsed = urlparse(url)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    client = s3_client()
    aborted = 0
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key):
            for upload in page.get("Uploads", []):
                if upload["Key"] == key:
                    client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
                    aborted += 1
    except Exception:
        return aborted
    return aborted
