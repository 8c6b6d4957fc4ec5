"""Where bytes live: local paths or any smart_open URL (s3://, gs://, …), globbing, and atomic writes.

Every stage writes through `atomic_write`, so a killed run never leaves a file that looks complete: a local
file is written under a temporary name and renamed; an object store publishes an object only when its
upload completes (a failed S3 multipart upload is aborted; a killed one leaves no object, only an incomplete
upload that a bucket lifecycle rule `AbortIncompleteMultipartUpload` cleans up).

S3 goes through one boto3 client per process and settings, configured from the usual AWS environment variables
(AWS_ENDPOINT_URL[_S3], credentials, region, profile) and retrying transient errors (throttling, 5xx, dropped
connections) with botocore's exponential backoff; AWS_RETRY_MODE / AWS_MAX_ATTEMPTS override our defaults.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import glob
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from dolma_kit.errors import DolmaKitError

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_GLOB_CHARS = re.compile(r"[*?\[]")
# Retries when the environment sets none: botocore's "standard" mode (exponential backoff with jitter on
# throttling, 5xx, timeouts and connection errors), more attempts than its default 3 since a shard task that
# fails here redoes the whole shard.
S3_RETRY_MODE = "standard"
S3_MAX_ATTEMPTS = 10


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
        s3_client().delete_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    elif not is_remote(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(local_path(path))


def open_raw(path: str) -> IO[bytes]:
    """Open a file for reading as raw bytes: no decompression (documents.py decodes, to report truncation)."""
    if is_remote(path):
        import smart_open

        return smart_open.open(path, "rb", compression="disable", transport_params=_transport_params(path))
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
    """A binary file handle whose content appears at `path` only if the block finishes without error."""
    if is_remote(path):
        import smart_open

        with smart_open.open(
            path, "wb", compression="disable", transport_params=_transport_params(path)
        ) as fh:
            yield fh
        return
    target = Path(local_path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def remove_stale_temps(path: str) -> int:
    """Delete temp files that a killed writer of `path` left behind (SIGKILL runs no cleanup); returns how many.

    Only the owner of `path` may call this: a temp file of a writer still running would be removed too.
    """
    if is_remote(path):
        return 0  # object stores leave no partial object to clean up
    target = Path(local_path(path))
    stale = list(target.parent.glob(f".{glob.escape(target.name)}.tmp-*")) if target.parent.is_dir() else []
    for tmp in stale:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return len(stale)


def write_text(path: str, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text.encode("utf-8"))
