"""Dolma mixer configs → our `Recipe`, so a Dolma user's recipe runs unchanged (`dolma-kit mix cc-head.yaml`).

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

from dolma_kit.mix.recipe import (
    Output,
    Recipe,
    RecipeError,
    Replace,
    Rule,
    Stream,
    at,
    expand_env,
    location,
)

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


def _rules(path: str, value: Any, what: str) -> list[Rule]:
    rules = []
    for query in value or []:
        if not isinstance(query, str):
            raise RecipeError(f"{at(path, query, what)}: a Dolma filter is a JSONPath string")
        loc = location(path, query, origin=str(query))

        def fail(offset: int, message: str, loc: Any = loc, query: str = str(query)) -> RecipeError:
            col = loc.column + offset if loc.line else 0
            where = f"{loc.file}:{loc.line}:{col}" if loc.line else loc.file
            return RecipeError(f"{where}: {message}\n    {query}\n    {' ' * offset}^")

        expr = jsonpath_to_expr(str(query), fail)
        rules.append(Rule(name=expr, expr=expr, where=loc))
    return rules


def _replacements(path: str, value: Any) -> list[Replace]:
    out = []
    for item in value or []:
        if not isinstance(item, dict) or "span" not in item:
            raise RecipeError(f"{path}: span_replacement entries need 'span', 'min_score', 'replacement'")
        span = item["span"]
        m = re.fullmatch(r"\s*\$\.attributes\.([A-Za-z0-9_\-]+)\s*", str(span))
        if m is None:
            raise RecipeError(f"{at(path, span)}: span must be `$.attributes.<attribute>`, got {span!r}")
        replacement = item.get("replacement", "")
        out.append(
            Replace(
                attribute=m.group(1),
                replacement=str(replacement or ""),
                min_score=float(item.get("min_score", 0.5)),
                name=m.group(1),
                where=location(path, span),
            )
        )
    return out


def _check(path: str, data: dict[str, Any], allowed: set[str], what: str) -> None:
    for key in data:
        if key not in allowed:
            raise RecipeError(
                f"{at(path, key)}: Dolma key '{key}' in {what} is not supported by the translation"
            )


def translate(path: str, data: dict[str, Any]) -> Recipe:
    """A Dolma mixer config (already loaded) → `Recipe` with `translated_from="dolma"`."""
    _check(path, data, {"streams"} | _IGNORED_TOP, "the config")
    streams = []
    for index, s in enumerate(data.get("streams") or []):
        if not isinstance(s, dict):
            raise RecipeError(f"{path}: streams[{index}] must be a mapping")
        _check(path, s, _STREAM_KEYS, f"streams[{index}]")
        output = s.get("output") or {}
        _check(path, output, _OUTPUT_KEYS, "output")
        filt = s.get("filter") or {}
        _check(path, filt, {"include", "exclude", "syntax"}, "filter")
        syntax = str(filt.get("syntax", "jsonpath"))
        if syntax != "jsonpath":
            raise RecipeError(
                f"{at(path, filt.get('syntax'))}: filter syntax '{syntax}': only jsonpath is translated"
            )
        if "path" not in output or "documents" not in s:
            raise RecipeError(f"{path}: streams[{index}] needs documents and output.path")
        docs = s["documents"] if isinstance(s["documents"], list) else [s["documents"]]
        compression = str((s.get("compression") or {}).get("output") or "gz")
        if compression not in ("gz", "gzip", "zst", "zstd"):
            raise RecipeError(f"{at(path, compression)}: output compression '{compression}': gz or zst")
        streams.append(
            Stream(
                name=str(s.get("name") or f"stream{index}"),
                documents=[expand_env(path, d) for d in docs],
                attributes={str(a): None for a in s.get("attributes") or []},
                include=_rules(path, filt.get("include"), "filter.include"),
                exclude=_rules(path, filt.get("exclude"), "filter.exclude"),
                replace=_replacements(path, s.get("span_replacement")),
                output=Output(
                    path=expand_env(path, output["path"]),
                    max_bytes=int(output.get("max_size_in_bytes", 1_000_000_000)),
                    format="jsonl.zst" if compression.startswith("zst") else "jsonl.gz",
                ),
            )
        )
    if not streams:
        raise RecipeError(f"{path}: a Dolma mixer config needs 'streams'")
    return Recipe(path=path, streams=streams, translated_from="dolma")
