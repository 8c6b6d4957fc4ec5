"""Dolma documents: the schema, and streaming readers/writers for jsonl(.gz/.zst) and parquet."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import zstandard

from dolma_kit import storage
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.records import check_record, parse_json_line


@dataclass(slots=True)
class Document:
    """One Dolma document. `id` is unique within `source`; `metadata` is free-form.

    `path` and `line` say where the document was read from (1-based line, or row index + 1 for parquet); they
    are not serialised, but errors and provenance use them.
    """

    id: str
    text: str
    source: str = ""
    added: str | None = None
    created: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    line: int = 0


# --------------------------------------------------------------------------------------------- reading

DOCUMENT_SUFFIXES = (
    ".jsonl.gz",
    ".json.gz",
    ".jsonl.zst",
    ".json.zst",
    ".jsonl.zstd",
    ".jsonl",
    ".json",
    ".parquet",
)


def compression_of(path: str) -> str:
    """`gzip`, `zstd`, `parquet` or `none`, from the file name (what Dolma and datatrove use)."""
    name = path.lower()
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith((".zst", ".zstd")):
        return "zstd"
    if name.endswith(".parquet"):
        return "parquet"
    return "none"


def source_from_path(path: str) -> str:
    """Dolma's layout puts documents at `…/documents/<source>/<shard>`: the parent folder names the source."""
    parts = path.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else ""


