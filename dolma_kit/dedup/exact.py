"""Exact dedup by normalised URL, whole text or paragraph: attributes that `mix` acts on, never rewritten documents.

Three passes, each an ordinary `run_shards` stage (parallel, `.done` markers, resume), with intermediate files
under a work dir; only one hash partition is ever in memory (see `exact_partition`):

1. **hash** (per document shard): normalise each key, hash it with xxh3-128, write records partitioned by hash.
2. **resolve** (per partition): sort the partition's records from all shards by (hash, shard, line, start) and
   mark every occurrence after the first. Shards are ordered by their path below the attribute root, which
   is `<source>/<shard>`, so the first occurrence in (source, shard, line) order wins.
3. **attributes** (per document shard): join the shard's resolved rows on the document's line and write
   line-aligned attributes (`attributes.write_attribute_shard`, so `--skip-bad` behaves as in `tag`).

128-bit hashes make a collision (two different keys taken for one) a ~n²/2¹²⁹ event: about 10⁻¹⁵ for a
trillion keys. At 64 bits "exact" would depend on luck: ~3% chance of one at a billion keys, and some 27,000
false duplicates expected at a trillion.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.text import Text

from dolma_kit import storage
from dolma_kit.attributes import SCHEMA_NAME, attribute_tasks
from dolma_kit.dedup import exact_passes as passes
from dolma_kit.dedup.dolma import DolmaDedupe, notes
from dolma_kit.dedup.exact_partition import offsets_path
from dolma_kit.dedup.exact_passes import attribute_names, count_names, spans
from dolma_kit.documents import dumps
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import ExecutorConfig, RunResult, ShardTask, run_shards, summary_table
from dolma_kit.stages import Outcome, Stage, counts_of

KEYS = ("url", "text", "paragraphs", "id", "dolma")
SUMMARY_NAME = "dedup_exact_summary.json"
STAGE_NAME = "dedup exact"
# Keys per partition the automatic `--partitions` aims at: a resolve worker needs ~70 bytes a key with the
# sort's temporaries (measured), so ~300 MB.
_TARGET_KEYS_PER_PARTITION = 4_000_000


@dataclass(kw_only=True)
class ExactDedupConfig:
    """Everything `dolma-kit dedup exact` needs; the CLI fills it, and pipelines will too."""

    documents: list[str]
    """Document shards: paths, globs or URLs (s3:// globs too)."""
    experiment: str
    """Experiment name: the attribute folder and the first part of every attribute name."""
    key: str
    """What makes two documents the same: `url` (normalised metadata URL), `text` (normalised whole text),
    `paragraphs` (each normalised paragraph; duplicates come out as spans) or `id` (the same `id` twice in one
    source: ids must be unique within a source, and provenance, trace and mix's id checks rely on it)."""
    destination: str | None = None
    """Attribute root; default: the `documents/` folder's sibling `attributes/<experiment>/`."""
    work_dir: str | None = None
    """Intermediate files go to `<work_dir>/exact/`; default `<attribute root>/_work/exact/` (MinHash uses
    `…/minhash/` beside it). A local disk is fastest."""
    partitions: int | None = None
    """Hash partitions: the resolve pass holds about 1/partitions of all keys at once (default: from the
    input size, 16 to 4096)."""
    processes: int | None = None
    """Worker processes (default: all cores)."""
    skip_bad: bool = False
    """Count bad records and write them to `<destination>/rejects/` instead of stopping."""
    force: bool = False
    """Redo every pass, even shards already marked done."""
    url_field: str = "url"
    """Metadata field holding the URL (`a.b` for a nested field); for `--key url`."""
    min_paragraph_chars: int = 0
    """Paragraphs whose normalised form is shorter are not deduplicated (for `--key paragraphs`). 0: every
    paragraph with a letter or digit, as CCNet does, so repeated short boilerplate lines are caught too."""
    min_paragraph_words: int = 3
    """Paragraphs of fewer words (once normalised) are not deduplicated (for `--key paragraphs`), as Dolma's
    `min_words` skips them: a one- or two-word line ("Note", "See also", "Options") repeats in every page of
    a documentation source, and marking it flagged 91.7% of one. The summary counts what this skipped
    (`paragraphs_under_minimum`). 1 (or 0): every paragraph with a letter or digit, as CCNet does."""
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Local processes (default) or a Ray cluster: all three passes run on it."""
    keep_work: bool = False
    """Keep the hash and resolve files after a successful run. By default they are removed: they are ~0.4× the
    gzipped input for paragraphs, and nothing reads them once every attribute shard is written (the plan and
    the per-shard counts, a few bytes a shard, stay for the summary of a later run)."""
    dolma: DolmaDedupe | None = None
    """For `key: dolma`: Dolma's document or paragraph (n-gram) dedup, its attribute name and values, exact
    instead of a Bloom filter (`dolma_kit.dedup.dolma`)."""

    def __post_init__(self) -> None:
        if not self.experiment or "__" in self.experiment or "/" in self.experiment:
            raise DolmaKitError(f"--experiment {self.experiment!r}: must be non-empty, without '/' or '__'")
        if self.key not in KEYS:
            raise DolmaKitError(f"--key {self.key!r}: choose one of {', '.join(KEYS)}")
        if self.partitions is not None and not 1 <= self.partitions <= 65_536:
            raise DolmaKitError(f"--partitions {self.partitions}: must be between 1 and 65536")
        if self.min_paragraph_chars < 0:
            raise DolmaKitError("--min-paragraph-chars must be 0 or more")
        if self.min_paragraph_words < 0:
            raise DolmaKitError("--min-paragraph-words must be 0 or more")
        if (self.key == "dolma") != (self.dolma is not None):
            raise DolmaKitError(
                "key 'dolma' and the 'dolma' section go together (see `dolma-kit dedup dolma`)"
            )

    def settings(self) -> dict[str, Any]:
        """What the attributes depend on (not partitions, processes or paths): a re-run must match them."""
        out: dict[str, Any] = {"key": self.key}
        if self.key == "url":
            out["url_field"] = self.url_field
        if self.key == "paragraphs":
            out["min_paragraph_chars"] = self.min_paragraph_chars
            out["min_paragraph_words"] = self.min_paragraph_words
        if self.dolma is not None:
            out["dolma"] = self.dolma.settings()
        return out


# --------------------------------------------------------------------------------------------- driver


def default_partitions(total_bytes: int, key: str, dolma: DolmaDedupe | None = None) -> int:
    """A power of two from 16 to 4096, from the input size: ~1 key per 2 KB of (compressed) input for
    document keys, ~1 per 40 bytes for paragraphs, ~1 per 4 bytes for n-grams (about one a word)."""
    per_key = 2048
    if spans(key, dolma):
        per_key = 4 if dolma is not None and dolma.ngram_length > 0 else 40
    keys = total_bytes / per_key
    wanted = max(1, int(np.ceil(keys / _TARGET_KEYS_PER_PARTITION)))
    return int(min(4096, max(16, 1 << (wanted - 1).bit_length())))


def prepare(config: ExactDedupConfig, tasks: list[ShardTask]) -> tuple[str, dict[str, Any], str]:
    """Check a re-run against what is on disk, then write the plan; returns (work dir, plan, digest).

    The attribute roots' schema records the settings the attributes were made with; the work dir's plan records
    those, the shard order and the partition count. A mismatch is an error unless `force`, so a resumed run
    never mixes files from two different runs.
    """
    roots = sorted({t.root for t in tasks})
    work = storage.join(config.work_dir or storage.join(roots[0], "_work"), "exact")
    settings = config.settings()
    for root in roots:
        schema = storage.read_json_object(storage.join(root, SCHEMA_NAME))
        if schema is None or config.force:
            continue
        if schema.get("stage") != STAGE_NAME:
            raise DolmaKitError(f"{root} holds attributes of another stage; use another --experiment")
        if schema.get("settings") != settings:
            raise DolmaKitError(
                f"{root} holds exact dedup attributes made with {schema.get('settings')}, not {settings}; "
                "use another --experiment (one per key), or --force to redo"
            )
    shards = [t.key for t in tasks]
    inputs = hashlib.sha256("\n".join(f"{t.key}\t{t.input}\t{t.size}" for t in tasks).encode()).hexdigest()
    plan_path = storage.join(work, passes.PLAN_NAME)
    previous = None if config.force else storage.read_json_object(plan_path)
    partitions = config.partitions or (previous or {}).get("partitions")
    partitions = partitions or default_partitions(sum(t.size for t in tasks), config.key, config.dolma)
    plan = {"settings": settings, "inputs": inputs, "partitions": partitions, "shards": shards}
    for name in ("settings", "inputs", "partitions"):
        if previous is not None and previous.get(name) != plan[name]:
            what = "input shards" if name == "inputs" else f"{name} ({previous.get(name)} vs {plan[name]})"
            raise DolmaKitError(
                f"{work} holds intermediate files of another run: {what} differ; "
                "pass --force to redo, or another --work-dir"
            )
    text = json.dumps(plan, indent=1) + "\n"
    storage.write_text(plan_path, text)
    schema = {
        "experiment": config.experiment,
        "stage": STAGE_NAME,
        "settings": settings,
        "attributes": sorted(attribute_names(config.experiment, config.key, config.dolma).values()),
    }
    for root in roots:
        storage.write_text(storage.join(root, SCHEMA_NAME), dumps(schema) + "\n")
    return work, plan, hashlib.sha256(text.encode()).hexdigest()


def _all_done(tasks: list[ShardTask]) -> bool:
    return all(storage.exists(t.marker) and storage.exists(t.output) for t in tasks)


def _pass_summary(result: RunResult | None) -> dict[str, Any]:
    if result is None:
        return {"status": "not needed: every attribute shard was already done"}
    total = result.total
    return {
        "shards": len(result.shards),
        "skipped": sum(s.status == "skipped" for s in result.shards),
        "in": total.documents_in,
        "removed": total.removed,
        "seconds": round(total.seconds, 3),
    }


def dedup_exact(config: ExactDedupConfig, **run_options: Any) -> RunResult:
    """Run the three passes; write attributes, a schema and `dedup_exact_summary.json` per attribute root.

    Returns the attributes pass's result: documents in = kept + removed + rejected, where removed are the later
    occurrences of a URL or text (documents are never removed by paragraph dedup, only spans are marked).
    """
    tasks = sorted(
        attribute_tasks(config.documents, config.experiment, config.destination), key=lambda t: t.key
    )
    work, plan, digest = prepare(config, tasks)
    partitions = plan["partitions"]
    common = {
        "processes": config.processes,
        "force": config.force,
        "executor": config.executor,
        **run_options,
    }
    hash_result = resolve_result = None
    hash_tasks = [
        ShardTask(key=t.key + ".npy", input=t.input, output=passes.hash_path(work, t.key), size=t.size)
        for t in tasks
    ]
    resolve_tasks = [
        ShardTask(
            key=passes.resolve_key(p),
            input=storage.join(work, "hash"),
            output=storage.join(work, "resolve", passes.resolve_key(p)),
        )
        for p in range(partitions)
    ]
    if config.force or not _all_done(tasks):
        hash_fn = functools.partial(
            passes.hash_shard,
            key=config.key,
            url_field=config.url_field,
            min_paragraph_chars=config.min_paragraph_chars,
            min_paragraph_words=config.min_paragraph_words,
            work=work,
            partitions=partitions,
            skip_bad=config.skip_bad,
            dolma=config.dolma,
        )
        hash_result = run_shards(hash_fn, hash_tasks, title="dedup exact 1/3 hash", **common)
        resolve_fn = functools.partial(
            passes.resolve_partition, work=work, digest=digest, paragraphs=spans(config.key, config.dolma)
        )
        resolve_result = run_shards(resolve_fn, resolve_tasks, title="dedup exact 2/3 resolve", **common)
    attribute_fn = functools.partial(
        passes.attribute_shard,
        work=work,
        digest=digest,
        experiment=config.experiment,
        key=config.key,
        url_field=config.url_field,
        skip_bad=config.skip_bad,
        dolma=config.dolma,
    )
    result = run_shards(attribute_fn, tasks, title="dedup exact 3/3 attributes", **common)
    summary = result.to_json()
    summary["exact"] = {
        "key": config.key,
        "settings": plan["settings"],
        "partitions": partitions,
        "work_dir": work,
        **_sum_counts(work, tasks, count_names(config.key, config.dolma)),
    }
    if config.dolma is not None:
        summary["exact"]["dolma_notes"] = notes(config.dolma)
    summary["passes"] = {
        "hash": _pass_summary(hash_result),
        "resolve": _pass_summary(resolve_result),
        "attributes": _pass_summary(result),
    }
    for root in sorted({t.root for t in tasks}):
        storage.write_text(
            storage.join(root, SUMMARY_NAME), json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
        )
    if not config.keep_work:
        clean_work([*hash_tasks, *resolve_tasks], work)
    return result


def clean_work(tasks: list[ShardTask], work: str) -> None:
    """Remove the hash and resolve passes' files once every attribute shard is written (markers first, so a
    file is never marked done without being there: a later run that needs them redoes both passes). Rejects
    stay where they are: they are the user's record of bad input."""
    for task in tasks:
        storage.remove(task.marker)
    for task in tasks:
        storage.remove(offsets_path(task.output))
        storage.remove(task.output)
    if not storage.is_remote(work):
        for folder in ("hash", "resolve"):
            remove_empty_folders(storage.local_path(storage.join(work, folder)))


