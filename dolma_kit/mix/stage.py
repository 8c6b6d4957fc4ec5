"""The `mix` stage: join attributes to documents, filter, mask spans, sample, and write resharded output.

Plan (driver, before any document is read): load the recipe (ours or Dolma's), read each experiment's
`attributes_schema.json` (or, without one, the names in every row of its attribute files), resolve and
type-check every filter and replacement, and make one task per (stream, input shard). A bad recipe fails here
with file:line:col. A Dolma mixer stream keeps its own rules and needs no names: an attribute no row has is
absent, as in Dolma (`mix.dolma_run`).

Per shard (any worker): stream the document lines and, in lockstep, one line of each needed attribute file
(ids must match, or the error names both files and the line); decide keep/drop with precompiled closures; copy
kept documents 0…n times by a hash of (seed, source, id); replace spans; write parts of at most `max_bytes`
(uncompressed) named `<output>/<source>/<shard>-NNNN.<format>` after the input shard, so the output does not
depend on the process count. A kept document whose text is unchanged is written as its original line (no
re-serialisation: that is most of the speed). Each shard ends with a manifest `<output>/_mix/<stream>/…json`
(parts, counts, spans replaced, the shard's examples of what each rule removed: `mix.examples`), then the
executor's `.done` marker: a killed run resumes byte-identically.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dolma_kit import storage
from dolma_kit.attributes import SCHEMA_NAME, attribute_root_and_relative, names_in_schema
from dolma_kit.config import ConfigError
from dolma_kit.documents import (
    DOCUMENT_SUFFIXES,
    dumps,
    iter_raw_lines,
    parse_json_line,
    source_from_path,
)
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import RejectsWriter, RunResult, ShardStats, ShardTask, run_shards
from dolma_kit.mix import examples as samples
from dolma_kit.mix import jsonpath
from dolma_kit.mix.dolma_run import TOO_SHORT, DolmaDocuments, DolmaPlan, DolmaRules
from dolma_kit.mix.filters import Node, Resolver, attributes_of, compile_filter, parse_filter
from dolma_kit.mix.parts import PartWriter, sample_copies
from dolma_kit.mix.recipe import Output, Recipe, Stream
from dolma_kit.mix.rows import LateAttributes, attribute_line, records, with_source
from dolma_kit.mix.spans import SpanError, apply

MANIFEST_DIR = "_mix"
SUMMARY_NAME = "mix_summary.json"
SAMPLED_OUT = "sampled out"
NOT_INCLUDED = "include: none matched"
EMPTY = "empty after replace"


@dataclass(frozen=True, kw_only=True)
class StreamPlan:
    """A stream with every name resolved and every filter parsed: what workers run (frozen, picklable)."""

    name: str
    experiments: tuple[tuple[str, str | None], ...]
    """(experiment, attribute root or None for the `documents/` sibling), only those the filters read."""
    picks: tuple[tuple[str, ...] | None, ...]
    """Per experiment (same order), the attribute names read from its lines; the rest are never decoded
    (None: every name, decoded whole)."""
    include: tuple[tuple[str, Node], ...]
    exclude: tuple[tuple[str, Node], ...]
    replace: tuple[tuple[str, str, float, str], ...]
    """(rule name, full attribute name, min score, replacement)."""
    sample: float
    seed: int
    output: Output
    skip_bad: bool = False
    dolma: DolmaPlan | None = None
    """A Dolma mixer stream: decided and written with Dolma's semantics (`mix.dolma_run`)."""
    decisions: tuple[samples.ExampleRule, ...] = ()
    """The stream's rules in the order they decide, for the examples of what each removed (`mix.examples`)."""


# --------------------------------------------------------------------------------------------- planning


def _shard_rel(path: str) -> str:
    """`<source>/<shard>` below the documents folder (the attribute files mirror it)."""
    return attribute_root_and_relative(path, "", "-", "-")[1]


def _stem(rel: str) -> str:
    for suffix in DOCUMENT_SUFFIXES:
        if rel.endswith(suffix):
            return rel[: -len(suffix)]
    return rel


def attribute_path(doc_path: str, experiment: str, root: str | None) -> str:
    """The attribute file line-aligned with `doc_path` for one experiment."""
    base, rel = attribute_root_and_relative(doc_path, "", experiment, root)
    return storage.join(base, rel)


