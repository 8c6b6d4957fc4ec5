"""Mix recipes: the dataclasses `dolma-kit mix` runs; their fields are the recipe's YAML keys.

One declaration: the YAML keys are the dataclass fields (`kw_only`, docstrings under each), read by the one
config mechanism (`dolma_kit.config.from_dict`), so the reference in docs/mix.md, `--explain` and the loader
all read from here. A file in Dolma's mixer shape (JSONPath filters, `span_replacement`, `max_size_in_bytes`)
is detected and translated by `mix.dolma` into plain data of this shape first, then read the same way.

Positions matter: a filter with a typo must fail as `mixers/web.yaml:14:11: unknown attribute …` before any data
is read, so strings keep the file, line and column they were written at (`config.Text`), and a rule's
`where` is derived from its expression.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from dolma_kit.config import ConfigError, Text, Where, environment, from_dict, load_yaml, substitute
from dolma_kit.mix.dolma_run import DolmaRules
from dolma_kit.mix.filters import Location

Format = Literal["jsonl.gz", "jsonl.zst", "jsonl", "parquet"]
_DOLMA_HINTS = {"span_replacement": "replace", "max_size_in_bytes": "output.max_bytes"}


def location_of(value: Any) -> Location:
    """Where a recipe string was written, for the filter language's caret messages."""
    if isinstance(value, Text) and value.line:
        return Location(value.file, value.line, value.column, value.origin)
    return Location(getattr(value, "file", "") or "<recipe>", 0, 0, getattr(value, "origin", ""))


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One filter expression (see `filters.py`); in YAML the expression alone, or `{expr, name}`."""

    expr: str
    name: str = ""
    """Labels the rule's row in the summary table (default: the expression)."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", str(self.expr))

    @property
    def where(self) -> Location:
        return location_of(self.expr)


@dataclass(frozen=True, kw_only=True)
class Filter:
    include: list[Rule] = field(default_factory=list)
    """Keep a document only if one of these holds (none given: every document)."""
    exclude: list[Rule] = field(default_factory=list)
    """Drop a document when one holds; the first that holds is the reason counted."""


@dataclass(frozen=True, kw_only=True)
class Replace:
    """Replace every span of `attribute` whose score is ≥ `min_score` with `replacement` ("" deletes)."""

    attribute: str
    replacement: str | None
    """The text that replaces each span; empty (or null) deletes it."""
    min_score: float = 0.5
    name: str = ""
    """Labels the rule in the summary (default: the attribute)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "replacement", str(self.replacement or ""))
        if not self.name:
            object.__setattr__(self, "name", str(self.attribute))

    @property
    def where(self) -> Location:
        return location_of(self.attribute)


@dataclass(frozen=True, kw_only=True)
class Output:
    path: str
    """Folder the stream's documents go to, as `<path>/<source>/<shard>-NNNN.<format>`."""
    max_bytes: int = 1_000_000_000
    """Roll to a new part when the uncompressed JSON of a part would pass this many bytes."""
    format: Format = "jsonl.gz"
    """jsonl.gz, jsonl.zst, jsonl or parquet."""
    level: int | None = None
    """Compression level (gzip 1–9, default 6 as Dolma's; zstd default 3): gzip 6 is half of mix's time."""

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ConfigError(f"output.max_bytes must be > 0, got {self.max_bytes}")


@dataclass(frozen=True, kw_only=True)
class Stream:
    name: str
    """Names the stream in the summary (and in the per-shard manifests under `<output>/_mix/`); default
    `stream<i>`."""
    documents: list[str]
    """Document shards: paths, globs, any smart_open URL (`…/documents/<source>/<shard>`)."""
    attributes: dict[str, str | None] = field(default_factory=dict)
    """Attribute experiments to join: name → attribute root (None: the `documents/` sibling
    `attributes/<name>/`). In YAML a list of names, or a mapping name → root."""
    filter: Filter = field(default_factory=Filter)
    replace: list[Replace] = field(default_factory=list)
    """Span replacements (PII masking, duplicate-paragraph removal), applied to kept documents."""
    sample: float = 1.0
    """< 1 keeps a seeded fraction; > 1 repeats documents (2.5: all twice, a seeded half three times)."""
    seed: int = 0
    """Seed of the sampling hash (documents are chosen by hash of (seed, source, id), not by order); the
    recipe's `seed` when the stream sets none."""
    output: Output
    """Where and how the stream is written; the recipe's `output` keys fill in what the stream leaves out."""
    dolma: DolmaRules | None = None
    """A Dolma mixer stream's own rules, run with Dolma's semantics instead of `filter`/`replace` (set by
    loading a Dolma mixer config; see `mix.dolma_run`)."""

    def __post_init__(self) -> None:
        if "/" in self.name or not self.name.strip():
            raise ConfigError(f"name must be non-empty, without '/', got {self.name!r}")
        if not self.documents:
            raise ConfigError(f"stream '{self.name}' needs 'documents', a path or a non-empty list")
        if self.sample <= 0:
            raise ConfigError(f"sample must be > 0 (1 keeps every document), got {self.sample}")

    @property
    def include(self) -> list[Rule]:
        return self.filter.include

    @property
    def exclude(self) -> list[Rule]:
        return self.filter.exclude


