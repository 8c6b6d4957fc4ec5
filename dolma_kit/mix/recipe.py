"""Mix recipes: the dataclasses `dolma-kit mix` runs, loaded from YAML with every value's file:line:col kept.

One declaration: the YAML keys are the dataclass fields (`kw_only`, docstrings under each), so the reference in
docs/mix.md, `--explain` and the loader all read from here. A file in Dolma's mixer shape (JSONPath filters,
`span_replacement`, `max_size_in_bytes`) is detected and translated by `mix_dolma.py` into the same dataclasses.

Positions matter: a filter with a typo must fail as `mixers/web.yaml:14:11: unknown attribute …` before any data
is read, so strings are loaded as `_Str` (a `str` that remembers its line and column).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.mix.filters import Location

FORMATS = ("jsonl.gz", "jsonl.zst", "jsonl", "parquet")


class RecipeError(DolmaKitError):
    """A mix recipe that cannot run as written; the message starts with file:line:col."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One filter expression (see `filters.py`); its `name` labels the row it gets in the summary table."""

    name: str
    expr: str
    where: Location = field(default_factory=Location)


@dataclass(frozen=True, kw_only=True)
class Replace:
    """Replace every span of `attribute` whose score is ≥ `min_score` with `replacement` ("" deletes)."""

    attribute: str
    replacement: str
    min_score: float = 0.5
    name: str = ""
    where: Location = field(default_factory=Location)


@dataclass(frozen=True, kw_only=True)
class Output:
    path: str
    """Folder the stream's documents go to, as `<path>/<source>/<shard>-NNNN.<format>`."""
    max_bytes: int = 1_000_000_000
    """Roll to a new part when the uncompressed JSON of a part would pass this many bytes."""
    format: str = "jsonl.gz"
    """jsonl.gz, jsonl.zst, jsonl or parquet."""
    level: int | None = None
    """Compression level (gzip 1–9, default 6 as Dolma's; zstd default 3): gzip 6 is half of mix's time."""


@dataclass(frozen=True, kw_only=True)
class Stream:
    name: str
    """Names the stream in the summary (and in the per-shard manifests under `<output>/_mix/`)."""
    documents: list[str]
    """Document shards: paths, globs, any smart_open URL (`…/documents/<source>/<shard>`)."""
    attributes: dict[str, str | None] = field(default_factory=dict)
    """Attribute experiments to join: name → attribute root (None: the `documents/` sibling
    `attributes/<name>/`). In YAML a list of names, or a mapping name → root."""
    include: list[Rule] = field(default_factory=list)
    """Keep a document only if one of these holds (none given: every document)."""
    exclude: list[Rule] = field(default_factory=list)
    """Drop a document when one holds; the first that holds is the reason counted."""
    replace: list[Replace] = field(default_factory=list)
    """Span replacements (PII masking, duplicate-paragraph removal), applied to kept documents."""
    sample: float = 1.0
    """< 1 keeps a seeded fraction; > 1 repeats documents (2.5: all twice, a seeded half three times)."""
    seed: int = 0
    """Seed of the sampling hash (documents are chosen by hash of (seed, source, id), not by order)."""
    output: Output


@dataclass(frozen=True, kw_only=True)
class Recipe:
    path: str
    """The recipe file (error messages point into it)."""
    streams: list[Stream]
    aliases: dict[str, str] = field(default_factory=dict)
    """Short names for attribute prefixes: `lid: demo.ft_lang_id` lets filters say `lid.en`."""
    translated_from: str = ""
    """"dolma" when the file was a Dolma mixer config."""


# --------------------------------------------------------------------------------------------- YAML with marks


class _Str(str):
    """A YAML string that knows where it was written (1-based line and column of its first character)."""

    line: int
    column: int


class _Loader(yaml.SafeLoader):
    pass


def _construct_str(loader: _Loader, node: yaml.ScalarNode) -> _Str:
    value = _Str(loader.construct_scalar(node))
    value.line = node.start_mark.line + 1
    value.column = node.start_mark.column + 1 + (1 if node.style in ("'", '"') else 0)
    return value


