"""`dolma-kit stats`: WIMBD-style counts over a Dolma corpus, streamed shard by shard, merged at the end.

Each document shard `<root>/documents/<source>/<shard>` is read once, together with its line-aligned attribute
files `<root>/attributes/<experiment>/<source>/<shard>`, by one executor task that writes its partial counts
(`counts.SourceCounts` per source) to `<output>/_work/shards/`. Memory per task is one document and the
task's domain counter; the driver adds the partials. A partial's name carries a fingerprint of the settings
and of the input files' sizes and modification times (local files), so a re-run recounts exactly the shards
whose documents or attributes changed, and reuses the rest (`force` recounts all).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dolma_kit import attributes as attribute_files
from dolma_kit import storage
from dolma_kit.analysis.counts import LENGTH_EDGES, AttributeReader, SourceCounts
from dolma_kit.analysis.domains import DomainCounter, registered_domain
from dolma_kit.analysis.report_clusters import minhash_clusters
from dolma_kit.analysis.report_quality import QualityProducer, QualityReader, quality_json, quality_producers
from dolma_kit.analysis.stages import annotate, find_summaries, read_stage_rows
from dolma_kit.analysis.training import read_run, tokenizer_info
from dolma_kit.attributes import (
    SCHEMA_NAME,
    SpanSummary,
    attribute_root_and_relative,
    read_summaries,
    summarize,
)
from dolma_kit.documents import DOCUMENT_SUFFIXES, DocumentReader, iter_raw_lines
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.executor import ExecutorConfig, RejectsWriter, RunResult, ShardStats, ShardTask, run_shards
from dolma_kit.records import parse_json_line

STATS_NAME = "stats.json"
VERSION = 3


@dataclass(kw_only=True)
class StatsConfig:
    """What `dolma-kit stats` counts and where it writes; the report stage of a pipeline fills the same."""

    root: str
    """Corpus root: holds `documents/<source>/<shard>` (and `attributes/<experiment>/…`). Local or URL."""
    attributes: list[str] | None = None
    """Experiments to read attributes from; None: every folder under `<root>/attributes/`."""
    tokenized: str | None = None
    """A tokenized folder: tokens per source come from its `manifest.json` (else: whitespace words)."""
    run: str | None = None
    """A training run folder: its `metrics.jsonl` (and `config.yaml`) make the report's training section."""
    stage_summaries: list[str] = field(default_factory=list)
    """Extra stage summaries (mix_summary.json, a tokenized manifest.json, folders holding them, globs)."""
    output: str | None = None
    """Where stats.json and report.html go; default `<root>/report/`."""
    url_field: str = "url"
    """Metadata field holding the URL (`a.b` for nested metadata), as `dedup exact --url-field`."""
    top_domains: int = 50
    """Domains listed in stats.json and the report."""
    domain_capacity: int = 10_000
    """Distinct domains a shard counts exactly before pruning to its top (see `domains.DomainCounter`)."""
    processes: int | None = None
    skip_bad: bool = False
    """Count bad records as rejected instead of stopping (attribute stages skipped them the same way)."""
    force: bool = False
    """Recount every shard even when its partial counts are up to date."""
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Local processes (default) or a Ray cluster."""

    @property
    def out(self) -> str:
        return (self.output or storage.join(self.root, "report")).rstrip("/")


# --------------------------------------------------------------------------------------------- planning


def document_shards(root: str) -> list[storage.FileInfo]:
    """The corpus's document files, `<root>/documents/<source>/<shard>` with a known document suffix."""
    pattern = storage.join(root, "documents", "*", "*")
    try:
        files = storage.expand([pattern])
    except DolmaKitError:
        raise DolmaKitError(f"{root}: no documents/<source>/<shard> files; is this a corpus root?") from None
    shards = [f for f in files if f.path.lower().endswith(DOCUMENT_SUFFIXES)]
    if not shards:
        raise DolmaKitError(f"{pattern}: no document shards ({', '.join(DOCUMENT_SUFFIXES)})")
    return shards


def experiments(root: str, wanted: list[str] | None) -> list[str]:
    """The experiments to read: those asked for (each must exist), or every one under `<root>/attributes/`."""
    base = storage.join(root, "attributes")
    if wanted:
        for exp in wanted:
            if not storage.is_remote(base) and not os.path.isdir(storage.join(base, exp)):
                raise DolmaKitError(f"--attributes {exp}: no folder {storage.join(base, exp)}")
        return list(dict.fromkeys(wanted))
    if storage.is_remote(base):
        try:
            found = storage.expand([storage.join(base, "*", "*.json")])
        except DolmaKitError:
            return []
        return sorted({storage.parent(f.path).rsplit("/", 1)[-1] for f in found})
    if not os.path.isdir(base):
        return []
    return sorted(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith(("_", ".")))


