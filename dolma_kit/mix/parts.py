"""The parts a mix stream writes: rolled at `max_bytes`, each published atomically, and how often a document
is written (seeded sampling, independent of order, shard layout and process count)."""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path
from typing import Any

from dolma_kit import storage
from dolma_kit.documents import Document, JsonlWriter, ParquetDocumentWriter
from dolma_kit.mix.recipe import Output


def sample_copies(rate: float, seed: int, source: str, doc_id: str) -> int:
    """How many times a document is written: ⌊rate⌋, plus one more when its hash falls below the fraction.

    The hash of (seed, source, id) makes the choice independent of order, shard layout and process count.
    """
    whole = int(rate)
    frac = rate - whole
    if frac <= 0.0:
        return whole
    digest = hashlib.blake2b(f"{seed}\x00{source}\x00{doc_id}".encode(), digest_size=8).digest()
    return whole + (int.from_bytes(digest, "little") < frac * 2.0**64)


class PartWriter:
    """Writes a shard's kept documents to parts of at most `max_bytes` (uncompressed), each published atomically."""

    def __init__(self, prefix: str, output: Output) -> None:
        self.prefix = prefix
        self.output = output
        self.parts: list[dict[str, Any]] = []
        self._writer: JsonlWriter | ParquetDocumentWriter | None = None
        self._bytes = 0
        self._docs = 0
        self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        """A killed run leaves `.<part>.tmp-*` files (SIGKILL runs no cleanup); this shard's writer owns them."""
        if storage.is_remote(self.prefix):
            return
        folder, _, stem = self.prefix.rpartition("/")
        pattern = f".{glob.escape(stem)}-[0-9][0-9][0-9][0-9].{self.output.format}.tmp-*"
        for tmp in Path(folder or ".").glob(pattern):
            tmp.unlink(missing_ok=True)

    def path(self, index: int) -> str:
        return f"{self.prefix}-{index:04d}.{self.output.format}"

    def write(self, line: bytes, obj: dict[str, Any] | None, copies: int) -> None:
        size = len(line) + 1
        for _ in range(copies):
            if self._writer is not None and self._bytes + size > self.output.max_bytes and self._docs:
                self._close()
            if self._writer is None:
                path = self.path(len(self.parts))
                parquet = self.output.format == "parquet"
                self._writer = (
                    ParquetDocumentWriter(path) if parquet else JsonlWriter(path, level=self.output.level)
                )
            if isinstance(self._writer, ParquetDocumentWriter):
                self._writer.write_document(as_document(obj if obj is not None else json.loads(line)))
            else:
                self._writer.write_line(line)
            self._bytes += size
            self._docs += 1

    def _close(self) -> None:
        assert self._writer is not None
        self._writer.__exit__(None, None, None)
        name = self._writer.path[len(self.output.path.rstrip("/")) + 1 :]  # relative: outputs can move
        self.parts.append({"path": name, "documents": self._docs, "bytes": self._bytes})
        self._writer, self._bytes, self._docs = None, 0, 0

    def finish(self) -> list[dict[str, Any]]:
        """Close the last part and delete parts a previous run of this shard wrote beyond the last."""
        if self._writer is not None:
            self._close()
        index = len(self.parts)
        while storage.exists(self.path(index)):
            storage.remove(self.path(index))
            index += 1
        return self.parts

    def abort(self, exc: BaseException) -> None:
        if self._writer is not None:
            self._writer.__exit__(type(exc), exc, exc.__traceback__)


def as_document(obj: dict[str, Any]) -> Document:
    return Document(
        id=obj["id"],
        text=obj["text"],
        source=str(obj.get("source") or ""),
        added=obj.get("added"),
        created=obj.get("created"),
        metadata=obj.get("metadata") or {},
    )
