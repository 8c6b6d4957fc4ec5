"""Reading one mix shard: its document records, and in lockstep the attribute row of each experiment.

Kept apart from `mix.stage` (which decides and writes) because this is where mix's time goes on wide attribute
files: a recipe reads a few of dozens of attributes per row, and only those are decoded (`_pick`).
"""

from __future__ import annotations

import json
from typing import IO, Any

from dolma_kit.documents import (
    CountingReader,
    DocumentReader,
    check_record,
    compression_of,
    document_to_dict,
    iter_raw_lines,
    parse_json_line,
)
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.executor import RejectsWriter, ShardStats


def records(path: str, stats: ShardStats, rejects: RejectsWriter | None) -> Any:
    """(line, object, raw line or None) of a shard's readable documents; bad ones go to `rejects` or raise."""
    if compression_of(path) == "parquet":
        reader = DocumentReader(path, on_bad=rejects)
        for doc in reader:
            yield doc.line, document_to_dict(doc), None
            stats.progress_bytes(reader.bytes_read)
        return
    counter: list[CountingReader] = []

    def count(raw: IO[bytes]) -> IO[bytes]:
        counter.append(CountingReader(raw))
        return counter[0]  # type: ignore[return-value]

    try:
        for line_no, raw in iter_raw_lines(path, count):
            try:
                obj = parse_json_line(path, line_no, raw)
                check_record(path, line_no, obj, raw)
            except BadRecordError as exc:
                if rejects is None:
                    raise
                rejects(exc)
                continue
            yield line_no, obj, raw
            if not line_no & 255:
                stats.progress_bytes(counter[0].count)
    except BadRecordError as exc:  # truncated archive: a file-level problem
        if rejects is None:
            raise
        rejects(exc)
    if counter:
        stats.progress_bytes(counter[0].count)


def with_source(raw: bytes | None, obj: dict[str, Any], source: str) -> bytes | None:
    """The line with `"source"` added (a document without one gets its folder's name), or None to re-serialise.

    The key is spliced into the line's bytes rather than the document re-serialised: on a 50 M-character
    document that is one copy of the line instead of a string and its UTF-8 encoding."""
    had = "source" in obj
    obj["source"] = source
    if raw is None or had:  # present but empty: a second key would be ambiguous, so write it anew
        return None
    head, brace, rest = raw.partition(b"{")
    if not brace or head.strip():
        return None
    comma = b"" if rest.lstrip().startswith(b"}") else b","
    return b"".join((head, b'{"source":', json.dumps(source, ensure_ascii=False).encode(), comma, rest))


# `raw_decode` without its Python frame: (value, end), StopIteration when no value starts there
_scan = json.JSONDecoder().scan_once


def pick(text: str, keys: tuple[tuple[str, str], ...]) -> tuple[Any, dict[str, Any]] | None:
    """(id, {name: spans}) for the needed names only, or None when the line is not in the expected shape.

    Attribute lines can hold dozens of attributes of which a recipe reads a few; decoding only those values
    (found by their `"name":` key, which cannot occur inside a JSON string, where quotes are escaped) is most
    of mix's speed on wide attribute files. Anything unexpected falls back to decoding the whole line.
    """
    at = text.find('"id":')
    if at < 0:
        return None
    try:
        doc_id = _scan(text, _value_start(text, at + 5))[0]
        found = {}
        for name, key in keys:
            at = text.find(key)
            if at >= 0:
                found[name] = _scan(text, _value_start(text, at + len(key)))[0]
    except (StopIteration, ValueError, IndexError):
        return None
    return doc_id, found


def _value_start(text: str, at: int) -> int:
    while text[at] in " \t":
        at += 1
    return at


def attribute_line(
    path: str,
    lines: Any,
    keys: tuple[tuple[str, str], ...] | None,
    doc_path: str,
    line_no: int,
    doc_id: str,
    late: LateAttributes | None = None,
) -> dict[str, Any]:
    """The next attribute line's needed attributes, checked to belong to the document just read; with `late`,
    the line is also kept there, for the values needed only if the document is kept."""
    try:
        a_line, raw = next(lines)
    except StopIteration:
        raise DolmaKitError(
            f"{path}: ends before {doc_path}:{line_no} (id {doc_id!r}); the attributes were made from "
            "other documents"
        ) from None
    text = raw.decode("utf-8", errors="replace") if keys is not None or late is not None else ""
    picked = pick(text, keys) if keys is not None else None
    if picked is None:
        row = parse_json_line(path, a_line, raw)
        picked = (row.get("id"), row.get("attributes") or {}) if isinstance(row, dict) else (None, {})
    if late is not None:
        late.rows.append((path, a_line, raw, text))
    if picked[0] != doc_id:
        raise DolmaKitError(
            f"{path}:{a_line}: attribute id {picked[0]!r} does not match document id {doc_id!r} at "
            f"{doc_path}:{line_no}; the attributes were made from other documents (or with other --skip-bad)"
        )
    return picked[1]


class LateAttributes:
    """A document's attribute lines, for the values only a kept document needs (a Dolma stream's span lists).

    Span lists are most of an attribute row's decoding (a paragraph dedup row holds one span per duplicate
    paragraph), and filters drop about half of a real corpus before any span is replaced: those documents'
    spans are never decoded. `present` answers which names the rows hold without decoding them."""

    __slots__ = ("keys", "rows")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.keys = tuple((name, f'"{name}":') for name in names)
        self.rows: list[tuple[str, int, bytes, str]] = []
        """(attribute file, line, raw line, decoded line) of the current document, in experiment order."""

    def present(self, skip: set[str]) -> list[str]:
        """The late names not in `skip` that some row holds (found as `pick` finds them)."""
        return [n for n, key in self.keys if n not in skip and any(key in row[3] for row in self.rows)]

    def decode(self) -> dict[str, Any]:
        """The late names' values, merged in experiment order (a later row wins, as in the eager merge)."""
        found: dict[str, Any] = {}
        for path, a_line, raw, text in self.rows:
            picked = pick(text, self.keys)
            if picked is None:  # not in the expected shape: decode it whole (raises with file:line if bad)
                row = parse_json_line(path, a_line, raw)
                attrs = row.get("attributes") if isinstance(row, dict) else None
                attrs = attrs if isinstance(attrs, dict) else {}
                picked = (None, {name: attrs[name] for name, _ in self.keys if name in attrs})
            found.update(picked[1])
        return found