@dataclass(frozen=True, kw_only=True)
class Recipe:
    streams: list[Stream]
    aliases: dict[str, str] = field(default_factory=dict)
    """Short names for attribute prefixes: `lid: demo.ft_lang_id` lets filters say `lid.en`."""
    seed: int | None = None
    """Every stream's default `seed` (a stream's own wins)."""
    output: dict[str, Any] = field(default_factory=dict)
    """Every stream's default `output` keys (e.g. one `path` for all streams)."""
    path: str = field(default="", metadata={"config": False})
    """The recipe file (error messages point into it)."""
    translated_from: str = field(default="", metadata={"config": False})
    """"dolma" when the file was a Dolma mixer config."""

    def __post_init__(self) -> None:
        if not self.streams:
            raise ConfigError("a recipe needs 'streams', a non-empty list")
        names = [s.name for s in self.streams]
        if len(set(names)) != len(names):
            raise ConfigError(f"stream names must be unique, got {names}")


# --------------------------------------------------------------------------------------------- loading


def is_dolma_config(data: Any) -> bool:
    """Dolma's mixer shape: JSONPath filters, `span_replacement`, `max_size_in_bytes`, or `work_dir`."""
    if not isinstance(data, dict):
        return False
    if "work_dir" in data or "processes" in data or "shuffle" in data:
        return True
    for stream in data.get("streams") or []:
        if not isinstance(stream, dict):
            continue
        if "span_replacement" in stream or "max_size_in_bytes" in (stream.get("output") or {}):
            return True
        filt = stream.get("filter") or {}
        if isinstance(filt, dict) and "syntax" in filt:
            return True
        rules = [*(filt.get("include") or []), *(filt.get("exclude") or [])] if isinstance(filt, dict) else []
        if any(isinstance(r, str) and r.lstrip().startswith("$") for r in rules):
            return True
    return False


def _with_defaults(data: dict[str, Any], where: Where) -> dict[str, Any]:
    """Each stream gets its default name, and the recipe's `seed` and `output` where it sets none."""
    streams = data.get("streams")
    if not isinstance(streams, list):
        return data
    top_output = data.get("output") or {}
    if not isinstance(top_output, dict):
        raise where.child("output").error("expected a mapping of output keys")
    out = []
    for index, stream in enumerate(streams):
        if isinstance(stream, dict):
            for key in stream:
                if key in _DOLMA_HINTS:
                    raise (
                        where.child(f"streams[{index}]")
                        .child(key)
                        .error(f"unknown key '{key}' (Dolma's name; ours is '{_DOLMA_HINTS[key]}')")
                    )
            own = stream.get("output") or {}
            stream = {
                "name": f"stream{index}",
                **({"seed": data["seed"]} if "seed" in data else {}),
                **stream,
                "output": {**top_output, **own} if isinstance(own, dict) else own,
            }
            if not stream["output"]:
                raise where.child(f"streams[{index}]").error(
                    "every stream needs output.path (or a top-level output.path)"
                )
        out.append(stream)
    return {**data, "streams": out}


def parse_recipe(path: str, data: Any, *, translated_from: str = "") -> Recipe:
    """Recipe data of our shape (`${VAR}` not yet expanded) → `Recipe`; filters are checked by `mix.resolve`."""
    where = Where(file=path)
    if not isinstance(data, dict):
        raise where.error("a recipe is a mapping with 'streams'")
    data = substitute(_with_defaults(data, where), environment, where)
    recipe = from_dict(Recipe, data, where)
    return dataclasses.replace(recipe, path=path, translated_from=translated_from)


def load_recipe(path: str) -> Recipe:
    """Load a recipe file: ours, or a Dolma mixer config (translated)."""
    data = load_yaml(path, "recipe")
    if is_dolma_config(data):
        from dolma_kit.mix.dolma import translate

        return parse_recipe(path, translate(path, data), translated_from="dolma")
    return parse_recipe(path, data)
