"""The commands a pipeline stage can run: how each builds its config, runs, counts, and proves it finished.

Each entry wraps one subcommand's library call with the config dataclass that subcommand builds (one declaration,
see `pipeline_config`). `proofs` lists small files whose bytes change whenever the stage's output is redone or
removed (the stage's own shard `.done` markers, summaries, manifests): the pipeline's stage marker records their
digest, so a stage whose outputs were deleted or rewritten behind its back is not taken as done.

This module has the contract (`Command`, `Outcome`, `Built`) and the data stages (demo-corpus, tag, dedup,
decontaminate, mix); `pipeline_commands` has tokenize, train and the report, and the registry. Stage modules are
imported inside the functions, so loading a pipeline imports only what its stages use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import RunResult, summary_table
from dolma_kit.pipeline.references import PipelineError, Where, build_dataclass, location, substitute


@dataclass(slots=True)
class Outcome:
    """What a stage did: document counts (in = kept + removed + rejected) when it reads documents, and
    stage-specific numbers (`extra`) for the summary."""

    counts: dict[str, Any] | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Built:
    """A stage's config, ready to run, and its options as resolved (for the plan, the digest and `${…}`)."""

    config: Any
    options: dict[str, Any]


def counts_of(result: RunResult) -> dict[str, Any]:
    total = result.total
    return {
        "documents_in": total.documents_in,
        "kept": total.kept,
        "removed": total.removed,
        "rejected": total.rejected,
        "removed_by": dict(sorted(total.removed_by.items())),
    }


def _options(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(config), default=str))


@dataclass(frozen=True, kw_only=True)
class Command:
    """One subcommand as a pipeline stage."""

    name: str
    build: Callable[[str, dict[str, Any], dict[str, Any], Where], Built]
    """(pipeline file, scope of `${…}` (work_dir, earlier stages), the stage's substituted YAML mapping,
    where) → the config."""
    run: Callable[[Any, bool, Console], Outcome]
    """(config, force, console) → outcome."""
    proofs: Callable[[Any], list[str]]
    accepts: Callable[[], set[str]]
    """The keys the stage takes (the pipeline fills `processes` where one is accepted)."""
    volatile: frozenset[str] = frozenset({"processes", "force", "executor", "threads"})
    """Options that do not change what the stage writes: left out of its digest."""
    reset: Callable[[Any], None] | None = None
    """Clears what another run left in the stage's outputs before its first start in this work dir; None:
    remove its proof files that are shard `.done` markers, so every shard is redone, and a kill after that
    resumes from markers this run wrote."""


def dataclass_command(
    name: str,
    config_cls: Callable[[], type],
    run: Callable[[Any, bool, Console], Outcome],
    proofs: Callable[[Any], list[str]],
    defaults: Callable[[str], dict[str, Any]] = lambda work_dir: {},
) -> Command:
    """A command whose config is a dataclass: YAML keys are its fields (`force` is the pipeline's to set)."""
    from dolma_kit.pipeline.references import accepted_keys

    def build(path: str, scope: dict[str, Any], raw: dict[str, Any], where: Where) -> Built:
        if "force" in {str(k).replace("-", "_") for k in raw}:
            raise PipelineError(f"{where(None, 'force')}: use `dolma-kit run --force` (or --from) instead")
        config = build_dataclass(config_cls(), {**defaults(scope["work_dir"]), **raw}, where, name)
        return Built(config, _options(config))

    return Command(
        name=name,
        build=build,
        run=run,
        proofs=proofs,
        accepts=lambda: set(accepted_keys(config_cls())) - {"force"},
    )


# --------------------------------------------------------------------------------------------- data stages


def _corpus_cls() -> type:
    from dolma_kit.demo.corpus import DemoCorpusConfig

    return DemoCorpusConfig