_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def load_yaml(path: str) -> Any:
    """Parse a recipe file (YAML or JSON); syntax errors say file:line:col."""
    try:
        text = storage.read_text(path)
    except (OSError, ValueError) as exc:
        raise RecipeError(f"{path}: cannot read the recipe: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise RecipeError(f"{where}: not valid YAML: {exc.problem}") from None


def location(path: str, value: Any, origin: str = "") -> Location:
    if isinstance(value, _Str):
        return Location(path, value.line, value.column, origin)
    return Location(path, 0, 0, origin)


def at(path: str, value: Any, key: str = "") -> str:
    """`file:line:col` of a loaded string (or of the file, for numbers and lists), plus a key path."""
    loc = f"{path}:{value.line}:{value.column}" if isinstance(value, _Str) else path
    return f"{loc}: {key}" if key else loc


_ENV = re.compile(r"\$\{(?:oc\.env:)?([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(path: str, value: str) -> str:
    """`${VAR}` and OmegaConf's `${oc.env:VAR}` (Dolma configs use it) from the environment."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in os.environ:
            raise RecipeError(f"{at(path, value)}: environment variable {m.group(1)} is not set")
        return os.environ[m.group(1)]

    return _ENV.sub(sub, str(value))


# --------------------------------------------------------------------------------------------- our shape

_STREAM_KEYS = {"name", "documents", "attributes", "filter", "replace", "sample", "seed", "output"}
_TOP_KEYS = {"streams", "aliases", "seed", "output"}
_DOLMA_HINTS = {"span_replacement": "replace", "max_size_in_bytes": "output.max_bytes"}


def _mapping(path: str, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecipeError(f"{path}: {what} must be a mapping, got {type(value).__name__}")
    return value


def _strings(path: str, value: Any, what: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise RecipeError(f"{at(path, value, what)} must be a string or a non-empty list of strings")
    return [expand_env(path, v) for v in items]


def _check_keys(path: str, data: dict[str, Any], allowed: set[str], what: str) -> None:
    for key in data:
        if key not in allowed:
            hint = f" (Dolma's name; ours is '{_DOLMA_HINTS[key]}')" if key in _DOLMA_HINTS else ""
            known = ", ".join(sorted(allowed))
            raise RecipeError(f"{at(path, key)}: unknown key '{key}' in {what}{hint}; known: {known}")


def _number(path: str, value: Any, what: str, kind: type = float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
        raise RecipeError(f"{at(path, value, what)} must be a number, got {value!r}")
    return kind(value)


def _rules(path: str, value: Any, what: str) -> list[Rule]:
    rules = []
    for item in value or []:
        if isinstance(item, dict):
            _check_keys(path, item, {"name", "expr"}, what)
            if "expr" not in item:
                raise RecipeError(f"{at(path, item.get('name'), what)}: a rule needs 'expr'")
            expr, name = item["expr"], str(item.get("name") or item["expr"])
        else:
            expr, name = item, str(item)
        if not isinstance(expr, str):
            raise RecipeError(f"{at(path, expr, what)}: a filter is a string expression, got {expr!r}")
        rules.append(Rule(name=name, expr=str(expr), where=location(path, expr)))
    return rules


def _replaces(path: str, value: Any) -> list[Replace]:
    out = []
    for item in value or []:
        item = _mapping(path, item, "each replace entry")
        _check_keys(path, item, {"attribute", "replacement", "min_score", "name"}, "replace")
        if "attribute" not in item or "replacement" not in item:
            raise RecipeError(
                f"{at(path, next(iter(item), ''))}: replace needs 'attribute' and 'replacement'"
            )
        attribute = item["attribute"]
        out.append(
            Replace(
                attribute=str(attribute),
                replacement=str(item["replacement"] or ""),
                min_score=_number(path, item.get("min_score", 0.5), "min_score"),
                name=str(item.get("name") or attribute),
                where=location(path, attribute),
            )
        )
    return out


def _output(path: str, value: Any, defaults: dict[str, Any]) -> Output:
    data = {**defaults, **_mapping(path, value or {}, "output")}
    _check_keys(path, data, {"path", "max_bytes", "format", "level"}, "output")
    if "path" not in data:
        raise RecipeError(f"{path}: every stream needs output.path (or a top-level output.path)")
    fmt = str(data.get("format", "jsonl.gz"))
    if fmt not in FORMATS:
        raise RecipeError(
            f"{at(path, data.get('format'), 'output.format')} must be one of {', '.join(FORMATS)}"
        )
    max_bytes = _number(path, data.get("max_bytes", 1_000_000_000), "output.max_bytes", int)
    if max_bytes <= 0:
        raise RecipeError(f"{at(path, data.get('max_bytes'), 'output.max_bytes')} must be > 0")
    level = None if data.get("level") is None else _number(path, data["level"], "output.level", int)
    return Output(path=expand_env(path, data["path"]), max_bytes=max_bytes, format=fmt, level=level)


def _attributes(path: str, value: Any) -> dict[str, str | None]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): (expand_env(path, v) if v else None) for k, v in value.items()}
    return {str(name): None for name in _strings(path, value, "attributes")}


def _stream(path: str, data: Any, index: int, top: dict[str, Any]) -> Stream:
    data = _mapping(path, data, f"streams[{index}]")
    _check_keys(path, data, _STREAM_KEYS, f"streams[{index}]")
    name = str(data.get("name") or f"stream{index}")
    if "/" in name or not name.strip():
        raise RecipeError(f"{at(path, data.get('name'), 'name')} must be non-empty, without '/'")
    if "documents" not in data:
        raise RecipeError(f"{at(path, data.get('name'))}: stream '{name}' needs 'documents'")
    filt = _mapping(path, data.get("filter") or {}, "filter")
    _check_keys(path, filt, {"include", "exclude"}, "filter")
    sample = _number(path, data.get("sample", 1.0), "sample")
    if sample <= 0:
        raise RecipeError(f"{at(path, data.get('sample'), 'sample')} must be > 0 (1 keeps every document)")
    return Stream(
        name=name,
        documents=_strings(path, data["documents"], "documents"),
        attributes=_attributes(path, data.get("attributes")),
        include=_rules(path, filt.get("include"), "filter.include"),
        exclude=_rules(path, filt.get("exclude"), "filter.exclude"),
        replace=_replaces(path, data.get("replace")),
        sample=sample,
        seed=_number(path, data.get("seed", top.get("seed", 0)), "seed", int),
        output=_output(path, data.get("output"), top.get("output") or {}),
    )


def is_dolma_config(data: Any) -> bool:
    """Dolma's mixer shape: JSONPath filters, `span_replacement`, `max_size_in_bytes`, or `work_dir`."""
    if not isinstance(data, dict):
        return False
    if "work_dir" in data or "processes" in data:
        return True
    for stream in data.get("streams") or []:
        if not isinstance(stream, dict):
            continue
        if "span_replacement" in stream or "max_size_in_bytes" in (stream.get("output") or {}):
            return True
        filt = stream.get("filter") or {}
        rules = [*(filt.get("include") or []), *(filt.get("exclude") or [])] if isinstance(filt, dict) else []
        if any(isinstance(r, str) and r.lstrip().startswith("$") for r in rules):
            return True
    return False


def parse_recipe(path: str, data: Any) -> Recipe:
    """Our recipe shape → `Recipe` (structure and types checked; filters are checked by `mix.resolve`)."""
    data = _mapping(path, data, "the recipe")
    _check_keys(path, data, _TOP_KEYS, "the recipe")
    streams = data.get("streams")
    if not isinstance(streams, list) or not streams:
        raise RecipeError(f"{path}: a recipe needs 'streams', a non-empty list")
    aliases = {str(k): str(v) for k, v in _mapping(path, data.get("aliases") or {}, "aliases").items()}
    out = [_stream(path, s, i, data) for i, s in enumerate(streams)]
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise RecipeError(f"{path}: stream names must be unique, got {names}")
    return Recipe(path=path, streams=out, aliases=aliases)


def load_recipe(path: str) -> Recipe:
    """Load a recipe file: ours, or a Dolma mixer config (translated)."""
    data = load_yaml(path)
    if is_dolma_config(data):
        from dolma_kit.mix.dolma import translate

        return translate(path, data)
    return parse_recipe(path, data)
