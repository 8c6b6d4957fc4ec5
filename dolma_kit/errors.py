"""Error types that reach users: each names what went wrong and where, and says what to do."""

from __future__ import annotations


class DolmaKitError(Exception):
    """A user-facing error (bad input, bad option); the CLI prints it without a traceback."""


class BadRecordError(DolmaKitError):
    """One input record (or a whole file) cannot be read; carries the location so it can be rejected.

    `line` is 1-based; 0 means the problem is with the file as a whole (empty, truncated before any record).
    """

    def __init__(self, path: str, line: int, reason: str, raw: bytes | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        self.raw = raw
        where = f"{path}:{line}" if line else path
        super().__init__(
            f"{where}: {reason} (pass --skip-bad to count such records and write them to rejects/)"
        )

    def __reduce__(self) -> tuple[type[BadRecordError], tuple[str, int, str, bytes | None]]:
        # worker processes send these back to the parent; default pickling would lose the fields
        return (BadRecordError, (self.path, self.line, self.reason, self.raw))

    def to_reject(self) -> dict[str, object]:
        """The rejects-file record: where, why, and the raw line (undecodable bytes escaped, never dropped)."""
        raw = None if self.raw is None else self.raw.decode("utf-8", errors="backslashreplace")
        return {"file": self.path, "line": self.line, "reason": self.reason, "raw": raw}
