"""One JSON Lines record: how it is decoded, and the rule every document record meets, in every stage.

Every reader goes through here (`documents.DocumentReader`, mix's raw-line path, attribute and evaluation
readers), so a record that is bad is bad the same way everywhere, with the same `file:line` message.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dolma_kit.errors import BadRecordError

_SURROGATE = re.compile("[\ud800-\udfff]")  # in a decoded str, any surrogate is a lone one (pairs combine)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def parse_json_line(path: str, line_no: int, raw: bytes) -> Any:
    """Decode one JSON Lines record; bad UTF-8, blank lines, malformed JSON and invalid Unicode raise with
    `file:line`.

    Invalid Unicode is a lone surrogate (`"\\ud800"` escaped in JSON, which `json.loads` accepts): no UTF-8 file
    can hold it, so every stage that writes the string would fail later; it is one rule for every stage to
    reject the record here. Only lines with a `\\uD800`–`\\uDFFF` escape are checked (a pair that encodes one
    character is fine), so clean lines pay a bytes search. NUL and other control characters are valid Unicode
    and are kept, as Dolma keeps them."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRecordError(path, line_no, f"invalid UTF-8 at byte {exc.start}", raw) from None
    if not line or line.isspace():  # (no strip(): it copies the line, 200 MB for 50 M wide characters)
        raise BadRecordError(path, line_no, "blank line (expected one JSON object)", raw)
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        # `exc.msg` may end in "starting at" (json names where a string began): the column comes after a colon
        raise BadRecordError(path, line_no, f"malformed JSON: {exc.msg}: column {exc.colno}", raw) from None
    except RecursionError:
        raise BadRecordError(path, line_no, "malformed JSON: nested too deeply", raw) from None
    if b"\\u" in raw and _SURROGATE_ESCAPE.search(raw):
        found = lone_surrogate(obj)
        if found is not None:
            raise BadRecordError(path, line_no, f"invalid Unicode (lone surrogate {found})", raw)
    return obj


def lone_surrogate(value: Any, where: str = "") -> str | None:
    """`U+D800 in 'text'` for the first string (key or value, at any depth) holding a lone surrogate; else None."""
    if isinstance(value, str):
        found = None if value.isascii() else _SURROGATE.search(value)  # a search, not a copy of the text
        if found is None:
            return None
        return f"U+{ord(found.group()):04X}" + (f" in '{where}'" if where else "")
    if isinstance(value, dict):
        for key, item in value.items():
            found = lone_surrogate(key, where) or lone_surrogate(
                item, f"{where}.{key}" if where else str(key)
            )
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = lone_surrogate(item, where)
            if found:
                return found
    return None


def check_record(path: str, line_no: int, obj: Any, raw: bytes | None) -> None:
    """The one rule for what a document record must hold (every stage reads through it, mix's raw-line path
    too): a JSON object with a non-empty string `id` and a string `text`."""
    if not isinstance(obj, dict):
        raise BadRecordError(path, line_no, f"expected a JSON object, got {type(obj).__name__}", raw)
    doc_id, text = obj.get("id"), obj.get("text")
    if doc_id is None:
        raise BadRecordError(path, line_no, "missing 'id'", raw)
    if not isinstance(doc_id, str):
        raise BadRecordError(path, line_no, f"'id' must be a string, got {type(doc_id).__name__}", raw)
    if not doc_id.strip():
        raise BadRecordError(path, line_no, "empty 'id' (provenance and dedup need one per document)", raw)
    if text is None:
        raise BadRecordError(path, line_no, "missing 'text'", raw)
    if not isinstance(text, str):
        raise BadRecordError(path, line_no, f"'text' must be a string, got {type(text).__name__}", raw)
