"""Attribute files: where they live and how one is written, line-aligned with its document shard, and how
one is read by a stage that only counts its spans (`read_summaries`).

Attributes never touch documents (Dolma's contract): for `…/documents/<source>/<shard>` they go to
`…/attributes/<experiment>/<source>/<shard>` (or under a destination), one line per readable document, in
document order: `{"id", "source", "attributes": {"<experiment>__<producer>__<name>": [[start, end, score], …]}}`.
Documents rejected with `--skip-bad` have no attribute line; readers skip the same records, so lines stay
aligned. Every stage that writes attributes (tag, dedup, decontaminate) goes through this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dolma_kit import storage
from dolma_kit.documents import Document, DocumentReader, JsonlWriter, compression_of, dumps
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.executor import RejectsWriter, ShardStats, ShardTask
from dolma_kit.records import parse_json_line

SCHEMA_NAME = "attributes_schema.json"

Attributes = dict[str, list[list[float]]]


def names_in_schema(schema: Any) -> set[str]:
    """Every attribute name in an attributes_schema.json's data, whichever stage wrote it (the string lists
    under "attributes" keys, at any depth): what mix and the pipeline's plan check read as an experiment's
    names."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "attributes" and isinstance(value, list) and all(isinstance(v, str) for v in value):
                found.update(value)
            else:
                found |= names_in_schema(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= names_in_schema(value)
    return found


def attribute_root_and_relative(
    doc_path: str, base: str, experiment: str, destination: str | None
) -> tuple[str, str]:
    """Where a shard's attributes go: (attribute root, path below it).

    Below the root the path mirrors the documents' (`<source>/<shard>`), keeping the extension (parquet
    shards get `.jsonl.gz` attributes).
    """
    marker = "/documents/"
    under_documents = marker in "/" + doc_path
    if under_documents:
        head, _, rel = ("/" + doc_path).rpartition(marker)
        head = head[1:]  # drop the "/" added so a relative `documents/…` path matches too
    else:
        rel = doc_path[len(base) :].lstrip("/") if base and doc_path.startswith(base + "/") else doc_path
        if "/" not in rel.strip("/"):
            rel = "/".join(doc_path.split("/")[-2:])  # keep the source folder: `<source>/<shard>`
    if compression_of(rel) == "parquet":
        rel = rel[: -len(".parquet")] + ".jsonl.gz"
    if destination:
        return destination.rstrip("/"), rel
    if not under_documents:
        raise DolmaKitError(
            f"{doc_path}: not under a 'documents/' folder, so the attributes location is unknown; "
            "pass --destination DIR"
        )
    prefix = f"{head}/" if head or doc_path.startswith("/") else ""
    return f"{prefix}attributes/{experiment}", rel


def attribute_tasks(documents: list[str], experiment: str, destination: str | None) -> list[ShardTask]:
    """One task per document shard (globs expanded), its output the mirrored attribute path."""
    tasks = []
    for info in storage.expand(documents):
        root, rel = attribute_root_and_relative(info.path, info.base, experiment, destination)
        tasks.append(ShardTask(key=rel, input=info.path, output=storage.join(root, rel), size=info.size))
    return tasks


def write_attribute_shard(
    task: ShardTask,
    stats: ShardStats,
    attributes_of: Callable[[Document], Attributes],
    *,
    skip_bad: bool,
    removal: Callable[[Attributes], str | None] | None = None,
) -> None:
    """Read `task.input`, write one attribute line per document to `task.output`, count, report progress.

    Every readable document gets a line. `removal` says, from a document's attributes, why `mix` will drop it
    (dedup's later occurrences) or None; such documents count as removed with that reason, the rest as kept.
    Bad records stop the shard (`BadRecordError` with file:line) unless `skip_bad`, which streams them to the
    shard's rejects file. The output appears only if the whole shard succeeds.
    """
    # gzip level 1: attribute files are intermediate and mostly numbers; level 6 cost ~5% of a tag run's CPU
    # for files ~13% smaller (1,454 real documents, five Dolma taggers: 7.4 vs 6.4 MB)
    with RejectsWriter(task, stats) as rejects, JsonlWriter(task.output, level=1) as out:
        reader = DocumentReader(task.input, on_bad=rejects if skip_bad else None)
        for doc in reader:
            attributes = attributes_of(doc)
            out.write_line(dumps({"id": doc.id, "source": doc.source, "attributes": attributes}).encode())
            reason = removal(attributes) if removal is not None else None
            if reason is None:
                stats.keep()
            else:
                stats.remove(reason)
            stats.progress_bytes(reader.bytes_read)
        stats.progress_bytes(reader.bytes_read)


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class SpanSummary:
    """What a reader that counts needs of one attribute's spans: how many, Σ int(end − start), the first score.

    A long document's attribute can hold ~700,000 spans (c4's line rules on 50 M characters); as parsed
    lists that is ~170 bytes a span, so readers that only count keep this instead.
    """

    count: int
    chars: int
    first: float | None


#: Lines longer than this are summarised by `read_summaries` without building their span lists.
SCAN_BYTES = 1 << 20

_WS = rb"[ \t\n\r]*"
_NUM = rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_SEP = _WS + b"," + _WS
_SPAN = rb"\[" + _WS + _NUM + _SEP + _NUM + _SEP + _NUM + _WS + rb"\]"
_GROUP = b"(" + _NUM + b")"
_SPAN_CAPTURE = re.compile(rb"\[" + _WS + _GROUP + _SEP + _GROUP + _SEP + _GROUP + _WS + rb"\]")
_SPAN_LIST = re.compile(rb"\[" + _WS + b"(?:" + _SPAN + b"(?:" + _SEP + _SPAN + b")*+)?" + _WS + rb"\]")
_STRING = re.compile(rb'"(?:[^"\\\x00-\x1f]|\\.)*+"')
_SCALAR = re.compile(_NUM + rb"|true|false|null")
_SKIP_WS = re.compile(_WS)
#: an escaped UTF-16 surrogate: the whole parse decides (a lone one is a bad record, `records.parse_json_line`)
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _number(text: bytes) -> float:
    """A JSON number as `json` reads it: an int without fraction or exponent, else a float."""
    return float(text) if any(c in text for c in b".eE") else int(text)


def _loads(text: bytes) -> Any:
    """A JSON string or scalar; `_NOT_JSON` for a bad escape or bad UTF-8 (the whole-line parse reports it)."""
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


def summarize(path: str, line_no: int, name: str, spans: Any) -> SpanSummary:
    """The summary of parsed spans; a value that is not a list of [start, end, score] is a bad record."""
    try:
        chars = sum(int(span[1] - span[0]) for span in spans)
        return SpanSummary(len(spans), chars, spans[0][2] if spans else None)
    except (TypeError, IndexError, KeyError, ValueError):
        raise BadRecordError(
            path, line_no, f"attribute {name!r}: spans must be [start, end, score] lists"
        ) from None


def _scan(raw: bytes, wanted: Callable[[str], bool]) -> tuple[Any, dict[str, SpanSummary]] | None:
    """(id, summaries of the wanted attributes) read off the raw line, or None when it is not of the plain
    shape every attribute writer makes (an object of scalars and `attributes`, spans of three numbers): the
    caller then parses it whole, which also reports a malformed line as before."""
    ws = _SKIP_WS.match
    pos = ws(raw, 0).end()
    if raw[pos : pos + 1] != b"{" or _SURROGATE.search(raw):
        return None
    doc_id: Any = None
    summaries: dict[str, SpanSummary] = {}
    pos = ws(raw, pos + 1).end()
    if raw[pos : pos + 1] == b"}":
        return (None, {}) if ws(raw, pos + 1).end() == len(raw) else None
    while True:
        key = _STRING.match(raw, pos)
        if key is None:
            return None
        pos = ws(raw, key.end()).end()
        if raw[pos : pos + 1] != b":":
            return None
        pos = ws(raw, pos + 1).end()
        name = _loads(key.group())
        if name is _NOT_JSON:
            return None
        if name == "attributes":
            found = _scan_attributes(raw, pos, wanted)
            if found is None:
                return None
            summaries, pos = found
        else:
            value = _STRING.match(raw, pos) or _SCALAR.match(raw, pos)
            if value is None:
                return None
            scalar = _loads(value.group())  # every string decoded: bad UTF-8 or escapes fall back
            if scalar is _NOT_JSON:
                return None
            if name == "id":
                doc_id = scalar
            pos = value.end()
        pos = ws(raw, pos).end()
        sep = raw[pos : pos + 1]
        pos = ws(raw, pos + 1).end()
        if sep == b"}":
            return (doc_id, summaries) if pos == len(raw) else None
        if sep != b",":
            return None


def _scan_attributes(
    raw: bytes, pos: int, wanted: Callable[[str], bool]
) -> tuple[dict[str, SpanSummary], int] | None:
    """The `attributes` object at `pos`: summaries of the wanted names and the position after it."""
    ws = _SKIP_WS.match
    if raw[pos : pos + 1] != b"{":
        return None
    summaries: dict[str, SpanSummary] = {}
    pos = ws(raw, pos + 1).end()
    if raw[pos : pos + 1] == b"}":
        return summaries, pos + 1
    while True:
        key = _STRING.match(raw, pos)
        if key is None:
            return None
        pos = ws(raw, key.end()).end()
        if raw[pos : pos + 1] != b":":
            return None
        spans = _SPAN_LIST.match(raw, ws(raw, pos + 1).end())
        if spans is None:
            return None
        name = _loads(key.group())
        if name is _NOT_JSON:
            return None
        summaries.pop(name, None)  # a repeated name: the last one counts, as with `json.loads`
        if wanted(name):
            count = chars = 0
            first: float | None = None
            for span in _SPAN_CAPTURE.finditer(raw, spans.start(), spans.end()):
                start, end, score = span.groups()
                if first is None:
                    first = _number(score)
                count += 1
                chars += int(_number(end) - _number(start))
            summaries[name] = SpanSummary(count, chars, first)
        pos = ws(raw, spans.end()).end()
        sep = raw[pos : pos + 1]
        pos = ws(raw, pos + 1).end()
        if sep == b"}":
            return summaries, pos
        if sep != b",":
            return None


def read_summaries(
    path: str, line_no: int, raw: bytes, wanted: Callable[[str], bool]
) -> tuple[Any, dict[str, SpanSummary]]:
    """(id, span summaries of the attributes `wanted` accepts) of one attribute line.

    A line over `SCAN_BYTES` is read off its bytes, never parsed into span lists (the figures are the same:
    numbers are read as `json` reads them); a shorter line, or one of another shape, is parsed whole, and a
    malformed one raises `BadRecordError` at `path:line_no`.
    """
    if len(raw) > SCAN_BYTES:
        found = _scan(raw, wanted)
        if found is not None:
            return found
    row = parse_json_line(path, line_no, raw)
    if not isinstance(row, dict):
        raise BadRecordError(path, line_no, "an attribute line must be a JSON object")
    attributes = row.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise BadRecordError(path, line_no, "`attributes` must be an object of span lists")
    summaries = {
        name: summarize(path, line_no, name, spans) for name, spans in attributes.items() if wanted(name)
    }
    return row.get("id"), summaries
