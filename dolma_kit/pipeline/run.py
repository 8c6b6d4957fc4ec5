"""`dolma-kit run pipelines/NAME.yaml`: stages chained under one work directory, resumable stage by stage.

A pipeline file is a work directory and a list of stages, each a subcommand with its options (see
`pipeline_config` for the keys and `${…}` references, `pipeline_stages` for the commands):

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

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import MARKER_SUFFIX
from dolma_kit.mix.recipe import at, load_yaml
from dolma_kit.pipeline.commands import COMMANDS, find_command
from dolma_kit.pipeline.references import PipelineError, location, normalise_key, substitute
from dolma_kit.pipeline.stages import Command

MARKER_DIR = "_pipeline"
SUMMARY_NAME = "pipeline_summary.json"
_TOP_KEYS = ("work_dir", "local_dir", "stages")


@dataclass(slots=True)
class Stage:
    """One stage, resolved: its config is what the subcommand would have built."""

    name: str
    command: Command
    config: Any
    options: dict[str, Any]
    """Every option as resolved (defaults included): what `${name.key}` reads and the digest covers."""
    given: dict[str, Any]
    """The keys the pipeline file (or an override) set, resolved: what the plan shows."""
    digest: str


@dataclass(slots=True)
class Pipeline:
    path: str
    work_dir: str
    stages: list[Stage]

    def marker(self, stage: Stage, suffix: str) -> str:
        return storage.join(self.work_dir, MARKER_DIR, f"{stage.name}.{suffix}")

    @property
    def summary_path(self) -> str:
        return storage.join(self.work_dir, SUMMARY_NAME)


@dataclass(frozen=True, slots=True)
class Status:
    """What a run does with a stage: `state` says why (done, pending, resume, changed, outputs changed,
    forced, before --from)."""

    state: str
    run: bool
    force: bool


# --------------------------------------------------------------------------------------------- loading


def _stage_name(entry: dict[str, Any], index: int) -> str:
    name = entry.get("name") or str(entry.get("command") or f"stage{index}").replace(" ", "_")
    return str(name)


def apply_overrides(path: str, data: dict[str, Any], overrides: list[str]) -> None:
    """`work_dir=X`, `local_dir=X` and `STAGE.key[.sub]=VALUE` (VALUE read as YAML) → the loaded file, before it is resolved."""
    for item in overrides:
        key, sep, text = item.removeprefix("--").partition("=")
        if not sep or not key:
            raise PipelineError(f"override {item!r}: write --STAGE.key=VALUE or --work_dir=DIR")
        value = yaml.safe_load(text) if text else None
        if normalise_key(key) in ("work_dir", "local_dir"):
            data[normalise_key(key)] = value
            continue
        stage_name, _, dotted = key.partition(".")
        entries = {
            _stage_name(e, i): e for i, e in enumerate(data.get("stages") or []) if isinstance(e, dict)
        }
        if stage_name not in entries or not dotted:
            raise PipelineError(
                f"override {item!r}: no stage '{stage_name}' in {path} (stages: {', '.join(entries)})"
            )
        *parents, leaf = dotted.split(".")
        node = entries[stage_name]
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PipelineError(f"override {item!r}: {part} is not a mapping in stage '{stage_name}'")
        node[leaf] = value


def _digest(command: Command, options: dict[str, Any], previous: str) -> str:
    kept = json.loads(json.dumps(options, default=str))
    for dotted in command.volatile:
        *parents, leaf = dotted.split(".")
        node = kept
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    text = json.dumps({"command": command.name, "options": kept}, sort_keys=True)
    return hashlib.sha256((previous + "\n" + text).encode()).hexdigest()[:16]


def _local_dir(path: str, data: dict[str, Any], work_dir: str) -> str | None:
    """`local_dir:` (default: a local work_dir; None for a remote one without it, an error where it is used)."""
    given = data.get("local_dir")
    if given is None:
        return None if storage.is_remote(work_dir) else work_dir
    where = location(path, "local_dir")
    found = substitute(given, {"work_dir": work_dir, "stages": {}}, where)
    if not isinstance(found, str) or not found or storage.is_remote(found):
        raise PipelineError(f"{where(given, '')}: local_dir must be a local folder, not {found!r}")
    return found.rstrip("/") or "/"


def _stage_executor(
    command: Command, raw: dict[str, Any], executor: str | None, ray_address: str | None
) -> None:
    """`dolma-kit run --executor ray [--ray-address A]`: the default of every stage that has an executor. A
    stage whose own keys name one (`executor:`, `ray_address:`) keeps it, so a file can pin one stage to
    local processes (or to another cluster) while the rest go to Ray."""
    if executor is None or "executor" not in command.accepts():
        return
    own = {normalise_key(k) for k in raw}
    if own & {"executor", "ray_address"}:
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
    """Read, resolve and check every stage (configs built, nothing run): a typo fails before any work.
    `processes`, `executor` and `ray_address` are the run's defaults for every stage that takes them."""
    if ray_address is not None and executor != "ray":
        raise PipelineError("--ray-address is for --executor ray; add --executor ray")
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: a pipeline is a mapping with work_dir and stages")
    for key in data:
        if key not in _TOP_KEYS:
            raise PipelineError(f"{at(path, key)}: unknown key '{key}'; known: {', '.join(_TOP_KEYS)}")
    apply_overrides(path, data, overrides or [])
    if not isinstance(data.get("work_dir"), str) or not data["work_dir"]:
        raise PipelineError(f"{path}: work_dir must be a folder (every stage's outputs go under it)")
    entries = data.get("stages")
    if not isinstance(entries, list) or not entries:
        raise PipelineError(f"{path}: stages must be a non-empty list")
    work_dir = str(substitute(data["work_dir"], {"work_dir": "", "stages": {}}, location(path, "work_dir")))
    work_dir = work_dir.rstrip("/") or "/"
    scope: dict[str, Any] = {
        "work_dir": work_dir,
        "local_dir": _local_dir(path, data, work_dir),
        "stages": {},
    }
    stages: list[Stage] = []
    previous = ""
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise PipelineError(f"{at(path, entry)}: stages[{index}] must be a mapping with a command")
        name = _stage_name(entry, index)
        where = location(path, name)
        if name in scope["stages"]:
            raise PipelineError(
                f"{where(entry.get('name'), '')}: two stages are named '{name}'; give one a name:"
            )
        command = find_command(str(entry.get("command") or entry.get("name") or ""))
        if command is None:
            what = entry.get("command") or entry.get("name")
            known = ", ".join([*COMMANDS, "report (= stats)"])
            raise PipelineError(f"{where(what, '')}: unknown command '{what}'; known: {known}")
        raw = {k: v for k, v in entry.items() if k not in ("name", "command")}
        if processes is not None and "processes" in command.accepts():
            raw["processes"] = processes
        _stage_executor(command, raw, executor, ray_address)
        given = substitute(raw, scope, where)
        built = command.build(path, scope, given, where)
        previous = _digest(command, built.options, previous)
        stages.append(Stage(name, command, built.config, built.options, given, previous))
        scope["stages"][name] = built.options
    return Pipeline(path=path, work_dir=work_dir, stages=stages)


