"""What attribute names each stage of a pipeline WILL write, found from its options alone (no data read).

The plan check (`pipeline.checks`) holds a mix recipe's attribute names against these, so a typo in a recipe
fails before the stages that make the attributes run. A stage that writes attributes writes them under one
root per documents folder (the documents' sibling `attributes/<experiment>/`, or its `destination`), and the
names are what its schema file will list: for `tag` the taggers' `attribute_names()` with their prefixes
(found by `checks`, which builds the taggers anyway), for the dedups and decontamination the names their
schema functions give.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dolma_kit import storage
from dolma_kit.attributes import attribute_root_and_relative, names_in_schema
from dolma_kit.errors import DolmaKitError

if TYPE_CHECKING:
    from dolma_kit.pipeline.load import Step


@dataclass(frozen=True, slots=True)
class Written:
    """An attribute root a stage writes and the names it will hold (None: not knowable before it runs)."""

    root: str
    experiment: str
    stage: str
    names: frozenset[str] | None


def normal_path(path: str) -> str:
    """A path as the checks compare them (absolute for local paths)."""
    if storage.is_remote(path):
        return path.rstrip("/")
    return os.path.abspath(os.path.expanduser(path))


def attribute_roots(documents: Any, experiment: str, destination: str | None) -> list[str]:
    """The attribute roots of document patterns (globs need not match anything yet), normalised."""
    patterns = [documents] if isinstance(documents, str) else list(documents or [])
    roots = []
    for pattern in patterns:
        try:
            root, _ = attribute_root_and_relative(str(pattern), "", experiment, destination)
        except DolmaKitError:
            continue  # no attribute location: the stage itself says so
        roots.append(normal_path(root))
    return list(dict.fromkeys(roots))


def stage_names(step: Step) -> frozenset[str] | None:
    """The names a non-tag attribute stage writes, from its config (None: unknown, e.g. a new stage)."""
    config = step.config
    command = step.stage.name
    if command == "dedup exact":
        from dolma_kit.dedup.exact_passes import attribute_names

        return frozenset(
            attribute_names(config.experiment, config.key, getattr(config, "dolma", None)).values()
        )
    if command == "dedup minhash":
        from dolma_kit.dedup.minhash_stage import schema

        return frozenset(names_in_schema(schema(config)))
    if command == "decontaminate":
        return frozenset(config.names().values())
    return None


def written_by(step: Step, tag_names: frozenset[str] | None = None) -> list[Written]:
    """The attribute roots `step` writes, with their names (`tag_names` for a tag stage)."""
    options = step.options
    if "experiment" not in options or "documents" not in options:
        return []
    experiment = str(options["experiment"])
    names = tag_names if step.stage.name == "tag" else stage_names(step)
    roots = attribute_roots(options["documents"], experiment, options.get("destination") or None)
    return [Written(root, experiment, step.name, names) for root in roots]
