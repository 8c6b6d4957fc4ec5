"""Dolma mixer configs → recipe data of our shape, so a Dolma user's config runs unchanged (`dolma-kit mix cc-head.yaml`).

A Dolma stream keeps its own rules (`mix.dolma_run.DolmaRules`): its `filter` (JSONPath or, with `syntax: jq`, jq),
`span_replacement`, `output.discard_fields` and `output.min_text_length` run with Dolma's semantics, because a
translation into our filter language would decide some documents differently (a missing attribute, `[]`, integer
scores). Every query is parsed here, so a construct outside the accepted JSONPath (see `mix.jsonpath`) or a jq
program that does not compile is an error at the config's file:line:col before any data is read.

Mapping of the rest: `streams[].name/documents/attributes` as they are; `output.path`;
`output.max_size_in_bytes` → `max_bytes` (we count uncompressed bytes written; Dolma groups input files by
size, and its parts are named `<name>-NNNN.json.gz`, ours follow the input shards, see docs/mix.md);
`compression.output` (gz/zst) → `output.format`. `work_dir`, `processes`, `shuffle`, `dryrun` have nothing to
honour (we keep no local cache; processes come from `--processes`; parts always follow the input shards).
"""

from __future__ import annotations

from typing import Any

from dolma_kit.config import ConfigError, Where
from dolma_kit.mix import jsonpath
from dolma_kit.mix.dolma_run import jq_program

_IGNORED_TOP = {"work_dir", "processes", "dryrun", "debug", "shuffle"}
_STREAM_KEYS = {"name", "documents", "attributes", "output", "filter", "span_replacement", "compression"}
_OUTPUT_KEYS = {"path", "max_size_in_bytes", "discard_fields", "min_text_length"}
_SPAN_KEYS = {"span", "min_score", "max_score", "replacement", "syntax"}


def _positioned_error(at: Where, query: str, offset: int, message: str) -> ConfigError:
    col = at.column + offset if at.line else 0
    head = f"{at.file}:{at.line}:{col}" if at.line else at.file
    return ConfigError(f"{head}: {message}\n    {query}\n    {' ' * offset}^")


def check_query(where: Where, query: Any, syntax: str, what: str) -> str:
    """Parse one filter or span query now, so that a bad one fails at its file:line:col."""
    if not isinstance(query, str):
        raise where.error(f"a Dolma {what} is a string")
    at = where.of(query)
    if syntax == "jq":
        try:
            jq_program(query)
        except ValueError as exc:
            raise _positioned_error(at, str(query), 0, f"jq {what} does not compile: {exc}") from None
        return query
    try:
        parsed = jsonpath.parse(query)
    except jsonpath.PathError as exc:
        raise _positioned_error(at, str(query), exc.offset, f"JSONPath {what}: {exc}") from None
    if what == "span" and parsed.predicate is not None:
        raise _positioned_error(at, str(query), 0, "a span path selects spans; a filter [?(...)] is not one")
    return query


def _replacements(where: Where, value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(value or []):
        at = where.child(f"[{i}]")
        if not isinstance(item, dict) or "span" not in item:
            raise at.error("span_replacement entries need 'span', 'min_score' or 'max_score', 'replacement'")
        _check(at, item, _SPAN_KEYS, "span_replacement")
        if item.get("min_score") is None and item.get("max_score") is None:
            raise at.error("Dolma requires min_score or max_score in each span_replacement")
        syntax = str(item.get("syntax") or "jsonpath")
        if syntax not in ("jsonpath", "jq"):
            raise where.of(item.get("syntax")).error(f"span syntax '{syntax}': jsonpath or jq")
        replacement = item.get("replacement", "")
        if str(replacement).startswith("$"):
            raise where.of(replacement).error(
                "a replacement starting with '$' is a jq selector in Dolma; not supported, write the text"
            )
        out.append(
            {
                "span": check_query(at.child("span"), item["span"], syntax, "span"),
                "replacement": replacement,
                "syntax": syntax,
                **{k: item[k] for k in ("min_score", "max_score") if item.get(k) is not None},
            }
        )
    return out


def _check(where: Where, data: dict[str, Any], allowed: set[str], what: str) -> None:
    for key in data:
        if key not in allowed:
            raise where.of(key).error(f"Dolma key '{key}' in {what} is not a Dolma 1.2.1 mixer key")


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
        syntax = str(filt.get("syntax") or "jsonpath")
        if syntax not in ("jsonpath", "jq"):
            raise where.of(filt.get("syntax")).error(f"filter syntax '{syntax}': jsonpath or jq")
        if "path" not in output or "documents" not in s:
            raise where.error("needs documents and output.path")
        compression = (s.get("compression") or {}).get("output") or "gz"
        if str(compression) not in ("gz", "gzip", "zst", "zstd"):
            raise where.of(compression).error(f"output compression '{compression}': gz or zst")
        rules = {
            key: [
                check_query(where.child(f"filter.{key}[{i}]"), q, syntax, "filter")
                for i, q in enumerate(filt.get(key) or [])
            ]
            for key in ("include", "exclude")
        }
        stream: dict[str, Any] = {
            "documents": s["documents"],
            "attributes": list(s.get("attributes") or []),
            "dolma": {
                "syntax": syntax,
                **rules,
                "span_replacement": _replacements(where.child("span_replacement"), s.get("span_replacement")),
                "discard_fields": list(output.get("discard_fields") or []),
                "min_text_length": output.get("min_text_length") or 0,
            },
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
