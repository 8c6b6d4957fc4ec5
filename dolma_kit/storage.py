"""Where bytes live: local paths or any smart_open URL (s3://, gs://, …), globbing, and atomic writes.

Every stage writes through `atomic_write`, so a killed run never leaves a file that looks complete: a local
file is written under a temporary name and renamed; an object store publishes an object only when its
upload completes. A failed S3 multipart upload is aborted; one that could not be (S3 unreachable, the writer
killed) is aborted by the next write of the same object, or by a bucket lifecycle rule
`AbortIncompleteMultipartUpload` if none comes.

A write or read that fails in the environment (disk full, no permission, S3 unreachable after the retries)
raises `StorageError`, one line naming the path: "PATH: no space left on device" (docs/reliability.md).

S3 goes through one boto3 client per process and settings, configured from the usual AWS environment variables
(AWS_ENDPOINT_URL[_S3], credentials, region, profile) and retrying transient errors (throttling, 5xx, dropped
connections) with botocore's exponential backoff; AWS_RETRY_MODE / AWS_MAX_ATTEMPTS override our defaults.
Those are the only retries: smart_open's own extra layer (6 more tries, 10 s apart, which loses the error) is
turned off.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import glob
import io
import json
import os
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlparse

from dolma_kit.errors import DolmaKitError

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_GLOB_CHARS = re.compile(r"[*?\[]")
# Retries when the environment sets none: botocore's "standard" mode (exponential backoff with jitter on
# throttling, 5xx, timeouts and connection errors), more attempts than its default 3 since a shard task that
# fails here redoes the whole shard.
S3_RETRY_MODE = "standard"
S3_MAX_ATTEMPTS = 10


class StorageError(DolmaKitError, OSError):
    """Reading or writing `path` failed in the environment: disk full, no permission, S3 unreachable.

    Prints as "PATH: reason". Still an `OSError` (`errno` kept) for code that catches those, and it pickles
    whole, so it reaches the driver from a worker process unchanged. `transient`: worth retrying (a network
    error, S3 throttling), as the Ray executor does.
    """

    def __init__(self, path: str, reason: str, errno: int | None = None, transient: bool = False) -> None:
        OSError.__init__(self, errno, reason, path)
        self.path = path
        self.reason = reason
        self.transient = transient

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    def __reduce__(self) -> tuple[type[StorageError], tuple[str, str, int | None, bool]]:
        return (StorageError, (self.path, self.reason, self.errno, self.transient))


def os_reason(exc: OSError) -> str:
    """An OSError's reason as a message ends: "no space left on device"."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


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


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file found by `expand`: its path or URL, its size in bytes, and the pattern's fixed prefix."""

    path: str
    size: int
    base: str


def is_remote(path: str) -> bool:
    """True for URLs (`s3://…`), False for local paths (`file://` counts as local)."""
    return bool(_SCHEME.match(path)) and not path.startswith("file://")


def local_path(path: str) -> str:
    """A local path or `file://` URL as a filesystem path (for numpy memory maps and os calls)."""
    return path[len("file://") :] if path.startswith("file://") else path


