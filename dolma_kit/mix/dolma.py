"""Dolma mixer configs → recipe data of our shape, so a Dolma user's recipe runs unchanged (`dolma-kit mix cc-head.yaml`).

Dolma (1.x) filters are JSONPath queries that keep or drop a document when they match anything, in practice
always one shape: `$.attributes[?(<predicate>)]` (or `$@.attributes[…]`) where the predicate combines
`@.<attribute>`, `@.<attribute>[i]`, `@.<attribute>[i][2]` (a span's score) and numbers with `&&`, `||`, `!`
and comparisons. That subset is translated into our expression language — `@.a && @.a[0] && @.a[0][2] >= 0.5`
becomes `` exists(`a`) and count(`a`) > 0 and `a` >= 0.5 `` — and then parsed and checked like any recipe, so
an unknown attribute is reported at the JSONPath's file:line:col. Anything outside the subset (jq syntax, span
offsets `[i][0]`, string literals, wildcards) is an error that says so, never a silent approximation.

Mapping: `streams[].name/documents/attributes` as they are; `output.path`; `output.max_size_in_bytes` →
`max_bytes` (we count uncompressed bytes; Dolma's parts are named `<name>-NNNN.json.gz`, ours follow the
input shards, see docs/mix.md); `filter.include/exclude`; `span_replacement[].span/min_score/replacement` →
`replace`; `compression.output` (gz/zst) → `output.format`. `work_dir`, `processes` and
`output.discard_fields` have no equivalent to honour (we keep no local cache, processes come from `--processes`,
attributes are never written into mixed documents) and are ignored.
"""

from __future__ import annotations

import re
from typing import Any

from dolma_kit.config import ConfigError, Text, Where

_IGNORED_TOP = {"work_dir", "processes", "dryrun", "debug"}
_STREAM_KEYS = {"name", "documents", "attributes", "output", "filter", "span_replacement", "compression"}
_OUTPUT_KEYS = {"path", "max_size_in_bytes", "discard_fields"}

_TOKEN = re.compile(
    r"\s*(?:(?P<path>@\.(?P<attr>[A-Za-z0-9_\-]+)(?P<index>(?:\[\d+\])*))"
    r"|(?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<bool>true|false)"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)))"
)
_QUERY = re.compile(r"^\s*\$@?\.attributes\[\?\((?P<pred>.*)\)\]\s*$", re.DOTALL)


def jsonpath_to_expr(query: str, fail: Any) -> str:
    """Translate one Dolma JSONPath filter into our expression text; `fail(offset, msg)` raises."""
    m = _QUERY.match(query)
    if m is None:
        raise fail(0, "only Dolma filters of the form `$.attributes[?(...)]` are translated")
    pred, base = m.group("pred"), m.start("pred")
    tokens: list[tuple[str, str, re.Match[str]]] = []
    pos = 0
    while pos < len(pred):
        if not pred[pos:].strip():
            break
        t = _TOKEN.match(pred, pos)
        if t is None or t.end() == pos:
            raise fail(
                base + pos + len(pred[pos:]) - len(pred[pos:].lstrip()),
                "not in the translated JSONPath subset",
            )
        kind = t.lastgroup or ""
        kind = "path" if t.group("path") else kind
        tokens.append((kind, t.group(kind).strip() if kind != "path" else t.group("path"), t))
        pos = t.end()
    out: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text, t = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        prev = tokens[i - 1][1] if i else ""
        compared = nxt in ("==", "!=", "<=", ">=", "<", ">") or prev in ("==", "!=", "<=", ">=", "<", ">")
        if kind == "path":
            out.append(_path(t, compared, lambda msg, t=t: fail(base + t.start("path"), msg)))
        elif kind == "op":
            out.append({"&&": "and", "||": "or", "!": "not"}.get(text, text))
        else:
            out.append(text)
        i += 1
    return " ".join(out).replace("( ", "(").replace(" )", ")")


def _path(t: re.Match[str], compared: bool, fail: Any) -> str:
    name = f"`{t.group('attr')}`"
    indexes = [int(x) for x in re.findall(r"\[(\d+)\]", t.group("index"))]
    if len(indexes) > 2 or (len(indexes) == 2 and indexes[1] != 2):
        raise fail("only a span's score ([i][2]) can be read; start/end offsets are not translated")
    if not indexes:
        return name if compared else f"exists({name})"
    if len(indexes) == 1:
        if compared:
            raise fail("a span ([i]) cannot be compared; compare its score ([i][2])")
        return f"count({name}) > {indexes[0]}"
    if not compared:
        return f"count({name}) > {indexes[0]}"
    return name if indexes[0] == 0 else f"score({name}, {indexes[0]})"


