"""`dolma-kit run pipelines/NAME.yaml`: stages chained under one work directory, resumable stage by stage.

A pipeline file is a work directory and a list of stages, each a subcommand with its options (see
`pipeline.references` for `${…}`, `dolma_kit.stages` for the commands and their keys):

```yaml
work_dir: work/demo
stages:
  - command: tag                 # name defaults to the command: `tag`; `dedup exact` → `dedup_exact`
    documents: ["${work_dir}/documents/*/*.jsonl.gz"]
    experiment: demo
    taggers: [ft_lang_id, gopher]
  - name: text_dups
    command: dedup exact
    documents: "${tag.documents}"
    experiment: dups
    key: text
```

**Resume.** Each stage gets a digest: its resolved options (minus ones that do not change its output, such as
`processes`) chained with the previous stage's digest. When a stage starts, `<work_dir>/_pipeline/<name>.running`
records the digest; when it ends, `<name>.done` records the digest, the stage's counts, and a digest of its
proof files (its own shard `.done` markers, summaries, manifests). On a re-run a stage is skipped when its
`.done` digest matches and its proofs are unchanged. A stage that was killed resumes through its own shard
markers; a stage whose options (or an earlier stage's) changed, or whose outputs changed behind its back, runs
again with `force`, and so does every stage after it (their digests chain).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dolma_kit import storage
from dolma_kit.config import ConfigError, Lookup, Where, load_yaml, normalise_key, set_dotted, substitute
from dolma_kit.errors import DolmaKitError
from dolma_kit.pipeline.checks import Findings, PlanCheck
from dolma_kit.pipeline.keys import stage_key_errors
from dolma_kit.pipeline.outputs import check_outputs
from dolma_kit.pipeline.references import pipeline_lookup
from dolma_kit.stages import Context, Stage, find_stage, known

MARKER_DIR = "_pipeline"
SUMMARY_NAME = "pipeline_summary.json"
_TOP_KEYS = ("work_dir", "local_dir", "stages")


@dataclass(slots=True)
class Step:
    """One stage of a pipeline, resolved: its config is what the subcommand would have built."""

    name: str
    stage: Stage
    config: Any
    options: dict[str, Any]
    """Every option as resolved (defaults included): what `${name.key}` reads and the digest covers."""
    given: dict[str, Any]
    """The keys the pipeline file (or an override) set, resolved: what the plan shows."""
    digest: str
    where: Where = field(default_factory=Where)
    """Where the stage is written in the pipeline file (its `name:` or `command:`): what the plan check's
    messages start with."""


@dataclass(slots=True)
class Pipeline:
    path: str
    work_dir: str
    stages: list[Step]
    warnings: list[str] = field(default_factory=list)
    """What the plan check found that does not stop a run (`pipeline.checks`): printed with the plan."""

    def marker(self, step: Step, suffix: str) -> str:
        return storage.join(self.work_dir, MARKER_DIR, f"{step.name}.{suffix}")

    @property
    def summary_path(self) -> str:
        return storage.join(self.work_dir, SUMMARY_NAME)


def _step_name(entry: dict[str, Any], index: int) -> str:
    name = entry.get("name") or str(entry.get("command") or f"stage{index}").replace(" ", "_")
    return str(name)


def apply_overrides(path: str, data: dict[str, Any], overrides: list[str]) -> None:
    """`work_dir=X`, `local_dir=X` and `STAGE.key[.sub]=VALUE` (VALUE read as YAML) → the loaded file, before
    it is resolved."""
    for item in overrides:
        key = item.removeprefix("--").partition("=")[0]
        if normalise_key(key) in ("work_dir", "local_dir"):
            set_dotted(data, item.replace(key, normalise_key(key), 1))
            continue
        stage_name, _, dotted = key.partition(".")
        entries = {_step_name(e, i): e for i, e in enumerate(data.get("stages") or []) if isinstance(e, dict)}
        if "=" not in item or not dotted:
            raise ConfigError(f"override {item!r}: write --STAGE.key=VALUE or --work_dir=DIR")
        if stage_name not in entries:
            raise ConfigError(
                f"override {item!r}: no stage '{stage_name}' in {path} (stages: {', '.join(entries)})"
            )
        set_dotted(entries[stage_name], item.removeprefix("--")[len(stage_name) + 1 :], f"override {item!r}:")


def _digest(stage: Stage, options: dict[str, Any], previous: str) -> str:
    kept = json.loads(json.dumps(options, default=str))
    for dotted in stage.volatile:
        *parents, leaf = dotted.split(".")
        node = kept
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    text = json.dumps({"command": stage.name, "options": kept}, sort_keys=True)
    return hashlib.sha256((previous + "\n" + text).encode()).hexdigest()[:16]


def _local_dir(where: Where, data: dict[str, Any], work_dir: str) -> str | None:
    """`local_dir:` (default: a local work_dir; None for a remote one without it, an error where it is used)."""
    given = data.get("local_dir")
    if given is None:
        return None if storage.is_remote(work_dir) else work_dir
    found = substitute(given, pipeline_lookup(Context(work_dir=work_dir)), where.child("local_dir"))
    if not isinstance(found, str) or not found or storage.is_remote(found):
        raise where.of(given).error(f"local_dir must be a local folder, not {found!r}")
    return found.rstrip("/") or "/"


def _stage_executor(stage: Stage, raw: dict[str, Any], executor: str | None, ray_address: str | None) -> None:
    """`dolma-kit run --executor ray [--ray-address A]`: the default of every stage that has an executor. A
    stage whose own keys name one (`executor:`, `ray_address:`) keeps it, so a file can pin one stage to
    local processes (or to another cluster) while the rest go to Ray."""
    if executor is None or "executor" not in stage.accepts():
        return
    if {normalise_key(k) for k in raw} & {"executor", "ray_address"}:
        return
    raw["executor"] = executor
    if ray_address is not None and executor == "ray":
        raw["ray_address"] = ray_address


def load_pipeline(
    path: str,
    overrides: list[str] | None = None,
    *,
    processes: int | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
) -> Pipeline:
    """Read, resolve and check every stage (configs built, nothing run): a typo, or two stages writing one
    folder (`pipeline.outputs`), or anything the plan check finds (`pipeline.checks`) fails before any work,
    every problem in one `ConfigError`; the check's warnings are in `Pipeline.warnings`.
    `processes`, `executor` and `ray_address` are the run's defaults for every stage that takes them."""
    if ray_address is not None and executor != "ray":
        raise ConfigError("--ray-address is for --executor ray; add --executor ray")
    top = Where(file=path)
    data = load_yaml(path, "pipeline")
    if not isinstance(data, dict):
        raise top.error("a pipeline is a mapping with work_dir and stages")
    for key in data:
        if key not in _TOP_KEYS:
            raise top.of(key).error(f"unknown key '{key}'; known: {', '.join(_TOP_KEYS)}")
    apply_overrides(path, data, overrides or [])
    if not isinstance(data.get("work_dir"), str) or not data["work_dir"]:
        raise top.error("work_dir must be a folder (every stage's outputs go under it)")
    entries = data.get("stages")
    if not isinstance(entries, list) or not entries:
        raise top.error("stages must be a non-empty list")
    work_dir = str(substitute(data["work_dir"], pipeline_lookup(Context()), top.child("work_dir")))
    work_dir = work_dir.rstrip("/") or "/"
    context = Context(file=path, work_dir=work_dir, local=_local_dir(top, data, work_dir))
    failed: set[str] = set()  # stages that did not load: a later `${name.key}` skips its stage (`_skipping`)
    context = dataclasses.replace(context, lookup=_skipping(pipeline_lookup(context), failed))

    def run_defaults(stage: Stage, raw: dict[str, Any]) -> None:
        if processes is not None and "processes" in stage.accepts():
            raw["processes"] = processes
        _stage_executor(stage, raw, executor, ray_address)

    findings = Findings()  # every problem, reported together at the end
    plan_check = PlanCheck(findings)
    steps: list[Step] = []
    previous = ""
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            findings.error(top.of(entry), f"stages[{index}] must be a mapping with a command")
            continue
        name = _step_name(entry, index)
        try:
            if name in context.earlier or name in failed:
                where = dataclasses.replace(top, context=f"stage '{name}'").of(entry.get("name"))
                raise where.error(f"two stages are named '{name}'; give one a name:")
            step = _load_step(name, entry, context, top, previous, findings, run_defaults)
        except _Unchecked:  # it refers to a stage with errors: checking it would only repeat them
            step = None
        except DolmaKitError as exc:
            findings.errors.append(str(exc))
            step = None
        if step is None:
            failed.add(name)
            continue
        plan_check.check(step, complete=not failed)
        previous = step.digest
        steps.append(step)
        context.earlier[name] = step.options
    try:
        check_outputs(path, steps)
    except ConfigError as exc:
        findings.errors.append(str(exc))
    findings.raise_errors(path)
    return Pipeline(path=path, work_dir=work_dir, stages=steps, warnings=findings.warnings)


