"""When a training run saw an occurrence: its instances, their steps, and whether it was held out.

The answer comes from the run's folder (`config.yaml`, `data_order.npy`, `recovery.json`) through the trainer's
own `RunTrace`, so it agrees with `dolma-kit trace --doc` by construction: an occurrence at tokens
[start, end) of a part lies in instances start // seq_len … (end - 1) // seq_len of that part; those ids'
positions in the data order are the steps (steps skipped by spike recovery left out). An occurrence in a
part's tail after its last whole instance was never trained on; one in a held-out instance was evaluated on.
The trainer (and torch) are imported only when a run is asked about.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dolma_kit.index.build import manifest_digest
from dolma_kit.index.engine import TokenIndexError
from dolma_kit.index.store import Occurrence


@dataclass(frozen=True, slots=True)
class Seen:
    """How the run met one occurrence."""

    steps: list[int]
    """The distinct steps whose batch held a token of the occurrence (later epochs add theirs), ascending."""
    held_out: bool
    """A token of it is in the run's held-out split (evaluated on, never trained on)."""
    whole: bool
    """The occurrence lies inside one instance: the model saw it as one context, not cut in two."""
    in_tail: bool
    """Some of it is in the part's dropped tail (after the last whole instance)."""


def _digest_or_none(tokens_dir: Path) -> str | None:
    try:
        return manifest_digest(tokens_dir)
    except OSError:
        return None


class Schedule:
    """A run's data order, joined to the tokenized folder an index is built on."""

    def __init__(self, run_dir: str | Path, tokens_dir: Path) -> None:
        from train.trace import RunTrace

        self.trace = RunTrace(run_dir)
        data = self.trace.data
        want = tokens_dir.resolve()
        dirs = [i for i, d in enumerate(data.dirs) if Path(d.path).resolve() == want]
        if not dirs:  # a moved or copied tokens folder is the same data when its manifest is the same bytes
            digest = manifest_digest(want)
            dirs = [i for i, d in enumerate(data.dirs) if _digest_or_none(Path(d.path)) == digest]
        if not dirs:
            paths = ", ".join(str(d.path) for d in data.dirs)
            raise TokenIndexError(f"run {run_dir} was not trained on {tokens_dir} (its data.paths: {paths})")
        self.dir = dirs[0]
        self.seq_len = data.seq_len
        self.held_out = np.sort(data.eval_instances())

    def _held_out(self, ids: np.ndarray) -> bool:
        at = np.searchsorted(self.held_out, ids)
        inside = at < len(self.held_out)
        return bool((self.held_out[at[inside]] == ids[inside]).any())

    def _instances(self, occ: Occurrence) -> tuple[np.ndarray, bool, bool]:
        data = self.trace.data
        part = data.dirs[self.dir].parts.index(occ.part)
        fp = data.parts.index((self.dir, part))
        n_inst = int(data.inst_offsets[fp + 1] - data.inst_offsets[fp])
        lo, hi = occ.start // self.seq_len, (occ.end - 1) // self.seq_len
        ids = np.arange(lo, min(hi, n_inst - 1) + 1, dtype=np.int64) + int(data.inst_offsets[fp])
        return ids, lo == hi, hi >= n_inst

    def seen(self, occurrences: list[Occurrence], until: int | None = None) -> list[Seen]:
        """For each occurrence, the steps (≤ `until` if given) at which the run trained on it."""
        per = [self._instances(o) for o in occurrences]
        if not per:
            return []
        wanted = np.unique(np.concatenate([ids for ids, _, _ in per]))
        order = self.trace.order
        positions = self.trace.positions(wanted)
        steps = positions // self.trace.global_batch + 1
        keep = np.ones(len(steps), dtype=bool)
        if self.trace.skipped:
            keep &= ~np.isin(steps, sorted(self.trace.skipped))
        if until is not None:
            keep &= steps <= until
        positions, steps = positions[keep], steps[keep]
        instances = np.asarray(order[positions], dtype=np.int64)
        out = []
        for ids, whole, tail in per:
            mine = np.isin(instances, ids)
            held = self._held_out(ids)
            out.append(
                Seen(steps=sorted(set(steps[mine].tolist())), held_out=held, whole=whole, in_tail=tail)
            )
        return out

    @property
    def max_steps(self) -> int:
        return self.trace.max_steps


def seen_dict(seen: Seen) -> dict[str, Any]:
    """A `Seen` as JSON-ready data."""
    return {"steps": seen.steps, "held_out": seen.held_out, "whole": seen.whole, "in_tail": seen.in_tail}
