"""What `mix` did to one document: which output read it, which rule decided, what was replaced, where it went.

A mix output folder holds `mix_summary.json` (the recipe's path) and, per input shard, a manifest listing the
parts it wrote (`mix.stage`). The recipe is taken from the pipeline's `mix` marker when there is one (the
resolved recipe, `${work_dir}` filled in: `<work_dir>/_pipeline/*.done`), else read from the summary's path
with `${work_dir}` set to the work directory. It is then planned with mix's own `resolve`, and the stream that
read the document's shard is evaluated with mix's compiled filters (`mix.filters.compile_filter`), its seeded
sampling (`mix.parts.sample_copies`) and span replacement (`mix.spans.apply`), in the order `mix_shard`
applies them; a Dolma mixer stream is decided by mix's own `DolmaDocuments`. The verdict is then checked
against the parts: a kept document must be there as many times as it was sampled, a removed one not at all;
a mismatch (attributes or recipe changed since the mix ran) is said, never hidden.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dolma_kit import storage
from dolma_kit.analysis.show_find import Occurrence, attribute_row, find_in_shard, is_spans, span_json
from dolma_kit.config import Where, load_yaml, substitute
from dolma_kit.documents import source_from_path
from dolma_kit.errors import DolmaKitError
from dolma_kit.mix.dolma_run import DolmaDocuments
from dolma_kit.mix.filters import attributes_of, compile_filter, unparse
from dolma_kit.mix.parts import sample_copies
from dolma_kit.mix.recipe import Recipe, is_dolma_config, parse_recipe
from dolma_kit.mix.spans import SpanError, apply
from dolma_kit.mix.stage import EMPTY, NOT_INCLUDED, SAMPLED_OUT, SUMMARY_NAME, StreamPlan, resolve

PIPELINE_MARKERS = "_pipeline"
_NOT_CONFIG = ("path", "translated_from")  # `Recipe` fields a marker's `recipe_data` carries that are no keys
_SKIP_DIRS = {"documents", "attributes", "tokens", "train", "report", "eval"}
"""Folders of a work directory that never hold a mix output at their top (the walk does not enter them)."""


@dataclass(kw_only=True)
class MixOutput:
    """A mix output folder and the recipe that wrote it (None, with `problem`, when it cannot be read)."""

    path: str
    recipe_file: str
    recipe: Recipe | None = None
    problem: str = ""
    plans: list[StreamPlan] = field(default_factory=list)
    tasks: list[Any] = field(default_factory=list)


@dataclass(kw_only=True)
class Verdict:
    """What one stream of one mix output did with one occurrence."""

    output: str
    stream: str
    decision: str
    """"kept" or "removed"."""
    reason: str = ""
    """The rule that removed it (its recipe name), `include: none matched`, `sampled out`, …"""
    rules: list[dict[str, Any]] = field(default_factory=list)
    """Every include/exclude rule: name, expression, whether it holds, the attribute values it read."""
    replaced: list[dict[str, Any]] = field(default_factory=list)
    copies: int = 0
    locations: list[dict[str, Any]] = field(default_factory=list)
    """Where the document is in the mixed parts: {"path", "line"} per copy."""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --------------------------------------------------------------------------------------------- finding outputs


def _rebase(value: Any, old: str, new: str) -> Any:
    """Paths a pipeline recorded under its work directory, moved to where that directory is now."""
    if isinstance(value, dict):
        return {k: _rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, old, new) for v in value]
    if isinstance(value, str) and old and old != new and (value == old or value.startswith(old + "/")):
        return new + value[len(old) :]
    return value


def same_path(a: str, b: str) -> bool:
    """The same file, however spelt (relative, `./`, symlinked); remote paths compare as written."""
    if storage.is_remote(a) or storage.is_remote(b):
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)


def pipeline_markers(root: str) -> list[dict[str, Any]]:
    """The done markers of a pipeline run in `root` (their recorded paths moved to `root`)."""
    folder = Path(root) / PIPELINE_MARKERS
    if storage.is_remote(root) or not folder.is_dir():
        return []
    summary = storage.read_json_object(storage.join(root, "pipeline_summary.json")) or {}
    old = str(summary.get("work_dir") or "").rstrip("/")
    markers = []
    for path in sorted(folder.glob("*.done")):
        marker = storage.read_json_object(str(path))
        if isinstance(marker, dict):
            markers.append(_rebase(marker, old, root.rstrip("/")))
    return markers


def _walk_summaries(root: str, depth: int = 4) -> list[str]:
    """Folders under `root` (a few levels) holding a mix summary."""
    found = []
    start = Path(root)
    for folder, dirs, files in os.walk(start):
        rel = Path(folder).relative_to(start).parts
        if SUMMARY_NAME in files:
            found.append(folder)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith((".", "_")) and not (not rel and d in _SKIP_DIRS)
        )
        if len(rel) >= depth:
            dirs[:] = []
    return found


def _load_recipe(path: str, root: str | None) -> Recipe:
    """The recipe file a summary names, `${work_dir}` read as the work directory, other `${VAR}` from the
    environment."""

    def lookup(name: str, where: Where) -> Any:
        if name == "work_dir" and root is not None:
            return root
        var = name.removeprefix("oc.env:")
        if var not in os.environ:
            raise where.error(f"${{{name}}} is not set (run from its pipeline, or export {var})")
        return os.environ[var]

    data = load_yaml(path, "recipe")
    if is_dolma_config(data):
        from dolma_kit.mix.dolma import translate

        return parse_recipe(path, translate(path, substitute(data, lookup, path)), translated_from="dolma")
    return parse_recipe(path, substitute(data, lookup, path))


def find_mix_outputs(root: str | None, mixed: list[str]) -> list[MixOutput]:
    """The mix outputs to explain: the folders given, else those a pipeline in `root` wrote and any under it.

    A folder given that holds no summary is an error; an output whose recipe cannot be read or planned is
    kept with its `problem` (the rest of `show` still works)."""
    recipes: dict[str, dict[str, Any]] = {}  # output folder → resolved recipe data, from pipeline markers
    folders: list[str] = []
    for folder in mixed:
        if not storage.exists(storage.join(folder, SUMMARY_NAME)):
            raise DolmaKitError(
                f"{folder}: no {SUMMARY_NAME}, so not a mix output (or the mix did not finish)"
            )
        folders.append(folder.rstrip("/"))
    if root is not None:
        for marker in pipeline_markers(root):
            options = marker.get("options") or {}
            if marker.get("command") != "mix" or not isinstance(options.get("recipe_data"), dict):
                continue
            for out in options.get("outputs") or []:
                recipes[out.rstrip("/")] = options["recipe_data"]
                if not mixed and storage.exists(storage.join(out, SUMMARY_NAME)):
                    folders.append(out.rstrip("/"))
        if not mixed and not storage.is_remote(root):
            folders += _walk_summaries(root)
    outputs: list[MixOutput] = []
    for folder in folders:
        if any(same_path(folder, o.path) for o in outputs):
            continue
        summary = storage.read_json_object(storage.join(folder, SUMMARY_NAME)) or {}
        output = MixOutput(path=folder, recipe_file=str(summary.get("recipe") or ""))
        data = next((d for out, d in recipes.items() if same_path(out, folder)), None)
        try:
            if data is not None:
                clean = {k: v for k, v in data.items() if k not in _NOT_CONFIG}
                output.recipe = parse_recipe(output.recipe_file or "<pipeline>", clean)
            else:
                output.recipe = _load_recipe(output.recipe_file, root)
            output.plans, output.tasks = resolve(output.recipe)
        except (DolmaKitError, OSError) as exc:
            output.recipe = None
            output.problem = f"recipe {output.recipe_file or '?'}: {exc}"
        outputs.append(output)
    return outputs


def input_of_part(outputs: list[MixOutput], part: str) -> str | None:
    """The input shard whose mix wrote `part` (from the per-shard manifests), or None."""
    for output in outputs:
        for task in output.tasks:
            manifest = storage.read_json_object(task.output) or {}
            for written in manifest.get("parts") or ():
                if same_path(storage.join(output.path, written.get("path", "")), part):
                    return str(manifest.get("input") or task.input)
    return None


# --------------------------------------------------------------------------------------------- verdicts


def _values(names: set[str], attrs: dict[str, Any]) -> dict[str, Any]:
    """What a rule read: each attribute's document score (first span), and its span count when not one."""
    out: dict[str, Any] = {}
    for name in sorted(names):
        spans = attrs.get(name) or []
        if not is_spans(spans):
            out[name] = spans  # a nested object (Dolma files): as it is
            continue
        out[name] = (
            spans[0][2]
            if len(spans) == 1
            else (None if not spans else {"first": spans[0][2], "spans": len(spans)})
        )
    return out