# --------------------------------------------------------------------------------------------- status


def proof_digest(stage: Stage) -> str | None:
    """Digest of the stage's proof files; None when one is missing or the stage's inputs cannot be listed."""
    try:
        paths = stage.command.proofs(stage.config)
    except (OSError, ValueError, DolmaKitError):
        return None
    h = hashlib.sha256()
    for path in paths:
        if not storage.exists(path):
            return None
        h.update(path.encode() + b"\0" + storage.read_text(path).encode() + b"\0")
    return h.hexdigest()[:16]


def stage_status(pipe: Pipeline, stage: Stage) -> Status:
    """Done, or what running it means (see the module docstring)."""
    done = storage.read_json_object(pipe.marker(stage, "done"))
    if done is not None:
        if done.get("digest") != stage.digest:
            return Status("changed", True, True)
        if done.get("proofs") != proof_digest(stage):
            return Status("outputs changed", True, True)
        return Status("done", False, False)
    running = storage.read_json_object(pipe.marker(stage, "running"))
    if running is not None:
        if running.get("digest") != stage.digest:
            return Status("changed", True, True)
        return Status("resume", True, bool(running.get("forced")))
    # never started here: what its output folders hold is another run's (cleared first, see `reset_stage`)
    return Status("pending", True, False)


def plan(pipe: Pipeline, *, force: bool = False, start: str | None = None) -> list[tuple[Stage, Status]]:
    """Each stage with what this run will do with it. A stage after one that runs forced runs forced too."""
    names = [s.name for s in pipe.stages]
    if start is not None and start not in names:
        raise PipelineError(f"--from {start}: no such stage in {pipe.path} (stages: {', '.join(names)})")
    out: list[tuple[Stage, Status]] = []
    started = start is None
    for stage in pipe.stages:
        started = started or stage.name == start
        status = stage_status(pipe, stage)
        if not started:
            if status.state != "done":
                raise PipelineError(
                    f"--from {start}: the earlier stage '{stage.name}' is {status.state}, not done; "
                    "run without --from first"
                )
            status = Status("done (before --from)", False, False)
        elif force or start is not None:
            status = Status("forced", True, True)
        out.append((stage, status))
    return out


def plan_table(pipe: Pipeline, planned: list[tuple[Stage, Status]]) -> Table:
    table = Table(title=f"{pipe.path}: work_dir {pipe.work_dir}", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("stage")
    table.add_column("command")
    table.add_column("options (as resolved)", overflow="fold")
    table.add_column("status")
    for i, (stage, status) in enumerate(planned, 1):
        lines = [f"{k} = {_short(v)}" for k, v in stage.given.items()]
        style = "green" if not status.run else ("yellow" if status.force else "cyan")
        label = status.state if not status.run else f"{status.state} → run" + (" (force)" * status.force)
        table.add_row(str(i), stage.name, stage.command.name, "\n".join(lines), f"[{style}]{label}[/]")
    return table


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:197] + "…"