def experiment_names(stream: Stream, experiment: str, root: str | None, docs: list[str]) -> set[str]:
    """Attribute names an experiment can hold: from its schema file(s), else from every line of every one of
    its attribute files (a tool writes a name only on rows that have it, as Dolma does for
    `bff_duplicate_url` or PII kinds, so no sample of lines can tell which names exist)."""
    names: set[str] = set()
    files: dict[str, list[str]] = {}
    for doc in docs:
        attr_root, rel = attribute_root_and_relative(doc, "", experiment, root)
        files.setdefault(attr_root, []).append(storage.join(attr_root, rel))
    for attr_root, paths in files.items():
        schema = storage.join(attr_root, SCHEMA_NAME)
        if storage.exists(schema):
            names |= names_in_schema(json.loads(storage.read_text(schema)))
            continue
        present = [p for p in paths if storage.exists(p)]
        if not present:
            raise ConfigError(
                f"stream '{stream.name}': no attributes of experiment '{experiment}' at {attr_root} "
                f"(neither {SCHEMA_NAME} nor {paths[0]}); {_experiments_hint(attr_root)}"
            )
        for path in present:
            for line_no, raw in iter_raw_lines(path, empty_ok=True):
                row = parse_json_line(path, line_no, raw)
                found = row.get("attributes") if isinstance(row, dict) else None
                if isinstance(found, dict):
                    names.update(found)
    return names


def _experiments_hint(attr_root: str) -> str:
    """The experiments that do exist beside a missing one (a typo is the usual cause), or what to run."""
    parent = attr_root.rstrip("/").rpartition("/")[0]
    found = []
    if parent and not storage.is_remote(parent) and Path(parent).is_dir():
        found = sorted(p.name for p in Path(parent).iterdir() if p.is_dir() and not p.name.startswith("."))
    if found:
        return f"experiments at {parent}: {', '.join(found)}"
    return "run `dolma-kit tag`/`dedup` first"


def _dolma_plan(stream: Stream, rules: DolmaRules, docs: list[str], dolma_compatible: bool) -> DolmaPlan:
    """What a Dolma stream reads: only the attributes its JSONPath names, unless jq or the output needs all."""
    for experiment, root in stream.attributes.items():
        attr_root, rel = attribute_root_and_relative(docs[0], "", experiment, root) if docs else ("", "")
        if docs and not storage.exists(storage.join(attr_root, rel)):
            raise ConfigError(
                f"stream '{stream.name}': no attributes of experiment '{experiment}' for {docs[0]} "
                f"(expected {storage.join(attr_root, rel)}); {_experiments_hint(attr_root)}"
            )
    referenced: set[str] | None = set()  # the names the JSONPath queries read (None: not known statically)
    filtered: set[str] | None = set()  # of those, the names the filters read (the rest only span_replacement)
    filters = [] if rules.syntax == "jq" else [*rules.include, *rules.exclude]
    spans = [span.span for span in rules.span_replacement if span.syntax != "jq"]
    for index, text in enumerate(filters + spans):
        found = jsonpath.parse(text).attribute_names()
        referenced = None if found is None or referenced is None else referenced | found
        if index < len(filters):
            filtered = None if found is None or filtered is None else filtered | found
    jq = rules.syntax == "jq" or any(span.syntax == "jq" for span in rules.span_replacement)
    keep_all = jq or (stream.attributes and "attributes" not in rules.discard_fields)
    names = None if keep_all or referenced is None else frozenset(referenced)
    return DolmaPlan(
        rules=rules,
        dolma_compatible=dolma_compatible,
        names=names,
        late=frozenset() if names is None or filtered is None else names - filtered,
        referenced=None if referenced is None else frozenset(referenced),
    )