def _run_corpus(config: Any, force: bool, console: Console) -> Outcome:
    from dolma_kit.demo.corpus import write_corpus

    manifest = write_corpus(config)
    n = manifest["documents"]
    console.print(
        f"demo corpus: {n:,} documents in {len(manifest['shards'])} shards → {config.output}/documents"
    )
    extra = {"bytes": sum(s["bytes"] for s in manifest["sources"].values()), "planted": manifest["planted"]}
    return Outcome({"documents_in": n, "kept": n, "removed": 0, "rejected": 0, "removed_by": {}}, extra)


def _corpus_proofs(config: Any) -> list[str]:
    from dolma_kit.demo.corpus import MANIFEST_NAME

    return [storage.join(config.output, MANIFEST_NAME)]


def _tag_cls() -> type:
    from dolma_kit.taggers.stage import TagConfig

    return TagConfig


def _run_tag(config: Any, force: bool, console: Console) -> Outcome:
    from dolma_kit.taggers.stage import tag

    config.force = force
    result = tag(config)
    console.print(summary_table(result))
    return Outcome(counts_of(result), {"experiment": config.experiment})


def _tag_proofs(config: Any) -> list[str]:
    from dolma_kit.taggers.stage import SUMMARY_NAME, plan

    tasks = plan(config)
    return [t.marker for t in tasks] + [
        storage.join(r, SUMMARY_NAME) for r in sorted({t.root for t in tasks})
    ]


def _exact_cls() -> type:
    from dolma_kit.dedup.exact import ExactDedupConfig

    return ExactDedupConfig


def _run_exact(config: Any, force: bool, console: Console) -> Outcome:
    from dolma_kit.dedup.exact import dedup_exact, summary_paths

    config.force = force
    result = dedup_exact(config)
    console.print(summary_table(result))
    summary = json.loads(storage.read_text(summary_paths(config)[0]))
    marked = {k: v for k, v in summary["exact"].items() if k not in ("key", "settings", "work_dir")}
    return Outcome(counts_of(result), {"experiment": config.experiment, "key": config.key, **marked})


def _exact_proofs(config: Any) -> list[str]:
    from dolma_kit.attributes import attribute_tasks
    from dolma_kit.dedup.exact import summary_paths

    tasks = attribute_tasks(config.documents, config.experiment, config.destination)
    return [t.marker for t in tasks] + summary_paths(config)


def _minhash_cls() -> type:
    from dolma_kit.dedup.minhash_stage import MinhashDedupConfig

    return MinhashDedupConfig


def _run_minhash(config: Any, force: bool, console: Console) -> Outcome:
    from dolma_kit.dedup.minhash_stage import run_minhash

    config.force = force
    result = run_minhash(config)
    step = result.steps["attributes"]
    console.print(summary_table(step))
    extra: dict[str, Any] = {"experiment": config.experiment}
    if result.report:
        total = result.report.get("total") or {}
        extra.update(
            {
                k: total[k]
                for k in ("clusters", "documents_in_clusters", "candidates", "verified")
                if k in total
            }
        )
    return Outcome(counts_of(step), extra)


def _minhash_proofs(config: Any) -> list[str]:
    from dolma_kit.dedup.minhash_stage import plan

    return [t.marker for t in plan(config).attributes]


def _decontam_cls() -> type:
    from dolma_kit.analysis.decontam import DecontamConfig

    return DecontamConfig


def _run_decontam(config: Any, force: bool, console: Console) -> Outcome:
    from dolma_kit.analysis.decontam import decontaminate

    config.force = force
    result = decontaminate(config)
    console.print(summary_table(result.run))
    extra = {"experiment": config.experiment, "contaminated": result.report.get("contaminated")}
    return Outcome(counts_of(result.run), extra)


def _decontam_proofs(config: Any) -> list[str]:
    from dolma_kit.attributes import attribute_tasks

    return [t.marker for t in attribute_tasks(config.documents, config.experiment, config.destination)]


# --------------------------------------------------------------------------------------------- mix


@dataclass(kw_only=True)
class MixStage:
    """`dolma-kit mix RECIPE` as a stage: the recipe (with `${…}` resolved inside it too) and mix()'s options."""

    recipe: Any
    kwargs: dict[str, Any]


