"""Finding one document by id in sharded documents, and the attribute rows every experiment wrote for it.

`dolma-kit show` (analysis/show.py) starts here. A document is found by streaming the shards, but a line is
parsed only when its bytes hold the id as a JSON string (`"web-00042"`), so a scan costs about one
decompression of the corpus. Ids are unique within a source, yet a corpus may repeat one (two sources, or a
copy in one shard): every occurrence is returned, in shard and line order.

An attribute file is line-aligned with the *readable* records of its shard (`attributes.py`), so the row of
the k-th record with this id is the k-th attribute row with this id: that holds with `--skip-bad` rejects and
with an id repeated inside a shard, where a line number alone would be off.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dolma_kit import storage
from dolma_kit.attributes import attribute_root_and_relative
from dolma_kit.documents import (
    DOCUMENT_SUFFIXES,
    Document,
    DocumentReader,
    compression_of,
    document_to_dict,
    iter_raw_lines,
    parse_json_line,
    source_from_path,
)
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.records import check_record


@dataclass(frozen=True, kw_only=True)
class Occurrence:
    """One place a document with the wanted id was read from."""

    doc: Document
    """The document as read; `doc.path` and `doc.line` are the input file and its 1-based line."""
    nth: int
    """1 for the first record with this id in its shard, 2 for a second copy there, …"""
    record: dict[str, Any]
    """The JSON object as mix reads it (every field, `source` only if the line has one)."""


@dataclass(frozen=True, kw_only=True)
class AttributeRow:
    """What one experiment wrote for one occurrence: its file, line and every attribute (full names)."""

    experiment: str
    path: str
    line: int
    attributes: dict[str, list[list[float]]]


def id_needles(doc_id: str) -> tuple[bytes, ...]:
    """The byte strings a JSON line holding this id contains: the id as JSON, escaped or not."""
    plain = json.dumps(doc_id, ensure_ascii=False).encode("utf-8")
    ascii_ = json.dumps(doc_id).encode("ascii")
    return (plain,) if plain == ascii_ else (plain, ascii_)


def _may_hold(raw: bytes, needles: tuple[bytes, ...]) -> bool:
    return any(needle in raw for needle in needles)


def document_shards(patterns: list[str]) -> list[str]:
    """Document shard paths from globs (a folder means every shard below it, any supported format)."""
    expanded = []
    for pattern in patterns:
        if not storage.is_remote(pattern) and Path(pattern).is_dir():
            pattern = os.path.join(pattern, "**", "*")
        expanded.append(pattern)
    files = storage.expand(expanded)
    return [f.path for f in files if f.path.endswith(DOCUMENT_SUFFIXES) and "/rejects/" not in f.path]


def root_shards(root: str) -> list[str]:
    """Every document shard of a work directory: `<root>/documents/<source>/<shard>`."""
    folder = storage.join(root, "documents")
    if not storage.is_remote(folder) and not Path(folder).is_dir():
        raise DolmaKitError(
            f"{root}: no documents/ folder (is it a work directory? or pass --documents GLOB)"
        )
    return document_shards([storage.join(folder, "*", "*")])


def records(path: str) -> Iterator[tuple[int, bytes | None, Document | None]]:
    """(line, raw line, document or None when the line is not a readable record) of one shard.

    Parquet shards have no raw lines: each row comes as a document (raw None)."""
    if compression_of(path) == "parquet":
        for doc in DocumentReader(path, on_bad=lambda exc: None):
            yield doc.line, None, doc
        return
    for line_no, raw in iter_raw_lines(path, empty_ok=True):
        yield line_no, raw, None


def find_in_shard(path: str, doc_id: str) -> list[Occurrence]:
    """Every readable record with this id in one shard (bad lines are skipped, as `--skip-bad` does)."""
    needles = id_needles(doc_id)
    found: list[Occurrence] = []
    try:
        for line_no, raw, doc in records(path):
            record = document_to_dict(doc) if doc is not None else None
            if doc is None:
                if raw is None or not _may_hold(raw, needles):
                    continue
                doc, record = _document(path, line_no, raw)
            if doc is not None and record is not None and doc.id == doc_id:
                found.append(Occurrence(doc=doc, nth=len(found) + 1, record=record))
    except BadRecordError:
        pass  # a truncated archive: what was read before the damage still counts
    return found


def _document(path: str, line_no: int, raw: bytes) -> tuple[Document | None, dict[str, Any] | None]:
    """The document of one line and its JSON object, or Nones when it is not a readable document (mix and
    tag skip those too)."""
    try:
        obj = parse_json_line(path, line_no, raw)
        check_record(path, line_no, obj, raw)
    except BadRecordError:
        return None, None
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    source = obj.get("source") or metadata.get("source") or source_from_path(path)
    doc = Document(
        id=obj["id"],
        text=obj["text"],
        source=str(source),
        added=obj.get("added"),
        created=obj.get("created"),
        metadata=metadata,
        path=path,
        line=line_no,
    )
    return doc, obj


def find_document(doc_id: str, shards: Iterable[str]) -> list[Occurrence]:
    """Every occurrence of `doc_id` in the shards, in the order given."""
    return [occ for path in shards for occ in find_in_shard(path, doc_id)]


# --------------------------------------------------------------------------------------------- attributes


def experiments_beside(doc_path: str) -> list[str]:
    """The experiments under the documents' sibling `attributes/` that hold a file for this shard."""
    try:
        attr_root, rel = attribute_root_and_relative(doc_path, "", "-", None)
    except DolmaKitError:
        return []  # not under a documents/ folder: only experiments given with a root can be read
    parent = attr_root.rpartition("/")[0]
    if storage.is_remote(parent) or not Path(parent).is_dir():
        return []
    return sorted(
        p.name
        for p in Path(parent).iterdir()
        if p.is_dir() and not p.name.startswith((".", "_"))
        if (p / rel).is_file()
    )


