"""The plan check: everything about a pipeline that can be known wrong before any stage runs, found at once.

`load_pipeline` builds every stage's config (unknown keys, bad values, `${…}` references); this module then
checks what only makes sense across stages or needs the registries, all from options and files already on
disk, never reading documents:

1. **taggers**: every `tag` stage's tagger names and options (the registry builds each tagger: unknown names
   and options get a did-you-mean, a model file that does not exist is an error). Models are not loaded,
   except a small one (≤ `MODEL_BYTES`, e.g. the bundled lid.176.ftz) to list its labels;
2. **recipe attribute names**: each mix stream's filter and replacement names against what the earlier stages
   of this pipeline will write (`pipeline.schemas`), or the schema already on disk for an experiment no stage
   writes. A Dolma mixer stream is only warned about: in Dolma a name no row has simply never matches;
3. **tokenizer paths**: a `tokenizer` (the tokenize stage's, a training config's `data.tokenizer`) must be a
   built-in name, an existing file, or what an earlier stage writes (`train-tokenizer`'s output).

Every stage's keys, a training config's (in its own file) included, are checked all at once just before the
stage's config is built (`pipeline.keys`): `from_dict` alone would stop at the first. Every problem is
`file:line:col: stage 'NAME': …` (the position of the value at fault, the recipe's own position after it for
a filter) and they are reported together, as one `ConfigError` from `load_pipeline`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dolma_kit import storage
from dolma_kit.config import ConfigError, Where, did_you_mean
from dolma_kit.errors import DolmaKitError
from dolma_kit.pipeline.outputs import claims
from dolma_kit.pipeline.recipe_check import check_recipe
from dolma_kit.pipeline.schemas import Written, normal_path, written_by

if TYPE_CHECKING:
    from dolma_kit.pipeline.load import Step


#: A tagger's model up to this size is loaded to list its labels (the bundled lid.176.ftz is 917 kB); a bigger
#: one is not loaded into the pipeline's process only for that, and the recipes joining its experiment go
#: unchecked (mix checks them when it runs).
MODEL_BYTES = 64 << 20


@dataclass(slots=True)
class Findings:
    """What the plan check found: errors stop the run (and the dry run); warnings are printed with the plan."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, where: Where, message: str) -> None:
        self.errors.append(str(where.error(message)))

    def raise_errors(self, path: str) -> None:
        """One `ConfigError` for all the errors (the single one as it is, so its message starts `file:line`)."""
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise ConfigError(self.errors[0])
        lines = [f"{path}: {len(self.errors)} problems, found before running anything:"]
        for i, text in enumerate(self.errors, 1):
            first, *rest = text.splitlines()
            lines += [f"  {i}. {first}", *(f"     {line}" for line in rest)]
        raise ConfigError("\n".join(lines))


class PlanCheck:
    """The plan check, fed the stages in pipeline order as they are built: a stage is checked against what the
    stages before it will write, and its problems come in the order of the file."""

    def __init__(self, findings: Findings) -> None:
        self.findings = findings
        self.steps: list[Step] = []
        self.written: list[Written] = []

    def check(self, step: Step, *, complete: bool = True) -> None:
        """Check one built stage. `complete` is False when an earlier stage failed to build: an experiment no
        built stage writes may be its, so it is not reported missing."""
        tag_names = check_taggers(step, self.findings) if step.stage.name == "tag" else None
        if step.stage.name == "mix":
            check_recipe(step, self.written, self.findings, complete=complete)
        check_tokenizers(step, self.steps, self.findings)
        self.steps.append(step)
        self.written += written_by(step, tag_names)


# --------------------------------------------------------------------------------------------- taggers