def join(base: str, *parts: str) -> str:
    """Join path parts with `/`, for local paths and URLs alike."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else "."


def static_prefix(pattern: str) -> str:
    """The directory part of a glob pattern before its first wildcard (the root that relative paths use)."""
    m = _GLOB_CHARS.search(pattern)
    if m is None:
        return parent(pattern)
    return parent(pattern[: m.start()] + "x")


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


def _transport_params(path: str) -> dict[str, Any]:
    if path.startswith("s3://"):
        import smart_open.s3

        # botocore's retries are the only ones (module docstring); smart_open documents RETRY as settable
        smart_open.s3.RETRY.exceptions = []
        smart_open.s3.RETRY.client_error_codes = []
        return {"client": s3_client()}
    return {}


def _expand_s3(pattern: str) -> list[FileInfo]:
    parsed = urlparse(pattern)
    bucket, key_pattern = parsed.netloc, parsed.path.lstrip("/")
    base = static_prefix(pattern)
    m = _GLOB_CHARS.search(key_pattern)
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


def expand(patterns: list[str]) -> list[FileInfo]:
    """Expand globs (local or s3://) into files, sorted by path; a pattern matching nothing is an error."""
    files: dict[str, FileInfo] = {}
    for pattern in patterns:
        if pattern.startswith("s3://"):
            found = _expand_s3(pattern)
        elif is_remote(pattern):
            if _GLOB_CHARS.search(pattern):
                raise DolmaKitError(
                    f"{pattern}: globbing is supported for local paths and s3:// only; list files"
                )
            found = [FileInfo(pattern, 0, static_prefix(pattern))]
        else:
            local = local_path(pattern)
            matches = sorted(glob.glob(local, recursive=True))
            base = static_prefix(local)
            found = [FileInfo(p, os.path.getsize(p), base) for p in matches if os.path.isfile(p)]
        if not found:
            raise DolmaKitError(f"no files match {pattern!r}")
        for info in found:
            files.setdefault(info.path, info)
    return sorted(files.values(), key=lambda f: f.path)


def exists(path: str) -> bool:
    if path.startswith("s3://"):
        parsed = urlparse(path)
        client = s3_client()
        with s3_errors(path, "cannot read"):
            try:
                client.head_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
            except client.exceptions.ClientError:
                return False
        return True
    if is_remote(path):
        import smart_open  # lazily: it imports boto3 (~0.4 s a process), which local work never needs

        try:
            with smart_open.open(path, "rb", compression="disable", transport_params=_transport_params(path)):
                return True
        except Exception:
            return False
    return os.path.exists(local_path(path))


def remove(path: str) -> None:
    """Delete a file if it exists (local or s3://)."""
    if path.startswith("s3://"):
        parsed = urlparse(path)
        with s3_errors(path, "cannot delete"):
            s3_client().delete_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    elif not is_remote(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(local_path(path))


def open_raw(path: str) -> IO[bytes]:
    """Open a file for reading as raw bytes: no decompression (documents.py decodes, to report truncation)."""
    if is_remote(path):
        import smart_open

        with s3_errors(path, "cannot read"):
            return smart_open.open(
                path, "rb", compression="disable", transport_params=_transport_params(path)
            )
    return open(local_path(path), "rb")


def read_text(path: str) -> str:
    with open_raw(path) as fh:
        return fh.read().decode("utf-8")


def read_json_object(path: str) -> dict[str, Any] | None:
    """A JSON object an earlier run wrote (a plan, a marker), or None when it is absent, unreadable or not an
    object: callers treat all three as "nothing to compare with" and redo the work."""
    if not exists(path):
        return None
    try:
        data = json.loads(read_text(path))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[IO[bytes]]:
    """A binary file handle whose content appears at `path` only if the block finishes without error.

    A failure to write (disk full, no permission, S3 unreachable) raises `StorageError` naming `path`; an
    OSError of the block's own about another file (it has a filename) is left as it is.
    """
    if path.startswith("s3://"):
        with _atomic_write_s3(path) as fh:
            yield fh
        return
    if is_remote(path):
        import smart_open

        with smart_open.open(
            path, "wb", compression="disable", transport_params=_transport_params(path)
        ) as fh:
            yield fh
        return
    target = Path(local_path(path))
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    in_block = False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _LocalFile(io.FileIO(tmp, "wb"), path) as fh:
            in_block = True
            yield fh
            in_block = False
        os.replace(tmp, target)
    except OSError as exc:
        if isinstance(exc, StorageError) or (in_block and exc.filename is not None):
            raise
        raise StorageError(path, os_reason(exc), exc.errno) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class _LocalFile(io.BufferedWriter):
    """The temp file `atomic_write` yields: its write errors name the destination ("PATH: no space left on
    device"), even where a writer wrapping it swallows its own cleanup's errors."""

    def __init__(self, raw: io.FileIO, path: str) -> None:
        super().__init__(raw)
        self.destination = path

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            raise StorageError(self.destination, os_reason(exc), exc.errno) from exc

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            raise StorageError(self.destination, os_reason(exc), exc.errno) from exc


class _S3File(io.BufferedIOBase):
    """The handle `_atomic_write_s3` yields: writes go to smart_open's upload, whose errors (a part upload
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
def _atomic_write_s3(url: str) -> Iterator[IO[bytes]]:
    """An S3 multipart upload, completed when the block ends well and aborted otherwise. One left open by an
    earlier writer of `url` (killed, or S3 unreachable when it tried to abort) is aborted first."""
    import smart_open

    abort_stale_uploads(url)
    try:
        upload = smart_open.open(url, "wb", compression="disable", transport_params=_transport_params(url))
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


def remove_stale_temps(path: str) -> int:
    """Delete temp files that a killed writer of `path` left behind (SIGKILL runs no cleanup); returns how many.

    Only the owner of `path` may call this: a temp file of a writer still running would be removed too.
    """
    if is_remote(path):
        return 0  # no partial object; an S3 upload left open is aborted by the next `atomic_write` of `path`
    target = Path(local_path(path))
    stale = list(target.parent.glob(f".{glob.escape(target.name)}.tmp-*")) if target.parent.is_dir() else []
    for tmp in stale:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return len(stale)


def write_text(path: str, text: str) -> None:
    """Write a small file atomically (on S3 one PutObject: no multipart upload to leave open)."""
    if path.startswith("s3://"):
        parsed = urlparse(path)
        with s3_errors(path, "cannot write"):
            s3_client().put_object(
                Bucket=parsed.netloc, Key=parsed.path.lstrip("/"), Body=text.encode("utf-8")
            )
        return
    with atomic_write(path) as fh:
        fh.write(text.encode("utf-8"))
