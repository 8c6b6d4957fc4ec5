"""Where bytes live: local paths or any smart_open URL (s3://, gs://, …), globbing, and atomic writes.

Every stage writes through `atomic_write`, so a killed run never leaves a file that looks complete: a local
file is written under a temporary name and renamed; an object store publishes an object only when its
upload completes. A failed S3 multipart upload is aborted; one that could not be (S3 unreachable, the writer
killed) is aborted by the next write of the same object, or by a bucket lifecycle rule
`AbortIncompleteMultipartUpload` if none comes.

A write or read that fails in the environment (disk full, no permission, S3 unreachable after the retries)
raises `StorageError`, one line naming the path: "PATH: no space left on device" (docs/reliability.md).

S3 goes through one boto3 client per process and settings, with botocore's retries the only ones, and a read
that fails mid-stream names the object too (`storage.s3`); `storage.base` holds the path helpers and
`StorageError`. Everything is imported from here: `from dolma_kit import storage`.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlparse

from dolma_kit.errors import DolmaKitError
from dolma_kit.storage.base import (
    GLOB_CHARS,
    FileInfo,
    StorageError,
    is_remote,
    join,
    local_path,
    os_reason,
    parent,
    static_prefix,
)
from dolma_kit.storage.s3 import (
    S3_MAX_ATTEMPTS,
    S3_RETRY_MODE,
    S3Reader,
    abort_stale_uploads,
    atomic_write_s3,
    aws_environment,
    expand_s3,
    s3_client,
    s3_errors,
    transport_params,
)

__all__ = [
    "S3_MAX_ATTEMPTS",
    "S3_RETRY_MODE",
    "TEMP_MARK",
    "TEMP_NAME",
    "FileInfo",
    "StorageError",
    "abort_stale_uploads",
    "atomic_write",
    "aws_environment",
    "exists",
    "expand",
    "is_remote",
    "join",
    "local_path",
    "open_raw",
    "os_reason",
    "parent",
    "read_json_object",
    "read_text",
    "remove",
    "remove_stale_temps",
    "s3_client",
    "s3_errors",
    "static_prefix",
    "write_text",
]


def expand(patterns: list[str]) -> list[FileInfo]:
    """Expand globs (local or s3://) into files, sorted by path; a pattern matching nothing is an error."""
    files: dict[str, FileInfo] = {}
    for pattern in patterns:
        if pattern.startswith("s3://"):
            found = expand_s3(pattern)
        elif is_remote(pattern):
            if GLOB_CHARS.search(pattern):
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
            with smart_open.open(path, "rb", compression="disable", transport_params=transport_params(path)):
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
    """Open a file for reading as raw bytes: no decompression (documents.py decodes, to report truncation).

    An S3 object's handle turns a failure in the middle of the stream (S3 unreachable or throttling past the
    retries when smart_open reopens a dropped connection, or the connection dropping on every reopen) into a
    `StorageError` naming the object and the offset, as opening it does."""
    if is_remote(path):
        import smart_open

        with s3_errors(path, "cannot read"):
            handle = smart_open.open(
                path, "rb", compression="disable", transport_params=transport_params(path)
            )
        return cast(IO[bytes], S3Reader(handle, path)) if path.startswith("s3://") else handle
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


#: what marks a temp file of `atomic_write`: `.<name>.tmp-<pid>-<8 hex>` beside its target
TEMP_MARK = ".tmp-"
#: a temp file's name: the target's name and the writer's pid (a sweep tells a dead writer's from a live one)
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}$")


def temp_name(name: str) -> str:
    """The temp name `atomic_write` writes `name` under, until it renames it (matches `TEMP_NAME`)."""
    return f".{name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[IO[bytes]]:
    """A binary file handle whose content appears at `path` only if the block finishes without error.

    A failure to write (disk full, no permission, S3 unreachable) raises `StorageError` naming `path`; an
    OSError of the block's own about another file (it has a filename) is left as it is.
    """
    if path.startswith("s3://"):
        with atomic_write_s3(path) as fh:
            yield fh
        return
    if is_remote(path):
        import smart_open

        with smart_open.open(
            path, "wb", compression="disable", transport_params=transport_params(path)
        ) as fh:
            yield fh
        return
    target = Path(local_path(path))
    tmp = target.with_name(temp_name(target.name))
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


def remove_stale_temps(path: str) -> int:
    """Delete temp files that a killed writer of `path` left behind (SIGKILL runs no cleanup); returns how many.

    Only the owner of `path` may call this: a temp file of a writer still running would be removed too.
    """
    if is_remote(path):
        return 0  # no partial object; an S3 upload left open is aborted by the next `atomic_write` of `path`
    target = Path(local_path(path))
    pattern = f".{glob.escape(target.name)}{TEMP_MARK}*"
    stale = list(target.parent.glob(pattern)) if target.parent.is_dir() else []
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