# --------------------------------------------------------------------------------------------- running


def reset_stage(stage: Stage) -> None:
    """Before a stage's first start in this work dir: clear shard markers another run left in its output
    folders (they would make it skip shards made from other inputs or options). Run forced instead, a kill
    would leave the next attempt forced too, and a first run that was killed would start over."""
    if stage.command.reset is not None:
        stage.command.reset(stage.config)
        return
    try:
        paths = stage.command.proofs(stage.config)
    except (OSError, ValueError, DolmaKitError):
        return  # inputs not listable: the stage itself will say why
    for path in paths:
        if path.endswith(MARKER_SUFFIX):
            storage.remove(path)


def _balanced(counts: dict[str, Any] | None) -> bool | None:
    if counts is None:
        return None
    return counts["documents_in"] == counts["kept"] + counts["removed"] + counts["rejected"]


def run_pipeline(pipe: Pipeline, planned: list[tuple[Stage, Status]], console: Console) -> dict[str, Any]:
    """Run the planned stages in order; write markers as they go and `pipeline_summary.json` at the end."""
    rows: list[dict[str, Any]] = []
    for i, (stage, status) in enumerate(planned, 1):
        done_path, running_path = pipe.marker(stage, "done"), pipe.marker(stage, "running")
        if not status.run:
            done = storage.read_json_object(done_path) or {}
            rows.append(_row(stage, "skipped (done)", done.get("counts"), done.get("extra", {}), 0.0))
            continue
        console.rule(f"[bold]{i}/{len(planned)} {stage.name}[/] ({stage.command.name}, {status.state})")
        if status.state == "pending":
            reset_stage(stage)
        storage.write_text(running_path, json.dumps({"digest": stage.digest, "forced": status.force}) + "\n")
        storage.remove(done_path)
        start = time.perf_counter()
        outcome = stage.command.run(stage.config, status.force, console)
        seconds = time.perf_counter() - start
        if _balanced(outcome.counts) is False:
            raise PipelineError(
                f"stage '{stage.name}': documents in != kept + removed + rejected: {outcome.counts}"
            )
        marker = {
            "name": stage.name,
            "command": stage.command.name,
            "digest": stage.digest,
            "proofs": proof_digest(stage),
            "counts": outcome.counts,
            "extra": outcome.extra,
            "seconds": round(seconds, 3),
            "options": stage.options,
        }
        storage.write_text(done_path, json.dumps(marker, indent=1, default=str) + "\n")
        storage.remove(running_path)
        rows.append(_row(stage, "ran" if status.state == "pending" else f"ran ({status.state})",
                         outcome.counts, outcome.extra, seconds))  # fmt: skip
    reports = [r["extra"]["html"] for r in rows if r["command"] == "stats" and "html" in r["extra"]]
    summary = {
        "pipeline": pipe.path,
        "work_dir": pipe.work_dir,
        "stages": rows,
        "report": reports[-1] if reports else None,
    }
    storage.write_text(
        pipe.summary_path, json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n"
    )
    return summary


def _row(stage: Stage, status: str, counts: Any, extra: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "stage": stage.name,
        "command": stage.command.name,
        "status": status,
        "seconds": round(seconds, 3),
        "counts": counts,
        "balanced": _balanced(counts),
        "extra": extra,
    }


def _note(row: dict[str, Any]) -> str:
    extra = row["extra"]
    if row["command"] == "train" and "last_loss" in extra:
        note = f"{extra['steps']} steps, loss {extra['first_loss']:.3f} → {extra['last_loss']:.3f}"
        return note + (f", held-out {extra['eval_loss']:.3f}" if "eval_loss" in extra else "")
    if row["command"] == "tokenize" and "tokens" in extra:
        return f"{extra['tokens']:,} tokens in {extra['parts']} parts"
    if row["command"] == "train-tokenizer" and "vocab_size" in extra:
        return f"{extra['vocab_size']:,} ids from {extra['documents']:,} documents"
    if row["command"] == "stats" and "html" in extra:
        return str(extra["html"])
    if row["counts"] and row["counts"].get("removed_by"):
        return ", ".join(f"{k}: {v:,}" for k, v in row["counts"]["removed_by"].items())
    return ""


def summary_table(summary: dict[str, Any]) -> Table:
    """One row per stage: documents in = kept + removed + rejected (✓ when it holds), time, what it made."""
    table = Table(title=f"pipeline {summary['pipeline']}: documents in = kept + removed + rejected")
    table.add_column("stage")
    table.add_column("status")
    for col in ("in", "kept", "removed", "rejected", "", "s"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("notes", overflow="fold")
    for row in summary["stages"]:
        c = row["counts"]
        nums = [f"{c[k]:,}" for k in ("documents_in", "kept", "removed", "rejected")] if c else ["–"] * 4
        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: ""}[row["balanced"]]
        table.add_row(row["stage"], row["status"], *nums, mark, f"{row['seconds']:,.1f}", _note(row))
    return table