def explain_occurrence(occ: Occurrence, outputs: list[MixOutput], chars: int) -> list[Verdict]:
    """A verdict per (output, stream) whose documents include this occurrence's shard."""
    verdicts = []
    for output in outputs:
        for task in output.tasks:
            if not same_path(task.input, occ.doc.path):
                continue
            plan = next(p for p in output.plans if task.key.startswith(p.name + "/"))
            verdict = _verdict(occ, output, plan, chars)
            _locate(verdict, occ, task.output, output.path)
            verdicts.append(verdict)
    return verdicts


def _verdict(occ: Occurrence, output: MixOutput, plan: StreamPlan, chars: int) -> Verdict:
    verdict = Verdict(output=output.path, stream=plan.name, decision="removed")
    attrs: dict[str, Any] = {}
    for experiment, root in plan.experiments:
        row = attribute_row(occ, experiment, root)
        if row is None:
            verdict.notes.append(
                f"experiment {experiment!r} has no row for this document: mix would stop here"
            )
        else:
            attrs.update(row.attributes)
    doc = occ.doc
    if plan.dolma is not None:
        obj = copy.deepcopy(occ.record)  # Dolma's code adds attributes and provenance to it
        reason, _ = DolmaDocuments(plan.dolma, doc.path, bool(plan.experiments)).process(obj, attrs, doc.line)
        names = plan.dolma.referenced if plan.dolma.referenced is not None else set(attrs)
        verdict.rules.append(
            {"kind": "dolma", "name": "Dolma mixer filters", "values": _values(set(names), attrs)}
        )
        verdict.reason = reason or ""
        verdict.decision, verdict.copies = ("removed", 0) if reason else ("kept", 1)
        return verdict
    for kind, rules in (("include", plan.include), ("exclude", plan.exclude)):
        for name, node in rules:
            holds = bool(compile_filter(node)(attrs))
            verdict.rules.append(
                {"kind": kind, "name": name, "expr": unparse(node), "holds": holds,
                 "values": _values(attributes_of(node), attrs)}
            )  # fmt: skip
    includes = [r for r in verdict.rules if r["kind"] == "include"]
    if includes and not any(r["holds"] for r in includes):
        verdict.reason = NOT_INCLUDED
        return verdict
    deciding = next((r for r in verdict.rules if r["kind"] == "exclude" and r["holds"]), None)
    if deciding is not None:
        verdict.reason = deciding["name"]
        return verdict
    source = occ.record.get("source") or source_from_path(doc.path)  # what mix hashes (not metadata's)
    copies = 1 if plan.sample == 1.0 else sample_copies(plan.sample, plan.seed, source, doc.id)
    if not copies:
        verdict.reason = f"{SAMPLED_OUT} (rate {plan.sample:g}, seed {plan.seed})"
        return verdict
    edits = []
    for index, (rule, name, min_score, replacement) in enumerate(plan.replace):
        for span in attrs.get(name) or ():
            if span[2] >= min_score:
                edits.append((int(span[0]), int(span[1]), replacement, index))
                (shown,) = span_json([span], doc.text, chars)
                verdict.replaced.append(
                    {"rule": rule, "attribute": name, "replacement": replacement, **shown}
                )
    if edits:
        try:
            text = apply(doc.text, edits)
        except SpanError as exc:
            verdict.notes.append(f"{doc.path}:{doc.line}: {exc} (mix stops on this document)")
            return verdict
        if not text.strip():
            verdict.reason = EMPTY
            return verdict
    verdict.decision, verdict.copies = "kept", copies
    return verdict


def _locate(verdict: Verdict, occ: Occurrence, manifest_path: str, output: str) -> None:
    """Fill in where the mixed parts hold the document, and say when they disagree with the verdict."""
    manifest = storage.read_json_object(manifest_path) if storage.exists(manifest_path) else None
    if manifest is None:
        verdict.notes.append(
            f"this shard was not mixed (no manifest {manifest_path}): the verdict is what mix would do"
        )
        return
    for part in manifest.get("parts") or ():
        path = storage.join(output, part["path"])
        if storage.exists(path):
            for found in find_in_shard(path, occ.doc.id):
                verdict.locations.append({"path": path, "line": found.doc.line})
    if occ.nth > 1 or len(find_in_shard(occ.doc.path, occ.doc.id)) > 1:
        verdict.notes.append(
            "the id repeats in its shard: the places listed are those of every record with it"
        )
    elif len(verdict.locations) != verdict.copies:
        verdict.notes.append(
            f"the mixed parts hold it {len(verdict.locations)}× but the recipe now says {verdict.copies}×: "
            "attributes or the recipe changed since this mix ran"
        )