def resolve(
    recipe: Recipe, *, skip_bad: bool = False, dolma_compatible: bool = False
) -> tuple[list[StreamPlan], list[ShardTask]]:
    """Check the whole recipe against the attribute schemas and plan the tasks; reads no document."""
    plans, tasks = [], []
    for stream in recipe.streams:
        infos = storage.expand(stream.documents)
        docs = [i.path for i in infos]
        if stream.dolma is not None:
            dolma = _dolma_plan(stream, stream.dolma, docs, dolma_compatible)
            names = None if dolma.names is None else tuple(sorted(dolma.names - dolma.late))
            plans.append(
                StreamPlan(
                    name=stream.name,
                    experiments=tuple(stream.attributes.items()),
                    picks=tuple(names for _ in stream.attributes),
                    include=(),
                    exclude=(),
                    replace=(),
                    sample=1.0,
                    seed=stream.seed,
                    output=stream.output,
                    skip_bad=skip_bad,
                    dolma=dolma,
                    decisions=samples.dolma_rules(stream.dolma),
                )
            )
            _add_tasks(tasks, plans[-1], stream, infos)
            continue
        owner: dict[str, str] = {}
        for experiment, root in stream.attributes.items():
            for name in experiment_names(stream, experiment, root, docs):
                owner.setdefault(name, experiment)
        resolver = Resolver(set(owner), recipe.aliases)
        include = tuple((r.name, parse_filter(r.expr, resolver, r.where)) for r in stream.include)
        exclude = tuple((r.name, parse_filter(r.expr, resolver, r.where)) for r in stream.exclude)
        replace = []
        for rep in stream.replace:
            name, reason = resolver.resolve(rep.attribute)
            if name is None:
                raise rep.where.error(rep.attribute, 0, reason, rep.attribute)
            replace.append((rep.name, name, rep.min_score, rep.replacement))
        used = set().union(*(attributes_of(n) for _, n in include + exclude)) | {r[1] for r in replace}
        extra = [(SAMPLED_OUT, "sample", f"sample {stream.sample:g}", ())] if stream.sample < 1 else []
        if replace:
            written = ", ".join(f"{r[1]} ≥ {r[2]:g} → {r[3]!r}" for r in replace)
            extra.append((EMPTY, "replace", written, tuple(sorted({r[1] for r in replace}))))
        needed = {owner[n] for n in used}
        plans.append(
            StreamPlan(
                name=stream.name,
                experiments=tuple((e, r) for e, r in stream.attributes.items() if e in needed),
                picks=tuple(
                    tuple(sorted(n for n in used if owner[n] == e)) for e in stream.attributes if e in needed
                ),
                include=include,
                exclude=exclude,
                replace=tuple(replace),
                sample=stream.sample,
                seed=stream.seed,
                output=stream.output,
                skip_bad=skip_bad,
                decisions=samples.recipe_rules(include, exclude, tuple(extra), NOT_INCLUDED),
            )
        )
        _add_tasks(tasks, plans[-1], stream, infos)
    prefixes: dict[str, str] = {}
    for task in tasks:
        plan = next(p for p in plans if task.key.startswith(p.name + "/"))
        prefix = part_prefix(plan, task)
        if prefix in prefixes and prefixes[prefix] != task.key:
            raise ConfigError(
                f"{recipe.path}: {prefixes[prefix]} and {task.key} would write the same parts {prefix}-NNNN; "
                "give the streams different output paths"
            )
        prefixes[prefix] = task.key
    return plans, tasks


def _add_tasks(tasks: list[ShardTask], plan: StreamPlan, stream: Stream, infos: list[Any]) -> None:
    """One task per input shard of the stream, its manifest under `<output>/_mix/<stream>/`."""
    for info in infos:
        for experiment, root in plan.experiments:
            attribute_root_and_relative(info.path, "", experiment, root)  # raises if it has no location
        key = f"{stream.name}/{_stem(_shard_rel(info.path))}.json"
        output = storage.join(stream.output.path, MANIFEST_DIR, key)
        tasks.append(ShardTask(key=key, input=info.path, output=output, size=info.size))


def part_prefix(plan: StreamPlan, task: ShardTask) -> str:
    """`<output>/<source>/<shard stem>`: parts are `<prefix>-0000.<format>`, `-0001`, …"""
    return storage.join(plan.output.path, task.key[len(plan.name) + 1 : -len(".json")])


# --------------------------------------------------------------------------------------------- per shard


@functools.cache
def _compiled(plan: StreamPlan) -> tuple[Any, Any]:
    include = tuple(compile_filter(n) for _, n in plan.include)
    exclude = tuple((name, compile_filter(n)) for name, n in plan.exclude)
    return include, exclude