def check_taggers(step: Step, findings: Findings) -> frozenset[str] | None:
    """Build every tagger of a tag stage as the run will; returns the names the stage writes (None: some
    cannot be known, e.g. a tagger that failed to build, whose errors are in `findings`)."""
    from dolma_kit.taggers.registry import build_tagger, load_tagger_modules

    config = step.config
    given = step.given.get("taggers")
    specs_at = given if isinstance(given, list) else [given] * len(config.taggers)
    try:
        load_tagger_modules(config.tagger_modules)
    except DolmaKitError as exc:
        findings.error(step.where.of(step.given.get("tagger_modules")).child("tagger_modules"), str(exc))
        return None
    names: set[str] = set()
    known = True
    prefixes: dict[str, str] = {}
    for spec, at in zip(config.taggers, specs_at, strict=False):
        where = step.where.of(at).child("taggers")
        try:
            prefix, tagger = build_tagger(spec)
        except DolmaKitError as exc:
            findings.error(where, str(exc))
            fallback = _default_names(spec)  # a known tagger with a bad option: its names, for the recipes
            known = known and fallback is not None
            names.update(f"{config.experiment}__{n}" for n in fallback or [])
            continue
        if prefix in prefixes:
            findings.error(
                where, f"'{spec}' and '{prefixes[prefix]}' write the same prefix '{prefix}'; give one a name="
            )
        prefixes[prefix] = spec
        model = getattr(tagger, "model_path", None)
        if model and os.path.getsize(model) > MODEL_BYTES:  # not loaded into the pipeline's process for this
            known = False
            continue
        try:
            names.update(f"{config.experiment}__{prefix}__{n}" for n in tagger.attribute_names())
        except (OSError, ValueError, DolmaKitError) as exc:
            findings.error(where, f"tagger '{spec}': cannot list its attribute names: {exc}")
            known = False
    return frozenset(names) if known else None


def _default_names(spec: str) -> list[str] | None:
    """`prefix__name` for what a tagger that failed to build writes with its default options (None: unknown)."""
    from dolma_kit.taggers.registry import default_attribute_names, parse_spec, resolve_name

    try:
        name, options = parse_spec(spec)
        found, _ = default_attribute_names(resolve_name(name))
    except DolmaKitError:
        return None
    prefix = options.get("name") or name
    return None if found is None else [f"{prefix}__{n}" for n in found]


# --------------------------------------------------------------------------------------------- tokenizers


def _tokenizer_values(options: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(key path, value) of every `tokenizer` option, at any depth (`data.tokenizer` in a training config)."""
    found = []
    if isinstance(options, dict):
        for key, value in options.items():
            if key == "tokenizer" and isinstance(value, str) and value:
                found.append(((*path, key), value))
            else:
                found += _tokenizer_values(value, (*path, str(key)))
    return found


def _position(step: Step, path: tuple[str, ...]) -> Any:
    """The value at `path` as written (with its position), from the pipeline file or the stage's config."""
    node: Any = step.given
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if node is not None:
        return node
    node = step.config
    for key in ("train", *path) if step.stage.name == "train" else path:
        node = getattr(node, key, None)
    return node


def check_tokenizers(step: Step, earlier: list[Step], findings: Findings) -> None:
    """A tokenizer is a built-in name, a file that exists, or a file an earlier stage writes."""
    from dolma_kit.tokenize.loading import BUILTIN

    for path, value in _tokenizer_values(step.options):
        if value in BUILTIN:
            continue
        target = normal_path(value)
        made = [  # the file itself (a folder an earlier stage writes, e.g. the corpus root, says nothing)
            e.name
            for e in earlier
            for c in claims(e.stage.name, e.config, e.options, e.stage.outputs)
            if target == c.path
        ]
        if made or _exists(value):
            continue
        candidates = {
            c.path: e.name for e in earlier for c in claims(e.stage.name, e.config, e.options, None)
        }
        parent = os.path.dirname(target)
        if not storage.is_remote(target) and os.path.isdir(parent):
            candidates.update(
                {os.path.join(parent, n): "" for n in os.listdir(parent) if n.endswith(".json")}
            )
        hint = did_you_mean(target, candidates)
        if hint:
            by = candidates[hint.strip("'")]
            hint = f"; did you mean {hint}" + (f" (written by stage '{by}')" if by else "") + "?"
        where = step.where.of(_position(step, path)).child(".".join(path))
        findings.error(
            where,
            f"tokenizer {value} does not exist and no earlier stage writes it"
            f"{hint} (a tokenizer.json path, one an earlier `train-tokenizer` stage writes, or one of: "
            f"{', '.join(BUILTIN)})",
        )


def _exists(path: str) -> bool:
    try:
        return storage.exists(path)
    except (OSError, ValueError):
        return False
