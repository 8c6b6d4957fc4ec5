"""The `tag` stage: run taggers over document shards and write line-aligned attribute files.

Attributes never touch documents (Dolma's contract): for `…/documents/<source>/<shard>` they go to
`…/attributes/<experiment>/<source>/<shard>` (or under `--destination`), one line per readable document, in
document order: `{"id", "source", "attributes": {"<experiment>__<tagger>__<type>": [[start, end, score], …]}}`.
Documents rejected with `--skip-bad` have no attribute line; `mix` skips the same records, so lines stay aligned.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from dolma_kit import storage
from dolma_kit.documents import DocumentReader, JsonlWriter, compression_of, dumps
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import RejectsWriter, RunResult, ShardStats, ShardTask, run_shards, write_summary
from dolma_kit.taggers.base import Tagger
from dolma_kit.taggers.registry import build_tagger, load_tagger_modules

SUMMARY_NAME = "tag_summary.json"
SCHEMA_NAME = "attributes_schema.json"


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

    def __post_init__(self) -> None:
        if not self.experiment or "__" in self.experiment or "/" in self.experiment:
            raise DolmaKitError(f"--experiment {self.experiment!r}: must be non-empty, without '/' or '__'")
        if not self.taggers:
            raise DolmaKitError("--taggers: give at least one tagger (see `dolma-kit list`)")


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
    with RejectsWriter(task, stats) as rejects, JsonlWriter(task.output) as out:
        reader = DocumentReader(task.input, on_bad=rejects if skip_bad else None)
        for doc in reader:
            attributes: dict[str, list[list[float]]] = {}
            for prefix, (_, tagger) in zip(prefixes, taggers, strict=True):
                for span in tagger.predict(doc):
                    attributes.setdefault(prefix + span.type, []).append([span.start, span.end, span.score])
            out.write_line(dumps({"id": doc.id, "source": doc.source, "attributes": attributes}).encode())
            stats.keep()
            stats.progress_bytes(reader.bytes_read)
        stats.progress_bytes(reader.bytes_read)


# --------------------------------------------------------------------------------------------- driver


def plan(config: TagConfig) -> list[ShardTask]:
    """One task per document shard, its output the mirrored attribute path."""
    tasks = []
    for info in storage.expand(config.documents):
        root, rel = attribute_root_and_relative(info.path, info.base, config.experiment, config.destination)
        tasks.append(ShardTask(key=rel, input=info.path, output=storage.join(root, rel), size=info.size))
    return tasks


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
    result = run_shards(fn, tasks, title="tag", processes=config.processes, force=config.force, **run_options)
    for root in roots:
        storage.write_text(storage.join(root, SCHEMA_NAME), dumps(attr_schema) + "\n")
        write_summary(result, storage.join(root, SUMMARY_NAME))
    return result