class CountingReader(io.RawIOBase):
    """Counts compressed bytes read, so progress bars can show bytes against the on-disk size."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class _ZstdReader(io.RawIOBase):
    """Decompresses concatenated zstd frames and raises on a truncated one.

    `zstandard`'s stream reader returns a clean EOF for a frame cut short, which would lose the tail of a shard
    silently; here a frame that has started but not ended at end of input is an error.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self.raw.read(1 << 17)
            if not chunk:
                if self._in_frame:
                    raise EOFError("zstd stream ended in the middle of a frame (truncated file)")
                return 0
            while chunk:
                self._in_frame = True
                self._pending += self._obj.decompress(chunk)
                chunk = b""
                if self._obj.eof:
                    chunk = self._obj.unused_data
                    self._obj = self._dctx.decompressobj()
                    self._in_frame = False
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def iter_raw_lines(
    path: str, counter: Callable[[IO[bytes]], IO[bytes]] | None = None, *, empty_ok: bool = False
) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its newline) of a .jsonl / .jsonl.gz / .jsonl.zst file, streamed.

    A truncated or corrupt archive raises `BadRecordError` at the line after the last complete one (line 0,
    the whole file, when not even the first record could be read); a file with no line at all raises at line 0, unless `empty_ok` (an attribute file of a shard whose every record
    was rejected has no line, and that is right). `counter` may wrap the raw handle (to count bytes for
    progress).
    """
    try:
        raw = storage.open_raw(path)
    except (OSError, ValueError) as exc:
        raise DolmaKitError(f"{path}: cannot open: {exc}") from exc
    if counter is not None:
        raw = counter(raw)
    kind = compression_of(path)
    buffered = io.BufferedReader(raw, buffer_size=1 << 16)  # type: ignore[arg-type]
    if kind == "gzip":
        stream: IO[bytes] = gzip.GzipFile(fileobj=buffered, mode="rb")
    elif kind == "zstd":
        stream = io.BufferedReader(_ZstdReader(buffered), buffer_size=1 << 16)
    else:
        stream = buffered
    line_no = 0
    with raw, stream:
        while True:
            try:
                raw_line = stream.readline()
            except storage.StorageError:
                raise  # the storage failed (S3 gone mid-stream), not the file: no reject, and worth a retry
            except (EOFError, OSError, zlib.error, zstandard.ZstdError) as exc:
                # before any record: the file as a whole is bad (line 0); after some: the rest is one reject
                at = line_no + 1 if line_no else 0
                raise BadRecordError(path, at, f"truncated or corrupt {kind} data: {exc}") from None
            if not raw_line:
                break
            line_no += 1
            raw_line = raw_line.rstrip(b"\r\n")  # rebound: the unstripped copy is not held while yielded
            held = [raw_line]  # handed out without this frame keeping it: a 50 MB line is freed once parsed
            del raw_line
            yield line_no, held.pop()
    if line_no == 0 and not empty_ok:
        raise BadRecordError(path, 0, "empty file: no records")


def _document(path: str, line_no: int, obj: Any, raw: bytes | None) -> Document:
    check_record(path, line_no, obj, raw)
    doc_id, text = obj["id"], obj["text"]
    metadata = obj.get("metadata") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            metadata = {"value": metadata}
    # datatrove's JsonlWriter keeps the source in metadata (its adapter writes text, id, media, metadata)
    source = (
        obj.get("source") or (metadata.get("source") if isinstance(metadata, dict) else None)
    ) or source_from_path(path)
    return Document(
        id=doc_id,
        text=text,
        source=str(source),
        added=_opt_str(obj.get("added")),
        created=_opt_str(obj.get("created")),
        metadata=metadata if isinstance(metadata, dict) else {"value": metadata},
        path=path,
        line=line_no,
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class DocumentReader:
    """Streams the documents of one shard, one record in memory at a time.

    Bad records raise `BadRecordError` (file and line), unless `on_bad` is given: then each is passed to it and
    reading goes on. A file that holds no record at all, or ends mid-archive, is bad too (line 0 or the last line
    read + 1). `bytes_read` follows the compressed bytes consumed, for progress.
    """

    def __init__(self, path: str, *, on_bad: Callable[[BadRecordError], None] | None = None) -> None:
        self.path = path
        self.on_bad = on_bad
        self._counter: CountingReader | None = None
        self.records = 0

    @property
    def bytes_read(self) -> int:
        return self._counter.count if self._counter else 0

    def __iter__(self) -> Iterator[Document]:
        try:
            if compression_of(self.path) == "parquet":
                yield from self._parquet()
            else:
                yield from self._jsonl()
        except BadRecordError as exc:
            self._bad(exc)

    def _bad(self, exc: BadRecordError) -> None:
        if self.on_bad is None:
            raise exc
        self.on_bad(exc)

    def _jsonl(self) -> Iterator[Document]:
        def count(raw: IO[bytes]) -> IO[bytes]:
            self._counter = CountingReader(raw)
            return self._counter  # type: ignore[return-value]

        for line_no, raw_line in iter_raw_lines(self.path, count):
            try:
                doc = _document(self.path, line_no, parse_json_line(self.path, line_no, raw_line), raw_line)
            except BadRecordError as exc:
                self._bad(exc)
                continue
            self.records += 1
            raw_line = b""  # the caller holds the document; the raw line need not wait for the next record
            yield doc

    def _parquet(self) -> Iterator[Document]:
        import pyarrow.parquet as pq

        with storage.open_raw(self.path) as raw:
            try:
                pf = pq.ParquetFile(
                    raw
                )  # needs a seekable handle: local files and smart_open's S3 reader are
            except storage.StorageError:
                raise
            except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for truncated files
                raise BadRecordError(self.path, 0, f"not a readable parquet file: {exc}") from None
            columns = set(pf.schema_arrow.names)
            for required in ("id", "text"):
                if required not in columns:
                    raise BadRecordError(self.path, 0, f"parquet file has no {required!r} column")
            total_rows = max(pf.metadata.num_rows, 1)
            total_bytes = raw.seek(0, io.SEEK_END) if raw.seekable() else 0
            self._counter = CountingReader(raw)
            row = 0
            for batch in pf.iter_batches(batch_size=1024):
                for obj in batch.to_pylist():
                    row += 1
                    try:
                        doc = _document(self.path, row, obj, None)
                    except BadRecordError as exc:
                        self._bad(exc)
                        continue
                    self.records += 1
                    yield doc
                self._counter.count = total_bytes * row // total_rows  # progress estimate by rows
            if row == 0:
                raise BadRecordError(self.path, 0, "empty file: no records")


def read_documents(
    path: str, *, on_bad: Callable[[BadRecordError], None] | None = None
) -> Iterator[Document]:
    """Stream the documents of one shard (see `DocumentReader`)."""
    return iter(DocumentReader(path, on_bad=on_bad))


# --------------------------------------------------------------------------------------------- writing


def document_to_dict(doc: Document) -> dict[str, Any]:
    """The Dolma JSON object for a document (location fields are not part of the format)."""
    return {
        "id": doc.id,
        "text": doc.text,
        "source": doc.source,
        "added": doc.added,
        "created": doc.created,
        "metadata": doc.metadata,
    }


def dumps(obj: Any) -> str:
    """Compact JSON, UTF-8 kept as is: the one serialisation every stage writes with."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class JsonlWriter:
    """Writes JSON objects, one a line, compressed by the file name; published atomically on `close`.

    gzip headers carry no timestamp, so the same records give byte-identical files (resume equality).
    """

    def __init__(self, path: str, *, level: int | None = None) -> None:
        self.path = path
        self._cm = storage.atomic_write(path)
        self._raw = self._cm.__enter__()
        kind = compression_of(path)
        self._compressor: Any = None
        if kind == "gzip":
            self._stream: IO[bytes] = gzip.GzipFile(
                filename="", fileobj=self._raw, mode="wb", mtime=0, compresslevel=level or 6
            )
        elif kind == "zstd":
            self._compressor = zstandard.ZstdCompressor(level=level or 3).stream_writer(
                self._raw, closefd=False
            )
            self._stream = self._compressor
        elif kind == "none":
            self._stream = self._raw
        else:
            raise DolmaKitError(f"{path}: JsonlWriter writes .jsonl, .jsonl.gz or .jsonl.zst")
        self.records = 0

    def write(self, obj: dict[str, Any]) -> None:
        self._stream.write(dumps(obj).encode("utf-8") + b"\n")
        self.records += 1

    def write_line(self, line: bytes) -> None:
        self._stream.write(line if line.endswith(b"\n") else line + b"\n")
        self.records += 1

    def close(self) -> None:
        if self._stream is not self._raw:
            self._stream.close()
        self._cm.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        """Drop the partial output: nothing appears at `path`."""
        with contextlib.suppress(Exception):
            if self._stream is not self._raw:
                self._stream.close()
        with contextlib.suppress(BaseException):
            self._cm.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