def schema_producers(root: str, exps: list[str]) -> tuple[dict[str, set[str]], set[str]]:
    """From each experiment's schema: the producers holding document language scores, and PII experiments."""
    language: dict[str, set[str]] = {}
    pii: set[str] = set()
    for exp in exps:
        path = storage.join(root, "attributes", exp, SCHEMA_NAME)
        if not storage.exists(path):
            continue
        try:
            taggers = json.loads(storage.read_text(path)).get("taggers") or {}
        except (ValueError, AttributeError) as exc:
            raise DolmaKitError(f"{path}: not an attributes schema `tag` writes ({exc})") from None
        for prefix, info in taggers.items():
            name = str(info.get("tagger", prefix)) if isinstance(info, dict) else prefix
            if name.startswith("ft_lang_id") and "paragraph" not in name:
                language.setdefault(exp, set()).add(prefix)
            elif name.startswith("pii"):
                pii.add(exp)
    return language, pii


def attribute_path(root: str, exp: str, info: storage.FileInfo) -> str:
    dest = storage.join(root, "attributes", exp)
    _, rel = attribute_root_and_relative(info.path, info.base, exp, dest)
    return storage.join(dest, rel)


def _fingerprint(settings: dict[str, Any], paths: list[str]) -> str:
    """Changes when the settings or any local input file's size or modification time changes."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in paths:
        if not storage.is_remote(path) and os.path.exists(path):
            st = os.stat(path)
            h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        else:
            h.update(f"{path}\0?\0".encode())
    return h.hexdigest()[:16]


def plan(
    config: StatsConfig, exps: list[str], quality: list[QualityProducer] | None = None
) -> list[ShardTask]:
    settings = {
        "v": VERSION,
        "exps": exps,
        # the thresholds the quality rules are recomputed under: another config recounts
        "quality": [dataclasses.asdict(p) for p in quality or []],
        "url_field": config.url_field,
        "cap": config.domain_capacity,
        "skip_bad": config.skip_bad,
    }
    tasks = []
    for info in document_shards(config.root):
        _, rel = attribute_root_and_relative(info.path, info.base, "stats", config.out)
        paths = [info.path] + [attribute_path(config.root, exp, info) for exp in exps]
        key = f"{rel}.json"  # the fingerprint names the folder, so tables show `<source>/<shard>.json`
        output = storage.join(config.out, "_work", "shards", _fingerprint(settings, paths), key)
        tasks.append(ShardTask(key=key, input=info.path, output=output, size=info.size))
    return tasks


# --------------------------------------------------------------------------------------------- per shard


def _attribute_lines(
    path: str, wanted: Callable[[str], bool], rules: QualityReader
) -> Iterator[tuple[int, Any, dict[str, SpanSummary], Mapping[str, Any]]]:
    """An attribute file's rows as (line, id, span summaries of the names stats reads, what the quality rules
    read); empty when every document of its shard was rejected. Summaries, not parsed spans: a long document's
    line can hold ~700,000 spans, which parsed whole would be ~120 MB of lists. A short line is parsed anyway,
    so the quality rules read its ~30 Gopher / C4 span lists as they are (a summary of each cost a quarter of
    stats' time); a long one is summarised, their names included."""
    both = functools.partial(_either, wanted, rules.wants)
    for line_no, raw in iter_raw_lines(path, empty_ok=True):
        short = len(raw) <= attribute_files.SCAN_BYTES  # read when called: tests lower it
        row = parse_json_line(path, line_no, raw) if short else None
        spans = (row.get("attributes") or {}) if isinstance(row, dict) else None
        if isinstance(spans, dict):
            summaries = {n: summarize(path, line_no, n, v) for n, v in spans.items() if wanted(n)}
            yield line_no, row.get("id"), summaries, spans
        else:  # a long line, or a malformed one (read_summaries says why, with file:line)
            doc_id, summaries = read_summaries(path, line_no, raw, both)
            yield line_no, doc_id, summaries, summaries
        del raw, row, spans  # not held while the caller reads the document's other lines


def _either(first: Callable[[str], bool], second: Callable[[str], bool], name: str) -> bool:
    return first(name) or second(name)


def _read_by_stats(attributes: AttributeReader, name: str) -> bool:
    return attributes.kind(name) is not None


def _url(metadata: dict[str, Any], url_field: str) -> str | None:
    value: Any = metadata.get(url_field)
    if value is None and "." in url_field:
        value = metadata
        for part in url_field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def count_shard(
    task: ShardTask,
    stats: ShardStats,
    *,
    root: str,
    exps: tuple[str, ...],
    language_producers: dict[str, set[str]],
    pii_experiments: set[str],
    url_field: str,
    capacity: int,
    skip_bad: bool,
    quality: tuple[QualityProducer, ...] = (),
) -> None:
    """Count one document shard and its attribute lines; write the partial counts to `task.output`."""
    info = storage.FileInfo(task.input, task.size, "")  # under documents/: the base is not needed
    folder = task.input.rstrip("/").split("/")[-2]
    attributes = AttributeReader(language_producers, pii_experiments)
    rules = QualityReader(quality)
    wanted = functools.partial(_read_by_stats, attributes)
    readers = []
    missing = []
    for exp in exps:
        path = attribute_path(root, exp, info)
        if storage.exists(path):
            readers.append((exp, path, _attribute_lines(path, wanted, rules)))
        else:
            missing.append(exp)
    per_source: dict[str, SourceCounts] = {}

    def source_counts(name: str) -> SourceCounts:
        if name not in per_source:
            per_source[name] = SourceCounts(domains=DomainCounter(capacity=capacity))
        return per_source[name]

    with RejectsWriter(task, stats) as rejects:

        def on_bad(exc: BadRecordError) -> None:
            rejects(exc)  # counted in `stats` and written to the shard's rejects file
            if exc.line:
                source_counts(folder).rejected += 1

        reader = DocumentReader(task.input, on_bad=on_bad if skip_bad else None)
        for doc in reader:
            counts = source_counts(doc.source or folder)
            counts.add_text(doc.text)
            url = _url(doc.metadata, url_field)
            counts.add_url_domain(registered_domain(url) if url else None)
            rows = []
            quality_rows = []
            for exp, path, lines in readers:
                line = next(lines, None)
                if line is None or line[1] != doc.id:
                    found = "no line" if line is None else f"id {line[1]!r}"
                    raise DolmaKitError(
                        f"{path}:{line[0] if line else 'end'}: {found} where {task.input}:{doc.line} has id "
                        f"{doc.id!r}; the attributes were made from other documents (or with other --skip-bad)"
                    )
                rows.append((exp, line[2]))
                quality_rows.append((exp, line[3], path, line[0]))
            attributes.count(counts, rows)
            rules.count(counts.quality, quality_rows)
            stats.keep()
            stats.progress_bytes(reader.bytes_read)
        for _, path, lines in readers:
            extra = next(lines, None)
            if extra is not None:
                raise DolmaKitError(f"{path}:{extra[0]}: more attribute lines than documents in {task.input}")
    partial = {
        "input": task.input,
        "experiments": [exp for exp, _, _ in readers],
        "missing_attributes": missing,
        "sources": {name: c.to_json() for name, c in sorted(per_source.items())},
    }
    storage.write_text(task.output, json.dumps(partial, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------- driver


@dataclass(slots=True)
class CorpusStats:
    """The merged counts (`data`, what stats.json holds) and the executor's run (timing, per-shard counts)."""

    data: dict[str, Any]
    run: RunResult


def _source_json(c: SourceCounts, top: int, tokens: int | None) -> dict[str, Any]:
    out = c.to_json()
    out["domains"] = c.domains.to_json(limit=top)
    out["mean_chars"] = c.chars / c.documents if c.documents else 0.0
    out["tokens"] = tokens if tokens is not None else c.words
    return out


def _tokens(tokenized: str | None) -> tuple[dict[str, Any], dict[str, int] | None]:
    if tokenized is None:
        return {"from": "whitespace words"}, None
    try:
        from dolma_kit.provenance import TokenizedDir

        manifest = TokenizedDir.open(tokenized).manifest
    except ImportError:
        manifest = json.loads(storage.read_text(storage.join(tokenized, "manifest.json")))
    per_source = {s: int(v["tokens"]) for s, v in manifest.get("per_source", {}).items()}
    tokenizer = manifest.get("tokenizer") or {}
    info = {
        "from": "tokenized manifest",
        "path": tokenized,
        "tokenizer": tokenizer.get("name"),
        "tokenizer_spec": tokenizer.get("spec"),
        "vocab_size": manifest.get("vocab_size"),
        "total": int(manifest.get("tokens", sum(per_source.values()))),
        "documents": int(manifest.get("documents", 0)),
        "per_source": {
            s: {"documents": int(v.get("documents", 0)), "tokens": int(v["tokens"])}
            for s, v in sorted(manifest.get("per_source", {}).items())
        },
    }
    return info, per_source


def _tokenizer(info: dict[str, Any]) -> dict[str, Any] | None:
    """The tokenizer named by the tokenized manifest, when its file is readable (else None: the report says)."""
    spec = info.get("tokenizer_spec")
    if not spec or not str(spec).endswith(".json") or not storage.exists(str(spec)):
        return None
    try:
        return tokenizer_info(str(spec))
    except DolmaKitError:
        return None


def _remove_stale_partials(out: str, tasks: list[ShardTask]) -> None:
    """Partials (and their rejects) from earlier runs over other inputs or settings (local output only)."""
    work = storage.join(out, "_work", "shards")
    if storage.is_remote(work) or not os.path.isdir(work):
        return
    keep = {t.output for t in tasks} | {t.marker for t in tasks} | {t.rejects for t in tasks}
    for dirpath, _, files in os.walk(work, topdown=False):
        for name in files:
            path = os.path.join(dirpath, name)
            if path not in keep and not name.startswith("."):
                os.remove(path)
        if dirpath != work and not os.listdir(dirpath):
            os.rmdir(dirpath)


def collect_stats(
    config: StatsConfig, *, trained_tokens: dict[str, int] | None = None, **run_options: Any
) -> CorpusStats:
    """Count the corpus (in parallel, resumable), merge, and read the stage summaries and the training run;
    writes nothing final. `trained_tokens`: tokens trained per source, from a caller that can read the run's
    data order (analysis never imports the trainer)."""
    exps = experiments(config.root, config.attributes)
    language, pii = schema_producers(config.root, exps)
    quality = quality_producers(config.root, exps)
    tasks = plan(config, exps, quality)
    fn = functools.partial(
        count_shard,
        root=config.root,
        exps=tuple(exps),
        language_producers=language,
        pii_experiments=pii,
        url_field=config.url_field,
        capacity=config.domain_capacity,
        skip_bad=config.skip_bad,
        quality=tuple(quality),
    )
    run_options = {"executor": config.executor, **run_options}
    result = run_shards(
        fn, tasks, title="stats", processes=config.processes, force=config.force, **run_options
    )
    _remove_stale_partials(config.out, tasks)
    merged: dict[str, SourceCounts] = {}
    seen_exps: set[str] = set()
    missing: dict[str, list[str]] = {}
    for task in tasks:
        partial = json.loads(storage.read_text(task.output))
        seen_exps.update(partial["experiments"])
        for exp in partial["missing_attributes"]:
            missing.setdefault(exp, []).append(partial["input"])
        for name, data in partial["sources"].items():
            counts = SourceCounts.from_json(data, config.domain_capacity)
            if name in merged:
                merged[name].merge(counts)
            else:
                merged[name] = counts
    total = SourceCounts(domains=DomainCounter(capacity=config.domain_capacity))
    for counts in merged.values():
        total.merge(counts)
    token_info, token_counts = _tokens(config.tokenized)
    summaries = find_summaries(config.root, config.stage_summaries)
    if config.tokenized:
        summaries.append(storage.join(config.tokenized, "manifest.json"))
    rows, skipped = read_stage_rows(list(dict.fromkeys(summaries)))
    total_json = total.to_json()
    annotate(rows, total_json, pii)
    top = config.top_domains
    data = {
        "version": VERSION,
        "corpus": config.root,
        "experiments": exps,
        "experiments_read": sorted(seen_exps),
        "missing_attributes": missing,
        "shards": len(tasks),
        "length_edges": LENGTH_EDGES,
        "tokens": token_info,
        "sources": {
            name: _source_json(c, top, None if token_counts is None else token_counts.get(name, 0))
            for name, c in sorted(merged.items())
        },
        "total": _source_json(total, top, None if token_counts is None else token_info["total"]),
        "stages": [r.to_json() for r in rows],
        "quality": quality_json(quality, set(total.quality)),
        "minhash_clusters": minhash_clusters(config.root, exps),
        "stage_summaries_skipped": skipped,
        "tokenizer": _tokenizer(token_info),
        "training": read_run(config.run, trained_tokens) if config.run else None,
    }
    return CorpusStats(data=data, run=result)
