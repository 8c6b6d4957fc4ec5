"""What every storage module shares: path helpers for local paths and URLs alike, and `StorageError`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dolma_kit.errors import DolmaKitError

SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
GLOB_CHARS = re.compile(r"[*?\[]")


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


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file found by `expand`: its path or URL, its size in bytes, and the pattern's fixed prefix."""

    path: str
    size: int
    base: str


def is_remote(path: str) -> bool:
    """True for URLs (`s3://…`), False for local paths (`file://` counts as local)."""
    return bool(SCHEME.match(path)) and not path.startswith("file://")


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
    m = GLOB_CHARS.search(pattern)
    if m is None:
        return parent(pattern)
    return parent(pattern[: m.start()] + "x")