def remove_empty_folders(root: str) -> None:
    """Delete `root` and the folders under it that hold no file (bottom-up); a folder with a file stays."""
    for folder, _, _ in os.walk(root, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def summary_paths(config: ExactDedupConfig) -> list[str]:
    """Where `dedup_exact` writes its summary: one per attribute root."""
    tasks = attribute_tasks(config.documents, config.experiment, config.destination)
    return [storage.join(root, SUMMARY_NAME) for root in sorted({t.root for t in tasks})]


def _sum_counts(work: str, tasks: list[ShardTask], names: tuple[str, ...]) -> dict[str, int | None]:
    """Totals of the attributes pass's per-shard counts; None when a shard's counts are gone (the work dir was
    deleted after the run, and this re-run found nothing to do)."""
    totals = dict.fromkeys(names, 0)
    for task in tasks:
        path = passes.counts_path(work, task.key)
        if not storage.exists(path):
            return dict.fromkeys(names)
        counts = json.loads(storage.read_text(path))
        for name in totals:
            totals[name] += counts.get(name, 0)
    return totals  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- stage


def marked_counts(config: ExactDedupConfig) -> dict[str, Any]:
    """What the run marked (duplicates, duplicate paragraphs and their characters), from its summary."""
    summary = json.loads(storage.read_text(summary_paths(config)[0]))
    skip = ("key", "settings", "work_dir", "dolma_notes")
    return {k: v for k, v in summary["exact"].items() if k not in skip}


#: what this stage marks (its console table says "marked", and `Stage.marks` is the same words)
MARKS = "later copies"


def _render(config: ExactDedupConfig, result: RunResult) -> list[Any]:
    counts = marked_counts(config)
    out: list[Any] = [summary_table(result, marks=MARKS)]
    out.append(Text(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items())))
    if config.dolma is not None:  # said in the run's output, not only in the docs
        out += [Text(line, style="yellow" if config.dolma.compat else "") for line in notes(config.dolma)]
    return out


def _outcome(config: ExactDedupConfig, result: RunResult) -> Outcome:
    extra = {"experiment": config.experiment, "key": config.key, **marked_counts(config)}
    return Outcome(counts_of(result), extra)


def _proofs(config: ExactDedupConfig) -> list[str]:
    tasks = attribute_tasks(config.documents, config.experiment, config.destination)
    return [t.marker for t in tasks] + summary_paths(config)


STAGE = Stage(
    name=STAGE_NAME,
    config=ExactDedupConfig,
    run=dedup_exact,
    outcome=_outcome,
    render=_render,
    proofs=_proofs,
    marks=MARKS,
)