class ParquetDocumentWriter:
    """Writes documents to parquet in row groups; `metadata` is stored as a JSON string column so documents
    with different metadata keys share one schema (our reader turns it back into an object)."""

    SCHEMA_FIELDS = ("id", "text", "source", "added", "created", "metadata")

    def __init__(self, path: str, *, row_group_size: int = 4096) -> None:
        import pyarrow as pa

        self.path = path
        self._pa = pa
        self._schema = pa.schema([(name, pa.string()) for name in self.SCHEMA_FIELDS])
        self._cm = storage.atomic_write(path)
        self._raw = self._cm.__enter__()
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(self._raw, self._schema, compression="zstd")
        self._rows: list[dict[str, Any]] = []
        self._row_group_size = row_group_size
        self.records = 0

    def write_document(self, doc: Document) -> None:
        row = document_to_dict(doc)
        row["metadata"] = dumps(row["metadata"])
        self._rows.append(row)
        self.records += 1
        if len(self._rows) >= self._row_group_size:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(self._pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def __enter__(self) -> ParquetDocumentWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self._flush()
            self._writer.close()
            self._cm.__exit__(None, None, None)
        else:
            with contextlib.suppress(Exception):
                self._writer.close()
            with contextlib.suppress(BaseException):
                self._cm.__exit__(type(exc), exc, exc.__traceback__)


class DocumentWriter:
    """Writes documents in the format the file name says (jsonl, jsonl.gz, jsonl.zst, parquet), atomically."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._parquet = compression_of(path) == "parquet"
        self._impl: ParquetDocumentWriter | JsonlWriter = (
            ParquetDocumentWriter(path) if self._parquet else JsonlWriter(path)
        )

    @property
    def records(self) -> int:
        return self._impl.records

    def write(self, doc: Document) -> None:
        if isinstance(self._impl, ParquetDocumentWriter):
            self._impl.write_document(doc)
        else:
            self._impl.write(document_to_dict(doc))

    def __enter__(self) -> DocumentWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._impl.__exit__(exc_type, exc, tb)