def attribute_file(doc_path: str, experiment: str, root: str | None) -> str:
    """The attribute file line-aligned with `doc_path` (under `root`, or the documents' sibling)."""
    base, rel = attribute_root_and_relative(doc_path, "", experiment, root)
    return storage.join(base, rel)


def attribute_row(occ: Occurrence, experiment: str, root: str | None = None) -> AttributeRow | None:
    """The experiment's row for this occurrence (the nth row with its id), or None when it has no file or
    no such row (attributes written before the document was added)."""
    path = attribute_file(occ.doc.path, experiment, root)
    if not storage.exists(path):
        return None
    needles = id_needles(occ.doc.id)
    seen = 0
    for line_no, raw in iter_raw_lines(path, empty_ok=True):
        if not _may_hold(raw, needles):
            continue
        row = parse_json_line(path, line_no, raw)
        if not isinstance(row, dict) or row.get("id") != occ.doc.id:
            continue
        seen += 1
        if seen == occ.nth:
            attributes = row.get("attributes") or {}
            if not isinstance(attributes, dict):
                raise BadRecordError(path, line_no, "`attributes` must be an object of span lists")
            return AttributeRow(experiment=experiment, path=path, line=line_no, attributes=attributes)
    return None


def is_spans(value: Any) -> bool:
    """A list of [start, end, score] (what our stages write); Dolma's files may also nest objects."""
    return isinstance(value, list) and all(
        isinstance(s, list) and len(s) == 3 and all(isinstance(x, int | float) for x in s) for s in value
    )


def is_document_level(spans: list[list[float]], text: str) -> bool:
    """One span over the whole text: a document-level score (how taggers write them, DESIGN §2)."""
    return len(spans) == 1 and int(spans[0][0]) == 0 and int(spans[0][1]) == len(text)


def span_json(spans: list[list[Any]], text: str, chars: int) -> list[dict[str, Any]]:
    """Spans as objects with their text excerpt (at most `chars` characters)."""
    out = []
    for span in spans:
        start, end = int(span[0]), int(span[1])
        piece = text[start:end]
        out.append(
            {
                "start": start,
                "end": end,
                "score": span[2],
                "text": piece[:chars] + ("…" if len(piece) > chars else ""),
            }
        )
    return out
