"""The one stage registry: each stage declares once its config, its run, what it counts and how it prints.

A stage's declaration is a `Stage` named `STAGE` in its own module (`dolma_kit/taggers/stage.py` declares
`tag`); `MODULES` below says which module that is, in pipeline order. Everything that lists stages is built
from here: the CLI's stage subcommands (`dolma_kit.cli`), `dolma-kit run` (`dolma_kit.pipeline`) and the
report's stage rows (`dolma_kit.analysis.stages`). Adding a stage is one declaration and one line here.

Declarations are imported only when asked for (`find_stage`), so `dolma-kit tag --help` imports no trainer and
a pipeline imports only the stages it runs. Nothing here imports a stage module by name: the arrows go from
the stage modules to this one.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from dolma_kit.config import ConfigError, Lookup, Where, config_keys, environment

#: stage name → the module whose `STAGE` declares it; the order is the order a pipeline runs them.
MODULES: dict[str, str] = {
    "demo-corpus": "dolma_kit.demo.corpus",
    "tag": "dolma_kit.taggers.stage",
    "dedup exact": "dolma_kit.dedup.exact",
    "dedup minhash": "dolma_kit.dedup.minhash_stage",
    "decontaminate": "dolma_kit.analysis.decontam",
    "mix": "dolma_kit.mix.command",
    "train-tokenizer": "dolma_kit.tokenize.training",
    "tokenize": "dolma_kit.tokenize.stage",
    "train": "train.stage",
    "stats": "dolma_kit.analysis.report",
}
ALIASES = {"report": "stats"}


@dataclass(slots=True)
class Outcome:
    """What a stage did: document counts (in = kept + removed + rejected) when it reads documents, and
    stage-specific numbers (`extra`) for the pipeline's summary."""

    counts: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Context:
    """What a stage's config may draw on beyond its own keys: the pipeline it is part of, if any."""

    file: str = ""
    """The pipeline file ("" on the command line)."""
    work_dir: str = ""
    local: str | None = None
    """The pipeline's local folder (None when its work directory is remote and none was set)."""
    earlier: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Earlier stages' resolved options, by stage name."""
    lookup: Lookup = environment
    """Resolves `${…}` (the pipeline's references; the environment on the command line)."""

    def local_dir(self, where: Where) -> str:
        """The local folder for outputs that must be local files; an error names the fix when there is none."""
        if not self.local:
            raise where.error(
                f"work_dir {self.work_dir} is remote: set `local_dir:` (or --local_dir=DIR), a local "
                "folder for what must be local files (tokens, training runs)"
            )
        return self.local


def _no_defaults(context: Context) -> dict[str, Any]:
    return {}


def counts_only(config: Any, result: Any) -> Outcome:
    """The outcome of a stage whose run returns a `RunResult` and nothing more worth keeping."""
    return Outcome(counts_of(result))


def summary_only(config: Any, result: Any, marks: str = "") -> list[Any]:
    """Prints the run's summary table (per shard: in = kept + removed + rejected; "marked" for a stage that
    only marks, `marks`)."""
    from dolma_kit.executor import summary_table

    return [summary_table(result, marks=marks)]


