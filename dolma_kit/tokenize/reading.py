"""The reader thread of `tokenize`: documents decoded ahead of the encoder, bounded in count and characters.

JSON decoding overlaps encoding (which releases the GIL). The reader hands over batches of at most
`max_docs` documents and about `batch_chars` characters, and stops reading while more than `ahead_chars`
characters it read are not yet encoded (`Batches.release`): text held is at most that plus one document, so a
document longer than `ahead_chars` is never joined by another while it is encoded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dolma_kit.documents import Document, DocumentReader
from dolma_kit.errors import BadRecordError

BATCH_CHARS = 1 << 20
AHEAD_CHARS = 1 << 22


@dataclass(slots=True)
class Batch:
    """Documents read in order, with what the reader met on the way (applied by the main thread, which
    alone touches `ShardStats` and the rejects file)."""

    docs: list[Document] = field(default_factory=list)
    empty: int = 0
    bad: list[BadRecordError] = field(default_factory=list)
    bytes_read: int = 0
    chars: int = 0


def _blank(text: str) -> bool:
    """Empty or only whitespace, as `not text.strip()` says, without copying a long text."""
    return not text or text.isspace()


class Batches:
    """Iterate the batches of one shard (read in a thread); call `release(batch.chars)` once encoded."""

    def __init__(
        self,
        path: str,
        *,
        skip_bad: bool,
        max_docs: int,
        batch_chars: int = BATCH_CHARS,
        ahead_chars: int = AHEAD_CHARS,
    ) -> None:
        self.path = path
        self.skip_bad = skip_bad
        self.max_docs = max_docs
        self.batch_chars = batch_chars
        # a batch being filled must always fit, or the reader would wait for a consumer waiting for it
        self.ahead_chars = max(ahead_chars, batch_chars)
        self._held = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()

    def release(self, chars: int) -> None:
        with self._cond:
            self._held -= chars
            self._cond.notify_all()

    def _wait_for_room(self) -> bool:
        """Block while too much is read ahead; False when the consumer has stopped."""
        with self._cond:
            while self._held > self.ahead_chars and not self._stop.is_set():
                self._cond.wait(0.1)
        return not self._stop.is_set()

    def _read(self) -> Iterator[Batch]:
        batch = Batch()
        reader = DocumentReader(self.path, on_bad=batch.bad.append if self.skip_bad else None)
        docs = iter(reader)
        while True:
            if not self._wait_for_room():
                return
            doc = next(docs, None)
            if doc is None:
                break
            if _blank(doc.text):
                batch.empty += 1
            else:
                batch.docs.append(doc)
                batch.chars += len(doc.text)
                with self._cond:
                    self._held += len(doc.text)
            del doc  # the main thread alone keeps a text it encodes
            if len(batch.docs) >= self.max_docs or batch.chars >= self.batch_chars:
                batch.bytes_read = reader.bytes_read
                yield batch
                batch = Batch()
                reader.on_bad = batch.bad.append if self.skip_bad else None
        batch.bytes_read = reader.bytes_read
        yield batch

    def __iter__(self) -> Iterator[Batch]:
        out: queue.Queue[Any] = queue.Queue(maxsize=1)
        done = object()

        def produce() -> None:
            try:
                for item in self._read():
                    while True:
                        if self._stop.is_set():
                            return  # the consumer failed or stopped: read no further
                        try:
                            out.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    del item  # not kept while the next document is read
            except BaseException as exc:
                out.put(exc)
                return
            out.put(done)

        thread = threading.Thread(target=produce, name="tokenize-reader", daemon=True)
        thread.start()
        try:
            while (item := out.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