class _Unchecked(Exception):
    """Raised by the lookup for `${STAGE.key}` when STAGE failed to load."""


def _skipping(lookup: Lookup, failed: set[str]) -> Lookup:
    """`lookup`, except that a reference to a stage in `failed` skips the stage that makes it."""

    def guarded(name: str, where: Where) -> Any:
        if "." in name and name.split(".")[0] in failed:
            raise _Unchecked(name)
        return lookup(name, where)

    return guarded


def _load_step(
    name: str,
    entry: dict[str, Any],
    context: Context,
    top: Where,
    previous: str,
    findings: Findings,
    run_defaults: Callable[[Stage, dict[str, Any]], None],
) -> Step | None:
    """One stage resolved and built (`previous`: the digest it chains to); None when its keys are wrong (all of
    them in `findings`); a `ConfigError` for anything else."""
    where = dataclasses.replace(top, context=f"stage '{name}'")
    what = entry.get("command") or entry.get("name")
    stage = find_stage(str(what or ""))
    if stage is None:
        raise where.of(what).error(f"unknown command '{what}'; known: {known()}")
    raw = {k: v for k, v in entry.items() if k not in ("name", "command")}
    run_defaults(stage, raw)
    given = substitute(raw, context.lookup, where)
    at = where.of(entry.get("name") or what)  # the stage's own line
    wrong = stage_key_errors(stage, given, at)
    if wrong:
        findings.errors += [str(e) for e in wrong]
        return None
    config = stage.make_config(given, context, where)
    options = stage.options(config)
    return Step(name, stage, config, options, given, _digest(stage, options, previous), at)