def _rules(where: Where, value: Any) -> list[dict[str, str]]:
    """JSONPath filters → our rules; each expression keeps the JSONPath's position and text (`origin`), so an
    error in it points at what the user wrote."""
    rules = []
    for i, query in enumerate(value or []):
        if not isinstance(query, str):
            raise where.child(f"[{i}]").error("a Dolma filter is a JSONPath string")
        at = where.of(query)

        def fail(offset: int, message: str, at: Where = at, query: str = str(query)) -> ConfigError:
            col = at.column + offset if at.line else 0
            head = f"{at.file}:{at.line}:{col}" if at.line else at.file
            return ConfigError(f"{head}: {message}\n    {query}\n    {' ' * offset}^")

        expr = jsonpath_to_expr(str(query), fail)
        positioned = query.like(expr) if isinstance(query, Text) else Text.at(expr, where.file, 0, 0)
        positioned.origin = str(query)
        rules.append({"expr": positioned, "name": expr})
    return rules


def _replacements(where: Where, value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(value or []):
        if not isinstance(item, dict) or "span" not in item:
            raise where.child(f"[{i}]").error(
                "span_replacement entries need 'span', 'min_score', 'replacement'"
            )
        span = item["span"]
        m = re.fullmatch(r"\s*\$\.attributes\.([A-Za-z0-9_\-]+)\s*", str(span))
        if m is None:
            raise where.of(span).error(f"span must be `$.attributes.<attribute>`, got {span!r}")
        attribute = span.like(m.group(1)) if isinstance(span, Text) else m.group(1)
        out.append(
            {
                "attribute": attribute,
                "replacement": item.get("replacement", ""),
                "min_score": item.get("min_score", 0.5),
            }
        )
    return out


def _check(where: Where, data: dict[str, Any], allowed: set[str], what: str) -> None:
    for key in data:
        if key not in allowed:
            raise where.of(key).error(f"Dolma key '{key}' in {what} is not supported by the translation")


def translate(path: str, data: dict[str, Any]) -> dict[str, Any]:
    """A Dolma mixer config (already loaded) → recipe data of our shape (`mix.recipe` reads it)."""
    top = Where(file=path)
    _check(top, data, {"streams"} | _IGNORED_TOP, "the config")
    streams = []
    for index, s in enumerate(data.get("streams") or []):
        where = top.child(f"streams[{index}]")
        if not isinstance(s, dict):
            raise where.error("must be a mapping")
        _check(where, s, _STREAM_KEYS, f"streams[{index}]")
        output = s.get("output") or {}
        _check(where, output, _OUTPUT_KEYS, "output")
        filt = s.get("filter") or {}
        _check(where, filt, {"include", "exclude", "syntax"}, "filter")
        syntax = str(filt.get("syntax", "jsonpath"))
        if syntax != "jsonpath":
            raise where.of(filt.get("syntax")).error(f"filter syntax '{syntax}': only jsonpath is translated")
        if "path" not in output or "documents" not in s:
            raise where.error("needs documents and output.path")
        compression = (s.get("compression") or {}).get("output") or "gz"
        if str(compression) not in ("gz", "gzip", "zst", "zstd"):
            raise where.of(compression).error(f"output compression '{compression}': gz or zst")
        stream: dict[str, Any] = {
            "documents": s["documents"],
            "attributes": list(s.get("attributes") or []),
            "filter": {
                "include": _rules(where.child("filter.include"), filt.get("include")),
                "exclude": _rules(where.child("filter.exclude"), filt.get("exclude")),
            },
            "replace": _replacements(where.child("span_replacement"), s.get("span_replacement")),
            "output": {
                "path": output["path"],
                "format": "jsonl.zst" if str(compression).startswith("zst") else "jsonl.gz",
            },
        }
        if "max_size_in_bytes" in output:
            stream["output"]["max_bytes"] = output["max_size_in_bytes"]
        if s.get("name"):
            stream["name"] = s["name"]
        streams.append(stream)
    if not streams:
        raise top.error("a Dolma mixer config needs 'streams'")
    return {"streams": streams}
