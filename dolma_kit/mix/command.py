"""`mix` as a stage (the registry's declaration): its config, how a pipeline builds it, what it counts and prints.

The work is `mix.stage.mix`; a recipe is read by `mix.recipe`. A pipeline reads the recipe here, first, so that
`${work_dir}` and `${STAGE.key}` inside the recipe file resolve against the pipeline and a typo in a filter fails
before any stage runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dolma_kit import storage
from dolma_kit.config import Where, from_dict, load_yaml, substitute
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import ExecutorConfig
from dolma_kit.mix.examples import DEFAULT_EXAMPLES, EXAMPLES_NAME
from dolma_kit.mix.recipe import Recipe, is_dolma_config, load_recipe, parse_recipe
from dolma_kit.mix.stage import SUMMARY_NAME, MixResult, mix, resolve
from dolma_kit.stages import Context, Outcome, Stage, counts_of, options_of


@dataclass(kw_only=True)
class MixConfig:
    """`dolma-kit mix RECIPE` and a pipeline's mix stage: the recipe and how to run it."""

    recipe: str
    """Recipe file (ours or a Dolma mixer config); in a pipeline also the recipe written inline."""
    processes: int | None = None
    """Worker processes (default: all cores)."""
    skip_bad: bool = False
    """Count bad records into rejects/ instead of stopping."""
    force: bool = False
    """Redo shards already marked done."""
    dolma_compatible: bool = False
    """In Dolma mixer configs, reproduce Dolma 1.2.1 where it is arguably wrong (an integer score 1 is not
    `>= 1.0`); the run's output says how many documents that decided."""
    examples: int = DEFAULT_EXAMPLES
    """Documents sampled per rule and stream, of those it removed and of those it let through, with the
    attribute values that decided, into `<output>/examples.json` (`mix.examples`); 0 writes none."""
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    loaded: Recipe | None = field(default=None, metadata={"config": False})
    """The recipe, once read (a pipeline reads it first, to resolve its references and check it)."""

    @property
    def resolved(self) -> Recipe:
        if self.loaded is None:
            self.loaded = load_recipe(self.recipe)
        return self.loaded


def _build(raw: dict[str, Any], context: Context, where: Where) -> MixConfig:
    """The recipe is a file (`recipe: mixers/x.yaml`) or written inline; `${work_dir}` and `${STAGE.key}`
    inside it resolve against the pipeline, other `${VAR}` from the environment."""
    given = raw.get("recipe")
    inline = isinstance(given, dict)
    config = from_dict(MixConfig, {**raw, "recipe": context.file if inline else given}, where, flat=True)
    path, data = (context.file, given) if inline else (config.recipe, load_yaml(config.recipe, "recipe"))
    data = substitute(data, context.lookup, Where(file=path, context="mix recipe"))
    try:
        if is_dolma_config(data):
            from dolma_kit.mix.dolma import translate

            config.loaded = parse_recipe(path, translate(path, data), translated_from="dolma")
        else:
            config.loaded = parse_recipe(path, data)
    except DolmaKitError as exc:
        raise where.error(str(exc)) from None
    return config


def _options(config: MixConfig) -> dict[str, Any]:
    recipe = config.resolved
    return {
        **options_of(dataclasses.replace(config, loaded=None)),
        "outputs": sorted({s.output.path for s in recipe.streams}),
        "recipe_data": options_of(recipe),
    }


def _run(config: MixConfig) -> MixResult:
    return mix(
        config.resolved,
        processes=config.processes,
        force=config.force,
        skip_bad=config.skip_bad,
        dolma_compatible=config.dolma_compatible,
        examples=config.examples,
        executor=config.executor,
    )


def _outcome(config: MixConfig, result: MixResult) -> Outcome:
    keys = ("documents_in", "kept", "removed", "rejected", "documents_out")
    streams = {s["stream"]: {k: s[k] for k in keys if k in s} for s in result.streams}
    outputs = sorted({p.output.path for p in result.plans})
    return Outcome(counts_of(result.run), {"streams": streams, "outputs": outputs})


def _proofs(config: MixConfig) -> list[str]:
    _, tasks = resolve(config.resolved, skip_bad=config.skip_bad)
    outputs = sorted({s.output.path for s in config.resolved.streams})
    names = [SUMMARY_NAME] + [EXAMPLES_NAME] * (config.examples > 0)
    return [t.marker for t in tasks] + [storage.join(p, n) for p in outputs for n in names]


def _render(config: MixConfig, result: MixResult) -> list[Any]:
    from dolma_kit.mix.report import examples_note, summary_table

    return [summary_table(result), examples_note(result)]


STAGE = Stage(
    name="mix",
    config=MixConfig,
    build=_build,
    run=_run,
    outcome=_outcome,
    render=_render,
    proofs=_proofs,
    options=_options,
)