def removed_by_note(extra: dict[str, Any], counts: dict[str, Any] | None) -> str:
    """The pipeline summary's note for a stage that reads documents: what removed (or marked) how many."""
    if counts and counts.get("removed_by"):
        return ", ".join(f"{k}: {v:,}" for k, v in counts["removed_by"].items())
    return ""


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One stage, declared once."""

    name: str
    """The CLI name (`tag`, `dedup exact`); a pipeline's `command:`."""
    config: type | None
    """The config dataclass: its fields are the stage's YAML keys and CLI options (a nested dataclass's fields
    also flat: `threshold` for `minhash.threshold`). None when `build` makes the config."""
    run: Callable[[Any], Any]
    """config → result."""
    outcome: Callable[[Any, Any], Outcome] = counts_only
    """(config, result) → the counts and numbers the pipeline keeps."""
    render: Callable[[Any, Any], list[Any]] = summary_only
    """(config, result) → what the console prints after a run."""
    proofs: Callable[[Any], list[str]]
    """Small files whose bytes change whenever the stage's output is redone or removed (shard `.done` markers,
    summaries, manifests): a pipeline records their digest, so a stage whose outputs were deleted or rewritten
    behind its back is not taken as done."""
    options: Callable[[Any], dict[str, Any]] = lambda config: options_of(config)
    """config → its options as plain data: what a pipeline's `${stage.key}` reads and its digest covers."""
    defaults: Callable[[Context], dict[str, Any]] = _no_defaults
    """Keys a pipeline fills in when the stage leaves them out (`output: ${work_dir}` for demo-corpus)."""
    build: Callable[[dict[str, Any], Context, Where], Any] | None = None
    """Builds the config from (keys, context, where) where `from_dict` alone cannot (mix reads a recipe file
    and resolves the pipeline's references inside it; train merges a training config file)."""
    keys: Callable[[], set[str]] | None = None
    """The keys a stage with `build` takes (default: the config's fields)."""
    outputs: Callable[[Any], list[str]] | None = None
    """config → the folders and files only this stage writes: a pipeline refuses two stages that share one.
    None: found from its options (attribute roots, `destination`, `output(s)`, `run_dir`, `work_dir` per
    command; see `dolma_kit.pipeline.outputs`)."""
    volatile: frozenset[str] = frozenset({"processes", "force", "executor", "threads"})
    """Options that do not change what the stage writes: left out of its pipeline digest."""
    reset: Callable[[Any], None] | None = None
    """Clears what another run left in the stage's outputs before its first start in a pipeline's work dir;
    None: remove its proof files that are shard `.done` markers."""
    note: Callable[[dict[str, Any], dict[str, Any] | None], str] = removed_by_note
    """(extra, counts) → the note in the pipeline summary's row."""
    marks: str = ""
    """Non-empty for a stage that only marks (writes attributes; `mix` removes): what its flagged documents
    are, as the report words it."""

    def accepts(self) -> set[str]:
        """The keys the stage takes in a pipeline (`force` is the pipeline's to set)."""
        if self.keys is not None:
            return self.keys()
        assert self.config is not None, f"stage {self.name}: declare config or keys"
        return set(config_keys(self.config, flat=True)) - {"force"}

    def make_config(self, raw: dict[str, Any], context: Context, where: Where) -> Any:
        """The stage's config from its keys (the pipeline's `defaults` under them)."""
        from dolma_kit.config import from_dict, normalise_key

        if "force" in {normalise_key(k) for k in raw}:
            raise where.child("force").error("use `dolma-kit run --force` (or --from) instead")
        raw = {**self.defaults(context), **raw}
        if self.build is not None:
            return self.build(raw, context, where)
        assert self.config is not None
        return from_dict(self.config, raw, where, flat=True)

    def execute(self, config: Any, console: Console, *, force: bool | None = None) -> Outcome:
        """Run, print, count: what the CLI subcommand and a pipeline stage both do."""
        if force is not None and any(f.name == "force" for f in dataclasses.fields(config)):
            config = dataclasses.replace(config, force=force)
        result = self.run(config)
        for renderable in self.render(config, result):
            console.print(renderable)
        return self.outcome(config, result)


def options_of(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON-ready data (values JSON cannot hold as their text)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def counts_of(result: Any) -> dict[str, Any]:
    """The document counts of a `RunResult` (in = kept + removed + rejected, and by reason)."""
    total = result.total
    return {
        "documents_in": total.documents_in,
        "kept": total.kept,
        "removed": total.removed,
        "rejected": total.rejected,
        "removed_by": dict(sorted(total.removed_by.items())),
    }


_LOADED: dict[str, Stage] = {}


def canonical(name: str) -> str | None:
    """A stage name as registered; `-`, `_` and spaces are interchangeable (`dedup_exact`), `report` = stats."""
    key = " ".join(str(name).replace("_", " ").replace("-", " ").split())
    key = ALIASES.get(key, key)
    return next((n for n in MODULES if n.replace("-", " ") == key), None)


def find_stage(name: str) -> Stage | None:
    """The declaration of a stage by (any spelling of) its name; None for no such stage."""
    real = canonical(name)
    if real is None:
        return None
    if real not in _LOADED:
        declared = getattr(importlib.import_module(MODULES[real]), "STAGE", None)
        if not isinstance(declared, Stage) or declared.name != real:
            raise ConfigError(f"{MODULES[real]} does not declare STAGE = Stage(name={real!r}, …)")
        _LOADED[real] = declared
    return _LOADED[real]


def stage(name: str) -> Stage:
    """`find_stage`, for names known to exist."""
    found = find_stage(name)
    if found is None:
        raise ConfigError(f"unknown stage '{name}'; known: {', '.join(MODULES)}")
    return found


def known() -> str:
    """The stage names an error lists."""
    return ", ".join([*MODULES, *(f"{a} (= {n})" for a, n in ALIASES.items())])