def mix_shard(
    task: ShardTask, stats: ShardStats, *, plans: tuple[StreamPlan, ...], examples: int = 0
) -> None:
    """Mix one input shard of one stream into its parts and manifest (see the module docstring); with
    `examples` > 0 also its samples of what each rule removed and let through (`mix.examples`)."""
    plan = next(p for p in plans if task.key.startswith(p.name + "/"))
    include, exclude = _compiled(plan)
    attr_files = [attribute_path(task.input, e, r) for e, r in plan.experiments]
    attr_lines = [iter_raw_lines(p, empty_ok=True) for p in attr_files]
    sources = [
        (path, lines, None if names is None else tuple((name, f'"{name}":') for name in names))
        for path, lines, names in zip(attr_files, attr_lines, plan.picks, strict=True)
    ]
    dolma = DolmaDocuments(plan.dolma, task.input, bool(attr_files)) if plan.dolma is not None else None
    late = LateAttributes(tuple(sorted(plan.dolma.late))) if plan.dolma and plan.dolma.late else None
    replace = plan.replace
    rate, seed = plan.sample, plan.seed
    replaced = [0] * len(replace)
    fallback_source = source_from_path(task.input)
    writer = PartWriter(part_prefix(plan, task), plan.output)
    sampler = samples.ShardExamples(plan, examples, task.input) if examples and plan.decisions else None
    text = line = None
    with RejectsWriter(task, stats) as rejects:
        try:
            for line_no, obj, raw in records(task.input, stats, rejects if plan.skip_bad else None):
                if late is not None:
                    late.rows.clear()
                if len(sources) == 1:  # the common case: no merge dict to build
                    attrs = attribute_line(*sources[0], task.input, line_no, obj["id"], late)
                else:
                    attrs = {}
                    for source_file in sources:
                        attrs.update(attribute_line(*source_file, task.input, line_no, obj["id"], late))
                if sampler is not None:
                    text = obj.get("text")  # as read: replacement assigns a new string
                copies, edits = 1, None
                if dolma is not None:
                    reason, line = dolma.process(obj, attrs, line_no, raw, late)
                elif include and not any(f(attrs) for f in include):
                    reason = NOT_INCLUDED
                else:
                    reason = next((name for name, f in exclude if f(attrs)), None)
                    if reason is None:
                        source = obj.get("source")
                        if not source:
                            raw = with_source(raw, obj, fallback_source)
                            source = fallback_source
                        copies = 1 if rate == 1.0 else sample_copies(rate, seed, source, obj["id"])
                        if not copies:
                            reason = SAMPLED_OUT
                        elif replace:
                            edits = _edits(replace, attrs)
                            if edits:
                                try:
                                    obj["text"] = apply(obj["text"], edits)
                                except SpanError as exc:
                                    raise DolmaKitError(
                                        f"{task.input}:{line_no} (id {obj['id']!r}): {exc}"
                                    ) from None
                                raw = None
                                if not obj["text"].strip():
                                    reason = EMPTY
                if sampler is not None:
                    sampler.decided(obj, attrs, line_no, text, reason, fallback_source)
                if reason is not None:
                    stats.remove(reason)
                    continue
                if dolma is None:
                    for edit in edits or ():  # counted for kept documents only
                        replaced[edit[3]] += 1
                    line = raw if raw is not None else dumps(obj).encode("utf-8")
                stats.keep()
                writer.write(line, obj, copies)  # type: ignore[arg-type]
            for path, lines in zip(attr_files, attr_lines, strict=True):
                extra = next(lines, None)
                if extra is not None:
                    raise DolmaKitError(
                        f"{path}:{extra[0]}: attribute file has more lines than {task.input} has documents; "
                        "the attributes were made from other documents"
                    )
            parts = writer.finish()
        except BaseException as exc:
            writer.abort(exc)
            raise
    manifest = {
        "stream": plan.name,
        "input": task.input,
        "parts": parts,
        "documents_out": sum(p["documents"] for p in parts),
        "bytes_out": sum(p["bytes"] for p in parts),
        "spans_replaced": {name: n for (name, *_), n in zip(replace, replaced, strict=True)},
        **(_dolma_manifest(dolma) if dolma is not None else {}),
        **({"examples": sampler.to_json(stats.removed_by, stats.kept + stats.removed)} if sampler else {}),
    }
    storage.write_text(task.output, samples.manifest_text(manifest))


def _edits(replace: tuple[tuple[str, str, float, str], ...], attrs: dict[str, Any]) -> list[Any]:
    """(start, end, replacement, rule index) of every span a kept document's replace rules match."""
    edits = []
    for index, (_, name, min_score, replacement) in enumerate(replace):
        for span in attrs.get(name) or ():
            if span[2] >= min_score:
                edits.append((int(span[0]), int(span[1]), replacement, index))
    return edits


def _dolma_manifest(dolma: DolmaDocuments) -> dict[str, Any]:
    """What a Dolma stream's shard adds to its manifest: quirks met, names read that rows had."""
    names, seen = dolma.plan.referenced, dolma.seen
    return {
        "spans_replaced": dolma.spans_replaced,
        "dolma_notes": dolma.notes,
        "names_seen": sorted(seen if names is None else seen & names),
    }


# --------------------------------------------------------------------------------------------- driver


