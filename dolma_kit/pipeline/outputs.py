"""The plan check on outputs: no two stages of a pipeline may write the same folder.

Two stages that write one place fail late and confusingly (the second finds "intermediate files of another
run", or silently mixes its shard markers with the first's), so `load_pipeline` refuses such a file before
anything runs, `--dry-run` included. The check works from the resolved options alone (inputs need not exist
yet: on a first dry-run the corpus stage has not written them):

- a stage that writes attributes (it has `documents` and `experiment`) owns each attribute root, the
  documents' sibling `attributes/<experiment>/` or its `destination`; its default intermediate folder lies
  below that root, so it is covered too;
- any other `destination`, `output`, `outputs` or (at any depth, e.g. `trainer.run_dir`) `run_dir`;
- a `work_dir` is shared by two stages of one command only: each command keeps its own files there (`exact/`
  and `minhash/` below it for the dedups), but two `dedup exact` stages would use the same plan and partitions.

A stage whose declaration says what it writes (`Stage.outputs`) is taken at its word instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dolma_kit import storage
from dolma_kit.attributes import attribute_root_and_relative
from dolma_kit.config import Where
from dolma_kit.errors import DolmaKitError

if TYPE_CHECKING:
    from dolma_kit.pipeline.load import Step

_OUTPUT_KEYS = ("destination", "output", "outputs")


@dataclass(frozen=True, slots=True)
class Claim:
    """A place one stage writes: `what` names it for the error, `key` is the option that set it (for the
    error's position); `among` is the command it is exclusive among ('': every stage)."""

    path: str
    what: str
    key: str
    among: str = ""


def _normal(path: str) -> str:
    if storage.is_remote(path):
        return path.rstrip("/")
    return os.path.abspath(os.path.expanduser(path))


def _paths(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _run_dirs(options: Any) -> list[str]:
    if not isinstance(options, dict):
        return []
    found = _paths(options.get("run_dir"))
    for value in options.values():
        found += _run_dirs(value)
    return found


def claims(command: str, config: Any, options: dict[str, Any], declared: Any) -> list[Claim]:
    """Where a stage writes, from its declaration (`declared`: `Stage.outputs`) or its options."""
    if declared is not None:
        return [Claim(_normal(p), "output", "") for p in declared(config)]
    out: list[Claim] = []
    attribute_stage = "experiment" in options and "documents" in options
    if attribute_stage:
        destination = options.get("destination") or None
        for pattern in _paths(options["documents"]):
            try:
                root, _ = attribute_root_and_relative(pattern, "", str(options["experiment"]), destination)
            except DolmaKitError:
                continue  # no attribute location: the stage says so itself when it runs
            what = f"attribute folder (experiment '{options['experiment']}')"
            out.append(Claim(_normal(root), what, "destination" if destination else "experiment"))
    for key in _OUTPUT_KEYS:
        if key == "destination" and attribute_stage:
            continue
        out += [Claim(_normal(p), key, key) for p in _paths(options.get(key))]
    out += [Claim(_normal(p), "run_dir", "") for p in _run_dirs(options)]
    out += [Claim(_normal(p), "work_dir", "work_dir", among=command) for p in _paths(options.get("work_dir"))]
    return list(dict.fromkeys(out))


def check_outputs(path: str, steps: list[Step]) -> None:
    """Raise a positioned `ConfigError` (at the later stage's key) for the first place two stages both write."""
    seen: dict[tuple[str, str], tuple[str, Claim]] = {}
    for step in steps:
        for claim in claims(step.stage.name, step.config, step.options, step.stage.outputs):
            earlier = seen.get((claim.path, claim.among))
            if earlier is not None and earlier[0] != step.name:
                first, other = earlier
                where = Where(file=path, context=f"stage '{step.name}'").of(step.given.get(claim.key))
                why = (
                    f"two '{step.stage.name}' stages would mix their intermediate files"
                    if claim.among
                    else "the later one would take the earlier one's files for its own (or clear them)"
                )
                raise where.error(
                    f"{claim.what} {claim.path} is also the {other.what} of stage '{first}': {why}; "
                    "give each stage its own"
                )
            seen.setdefault((claim.path, claim.among), (step.name, claim))
