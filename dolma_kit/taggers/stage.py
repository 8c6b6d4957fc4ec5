"""The `tag` stage: run taggers over document shards and write line-aligned attribute files.

Where attributes go and how a shard's lines are written is `attributes.py`'s job (shared with dedup); this
module builds the taggers once per process and turns their spans into attribute names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from dolma_kit import storage
from dolma_kit.attributes import SCHEMA_NAME, attribute_tasks, write_attribute_shard
from dolma_kit.documents import Document, dumps
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import ExecutorConfig, RunResult, ShardStats, ShardTask, run_shards, write_summary
from dolma_kit.stages import Outcome, Stage, counts_of
from dolma_kit.taggers.base import Tagger
from dolma_kit.taggers.registry import build_tagger, load_tagger_modules

SUMMARY_NAME = "tag_summary.json"


@dataclass(kw_only=True)
class TagConfig:
    """Everything `dolma-kit tag` needs; the CLI fills it, and pipelines will too."""

    documents: list[str]
    """Document shards: paths, globs or URLs (s3:// globs too)."""
    experiment: str
    """Experiment name: the attribute folder and the first part of every attribute name."""
    taggers: list[str]
    """Tagger specs: `NAME` or `NAME:key=value,...` (see `dolma-kit list`)."""
    destination: str | None = None
    """Attribute root; default: the `documents/` folder's sibling `attributes/<experiment>/`."""
    processes: int | None = None
    """Worker processes (default: all cores)."""
    tagger_modules: list[str] = field(default_factory=list)
    """Python modules or .py files that register extra taggers."""
    skip_bad: bool = False
    """Count bad records and write them to `<destination>/rejects/` instead of stopping."""
    force: bool = False
    """Redo shards that are already marked done."""
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Local processes (default) or a Ray cluster."""

    def __post_init__(self) -> None:
        if not self.experiment or "__" in self.experiment or "/" in self.experiment:
            raise DolmaKitError(f"--experiment {self.experiment!r}: must be non-empty, without '/' or '__'")
        if not self.taggers:
            raise DolmaKitError("--taggers: give at least one tagger (see `dolma-kit list`)")


# --------------------------------------------------------------------------------------------- per shard

_TAGGER_CACHE: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[str, Tagger]]] = {}


def build_taggers(specs: list[str], modules: list[str]) -> list[tuple[str, Tagger]]:
    """Build (attribute prefix, tagger) pairs once per process: models load once, not once per shard."""
    key = (tuple(specs), tuple(modules))
    if key not in _TAGGER_CACHE:
        load_tagger_modules(modules)
        taggers = [build_tagger(spec) for spec in specs]
        prefixes = [p for p, _ in taggers]
        dupes = {p for p in prefixes if prefixes.count(p) > 1}
        if dupes:
            raise DolmaKitError(
                f"two taggers write the same attribute prefix {sorted(dupes)}; give one a name="
            )
        _TAGGER_CACHE[key] = taggers
    return _TAGGER_CACHE[key]


def tag_shard(
    task: ShardTask,
    stats: ShardStats,
    *,
    experiment: str,
    specs: list[str],
    modules: list[str],
    skip_bad: bool,
) -> None:
    """Tag one shard: read documents, run every tagger, write one attribute line per document."""
    taggers = build_taggers(specs, modules)
    prefixes = [f"{experiment}__{prefix}__" for prefix, _ in taggers]

    def attributes_of(doc: Document) -> dict[str, list[list[float]]]:
        attributes: dict[str, list[list[float]]] = {}
        for prefix, (_, tagger) in zip(prefixes, taggers, strict=True):
            for span in tagger.predict(doc):
                attributes.setdefault(prefix + span.type, []).append([span.start, span.end, span.score])
        return attributes

    write_attribute_shard(task, stats, attributes_of, skip_bad=skip_bad)


# --------------------------------------------------------------------------------------------- driver


def plan(config: TagConfig) -> list[ShardTask]:
    """One task per document shard, its output the mirrored attribute path."""
    return attribute_tasks(config.documents, config.experiment, config.destination)


def schema(config: TagConfig) -> dict[str, Any]:
    """Every attribute name the run can write, with its tagger's resolved config: mix checks filters with it."""
    taggers = build_taggers(config.taggers, config.tagger_modules)
    out: dict[str, Any] = {"experiment": config.experiment, "taggers": {}}
    for prefix, tagger in taggers:
        out["taggers"][prefix] = {
            **tagger.describe(),
            "attributes": [f"{config.experiment}__{prefix}__{name}" for name in tagger.attribute_names()],
        }
    return out


def tag(config: TagConfig, **run_options: Any) -> RunResult:
    """Run the stage; writes attributes, a schema and a summary JSON per attribute root."""
    tasks = plan(config)
    attr_schema = schema(config)  # builds the taggers here first: a bad spec fails before any work starts
    roots = sorted({t.root for t in tasks})
    fn = functools.partial(
        tag_shard,
        experiment=config.experiment,
        specs=config.taggers,
        modules=config.tagger_modules,
        skip_bad=config.skip_bad,
    )
    run_options = {"executor": config.executor, **run_options}
    result = run_shards(fn, tasks, title="tag", processes=config.processes, force=config.force, **run_options)
    for root in roots:
        storage.write_text(storage.join(root, SCHEMA_NAME), dumps(attr_schema) + "\n")
        write_summary(result, storage.join(root, SUMMARY_NAME))
    return result


# --------------------------------------------------------------------------------------------- stage


def _proofs(config: TagConfig) -> list[str]:
    tasks = plan(config)
    return [t.marker for t in tasks] + [
        storage.join(r, SUMMARY_NAME) for r in sorted({t.root for t in tasks})
    ]


STAGE = Stage(
    name="tag",
    config=TagConfig,
    run=tag,
    outcome=lambda config, result: Outcome(counts_of(result), {"experiment": config.experiment}),
    proofs=_proofs,
    marks="documents with PII",
)