@dataclass(kw_only=True)
class MixResult:
    recipe: Recipe
    plans: list[StreamPlan]
    run: RunResult
    streams: list[dict[str, Any]]
    examples: list[str] = field(default_factory=list)
    """The `examples.json` files written (none with `examples=0`)."""

    def to_json(self) -> dict[str, Any]:
        return {"recipe": self.recipe.path, "streams": self.streams, "run": self.run.to_json()}


def stream_summary(
    plan: StreamPlan, tasks: list[ShardTask], result: RunResult, merger: samples.Merger | None = None
) -> dict[str, Any]:
    """Counts for one stream: in, removed by each rule, spans replaced, documents and bytes out; each shard's
    examples go to `merger` as its manifest is read."""
    mine = {t.key for t in tasks if t.key.startswith(plan.name + "/")}
    stats = [s for s in result.shards if s.shard in mine]
    removed: dict[str, int] = {}
    rules = [NOT_INCLUDED] * bool(plan.include) + [n for n, _ in plan.exclude]
    if plan.dolma is not None:
        d = plan.dolma.rules
        rules = (
            [NOT_INCLUDED] * bool(d.include)
            + [str(q) for q in d.exclude]
            + [TOO_SHORT] * bool(d.min_text_length)
        )
    for name in rules + [SAMPLED_OUT] * (plan.sample < 1) + [EMPTY] * bool(plan.replace):
        removed[name] = 0
    for s in stats:
        for k, v in s.removed_by.items():
            removed[k] = removed.get(k, 0) + v
    spans = {name: 0 for name, *_ in plan.replace}
    docs_out = bytes_out = 0
    notes: dict[str, int] = {}
    seen: set[str] = set()
    for task in tasks:
        if task.key in mine:
            manifest = json.loads(storage.read_text(task.output))
            docs_out += manifest["documents_out"]
            bytes_out += manifest["bytes_out"]
            for k, v in manifest["spans_replaced"].items():
                spans[k] = spans.get(k, 0) + v
            for k, v in manifest.get("dolma_notes", {}).items():
                notes[k] = notes.get(k, 0) + v
            seen.update(manifest.get("names_seen", ()))
            if merger is not None:
                merger.add(task.output, manifest.get("examples"))
    out = {
        "stream": plan.name,
        "shards": len(stats),
        "documents_in": sum(s.documents_in for s in stats),
        "kept": sum(s.kept for s in stats),
        "removed": sum(s.removed for s in stats),
        "rejected": sum(s.rejected for s in stats),
        "removed_by": removed,
        "spans_replaced": spans,
        "documents_out": docs_out,
        "bytes_out": bytes_out,
        "output": plan.output.path,
    }
    if plan.dolma is not None:
        names = plan.dolma.referenced
        out["dolma"] = {
            "compatible": plan.dolma.dolma_compatible,
            "notes": notes,
            "absent": sorted(names - seen) if names is not None else [],
        }
    assert out["documents_in"] == out["kept"] + out["removed"] + out["rejected"], out
    return out


def mix(
    recipe: Recipe,
    *,
    processes: int | None = None,
    force: bool = False,
    skip_bad: bool = False,
    dolma_compatible: bool = False,
    examples: int = samples.DEFAULT_EXAMPLES,
    **run: Any,
) -> MixResult:
    """Run a recipe; writes parts, per-shard manifests, `mix_summary.json` and (unless `examples` is 0)
    `examples.json`, up to `examples` documents per rule removed and kept, in each output folder.

    `dolma_compatible` reproduces Dolma 1.2.1's quirks in Dolma mixer streams (`mix.dolma_run`)."""
    plans, tasks = resolve(recipe, skip_bad=skip_bad, dolma_compatible=dolma_compatible)
    samples.redo_stale(plans, tasks, examples, force=force)  # and checks examples ≥ 0
    fn = functools.partial(mix_shard, plans=tuple(plans), examples=examples)
    result = run_shards(fn, tasks, title="mix", processes=processes, force=force, **run)
    merged = samples.mergers(plans, examples)
    streams = [stream_summary(p, tasks, result, merged.get(p.name)) for p in plans]
    written = samples.collect({p.name: p.output.path for p in plans}, merged, examples)
    out = MixResult(recipe=recipe, plans=plans, run=result, streams=streams, examples=written)
    for path in sorted({p.output.path for p in plans}):
        summary = {"recipe": recipe.path, "streams": [s for s in streams if s["output"] == path]}
        storage.write_text(storage.join(path, SUMMARY_NAME), json.dumps(summary, indent=2) + "\n")
    return out