_MIX_KEYS = {"recipe", "processes", "skip_bad", "executor", "ray_address"}


def _build_mix(path: str, scope: dict[str, Any], raw: dict[str, Any], where: Where) -> Built:
    """The recipe is a file (`recipe: mixers/x.yaml`) or written inline; `${work_dir}` and `${STAGE.key}`
    inside it resolve against the pipeline, other `${VAR}` stay for mix's own environment expansion."""
    from dolma_kit.executor import ExecutorConfig
    from dolma_kit.mix.recipe import is_dolma_config, load_yaml, parse_recipe

    raw = {str(k).replace("-", "_"): v for k, v in raw.items()}
    for key in raw:
        if key not in _MIX_KEYS:
            known = ", ".join(sorted(_MIX_KEYS))
            raise PipelineError(f"{where(key, '')}: unknown key '{key}' for `mix`; known: {known}")
    if "recipe" not in raw:
        raise PipelineError(f"{where(None, '')}: `mix` needs 'recipe' (a recipe file, or the recipe inline)")
    recipe_path, data = (raw["recipe"], None) if isinstance(raw["recipe"], str) else (path, raw["recipe"])
    if data is None:
        data = load_yaml(recipe_path)
        data = substitute(data, scope, location(recipe_path, "mix recipe"))
    try:
        if is_dolma_config(data):
            from dolma_kit.mix.dolma import translate

            recipe = translate(recipe_path, data)
        else:
            recipe = parse_recipe(recipe_path, data)
    except DolmaKitError as exc:
        raise PipelineError(f"{where(None, '')}: {exc}") from None
    executor = ExecutorConfig(kind=raw.get("executor") or "local", ray_address=raw.get("ray_address"))
    kwargs = {
        "processes": raw.get("processes"),
        "skip_bad": bool(raw.get("skip_bad", False)),
        "executor": executor,
    }
    options = {
        "recipe": str(recipe_path),
        "recipe_data": json.loads(json.dumps(data, default=str)),
        "outputs": sorted({s.output.path for s in recipe.streams}),
        **{k: v for k, v in kwargs.items() if k != "executor"},
        "executor": asdict(executor),
    }
    return Built(MixStage(recipe=recipe, kwargs=kwargs), options)


def _run_mix(stage: MixStage, force: bool, console: Console) -> Outcome:
    from dolma_kit.mix import report as mix_report
    from dolma_kit.mix import stage as mix

    result = mix.mix(stage.recipe, force=force, **stage.kwargs)
    console.print(mix_report.summary_table(result))
    streams = {
        s["stream"]: {
            k: s[k] for k in ("documents_in", "kept", "removed", "rejected", "documents_out") if k in s
        }
        for s in result.streams
    }
    outputs = sorted({p.output.path for p in result.plans})
    return Outcome(counts_of(result.run), {"streams": streams, "outputs": outputs})


def _mix_proofs(stage: MixStage) -> list[str]:
    from dolma_kit.mix import stage as mix

    _, tasks = mix.resolve(stage.recipe, skip_bad=stage.kwargs["skip_bad"])
    outputs = sorted({s.output.path for s in stage.recipe.streams})
    return [t.marker for t in tasks] + [storage.join(p, mix.SUMMARY_NAME) for p in outputs]


def _mix_accepts() -> set[str]:
    return set(_MIX_KEYS)


def data_commands() -> list[Command]:
    """The commands that make and mark documents, in pipeline order."""
    return [
        dataclass_command("demo-corpus", _corpus_cls, _run_corpus, _corpus_proofs, lambda w: {"output": w}),
        dataclass_command("tag", _tag_cls, _run_tag, _tag_proofs),
        dataclass_command("dedup exact", _exact_cls, _run_exact, _exact_proofs),
        dataclass_command("dedup minhash", _minhash_cls, _run_minhash, _minhash_proofs),
        dataclass_command("decontaminate", _decontam_cls, _run_decontam, _decontam_proofs),
        Command(name="mix", build=_build_mix, run=_run_mix, proofs=_mix_proofs, accepts=_mix_accepts),
    ]
