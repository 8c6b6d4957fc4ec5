"""The plan check of a mix stage's recipe: its attribute names against what earlier stages will write.

For each stream, each experiment it joins must be written by an earlier stage of the pipeline (at the same
attribute root) or already be on disk (its `attributes_schema.json`); its filters and replacements are then
resolved with the same `Resolver` and parser `mix` uses when it runs (`mix.stage.resolve`), over those names,
so a typo fails with the recipe's file:line:col and a did-you-mean before anything runs. A Dolma mixer stream
keeps Dolma's semantics: a name no row has never matches, so a name nobody writes is a warning, as the run's
summary lists it under `absent`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dolma_kit import storage
from dolma_kit.attributes import SCHEMA_NAME, names_in_schema
from dolma_kit.config import Where, did_you_mean
from dolma_kit.errors import DolmaKitError
from dolma_kit.mix import jsonpath
from dolma_kit.mix.filters import Resolver, parse_filter
from dolma_kit.mix.recipe import Stream
from dolma_kit.pipeline.schemas import Written, attribute_roots

if TYPE_CHECKING:
    from dolma_kit.pipeline.checks import Findings
    from dolma_kit.pipeline.load import Step

_UNKNOWN = object()


def _on_disk(root: str) -> frozenset[str] | object | None:
    """Names from the schema file at `root`; None when attribute files are there without one (mix reads their
    rows when it runs); `_UNKNOWN` when nothing is there."""
    schema = storage.join(root, SCHEMA_NAME)
    try:
        if storage.exists(schema):
            return frozenset(names_in_schema(storage.read_json_object(schema) or {}))
        if not storage.is_remote(root) and os.path.isdir(root):
            return None
    except (OSError, ValueError, DolmaKitError):
        return None
    return _UNKNOWN


def stream_names(
    step: Step, stream: Stream, written: list[Written], findings: Findings, *, complete: bool = True
) -> set[str] | None:
    """Every name the stream's experiments will hold; None when some cannot be known (or one is missing,
    reported in `findings`)."""
    by_root = {w.root: w for w in written}
    names: set[str] = set()
    known = True
    for experiment, root in stream.attributes.items():
        for attr_root in attribute_roots(stream.documents, experiment, root):
            if attr_root in by_root:
                found = by_root[attr_root].names
            else:
                found = _on_disk(attr_root)
                if found is _UNKNOWN:
                    if complete:
                        _missing(step, stream, experiment, attr_root, written, findings)
                    known = False
                    continue
            if found is None:
                known = False
            else:
                names |= found  # type: ignore[arg-type]
    return names if known else None


def _missing(
    step: Step, stream: Stream, experiment: str, root: str, written: list[Written], findings: Findings
) -> None:
    made = sorted({w.experiment for w in written})
    hint = did_you_mean(experiment, made)
    at = Where().of(stream.documents[0] if stream.documents else "")
    findings.error(
        step.where,
        (f"{at}: " if str(at) else "")
        + f"stream '{stream.name}' joins experiment '{experiment}', but no earlier stage writes {root} and "
        f"there is nothing there yet"
        + (f"; did you mean {hint}?" if hint else "")
        + f" (earlier stages write: {', '.join(made) or 'no attributes'})",
    )


def check_recipe(step: Step, written: list[Written], findings: Findings, *, complete: bool = True) -> None:
    """Check every stream of the mix stage's recipe (see the module docstring)."""
    recipe = step.config.resolved
    for stream in recipe.streams:
        names = stream_names(step, stream, written, findings, complete=complete)
        if names is None:
            continue
        if stream.dolma is not None:
            _check_dolma(step, stream, names, findings)
            continue
        resolver = Resolver(names, recipe.aliases)
        for rule in [*stream.include, *stream.exclude]:
            try:
                parse_filter(rule.expr, resolver, rule.where)
            except DolmaKitError as exc:
                findings.error(step.where, f"stream '{stream.name}', rule '{rule.name}': {exc}")
        for rep in stream.replace:
            name, reason = resolver.resolve(rep.attribute)
            if name is None:
                error = rep.where.error(rep.attribute, 0, reason, rep.attribute)
                findings.error(step.where, f"stream '{stream.name}', replace: {error}")


def _check_dolma(step: Step, stream: Stream, names: set[str], findings: Findings) -> None:
    rules = stream.dolma
    assert rules is not None
    if rules.syntax == "jq":
        return  # jq filters are not read statically
    queries = [*rules.include, *rules.exclude, *(s.span for s in rules.span_replacement if s.syntax != "jq")]
    for query in queries:
        try:
            referenced = jsonpath.parse(query).attribute_names()
        except DolmaKitError:
            continue  # the recipe's own check reports a bad query
        for name in sorted((referenced or set()) - names):
            hint = did_you_mean(name, names)
            findings.warnings.append(
                f"{step.where}: stream '{stream.name}' (a Dolma mixer config): no earlier stage writes "
                f"attribute '{name}', so in Dolma's semantics it never matches"
                + (f"; did you mean {hint}?" if hint else "")
            )
