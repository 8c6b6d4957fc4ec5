"""Which documents were in a step, when a document was trained on, and how many tokens each source gave.

Everything comes from the run folder (`config.yaml`, `data_order.npy`) and the tokenized data's provenance
index, never from the training processes: the order is fixed by config and seed, so the question "what did
step N see" has one answer whatever the world size was. Work is vectorised over instances (numpy
searchsorted / isin / matrix sums); Python loops only run over the rows that are printed, so a 1B-token run
answers in well under a second.

Steps are 1-based: step s trained on order[(s-1)·global_batch : s·global_batch].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dolma_kit.config import RUN_CONFIG_NAME, ConfigError, Where, from_dict, read_run_config
from train.data import DataConfig, TokenDataset
from train.recovery import RecoveryState

#: data orders up to this many instances (a 1 T-token run at seq_len 4,096) are sorted once per `Trace`
INDEXED_ORDER_MAX = 1 << 28


@dataclass(frozen=True, slots=True)
class DocSpan:
    """A document's tokens inside one training instance."""

    step: int
    instance: int
    """Global instance id (see train/data.py for the layout)."""
    part: str
    """Tokenized part file, `<dir>/part-<n>`."""
    start: int
    """First token (offset in the part) of the document that the instance holds."""
    end: int
    """Exclusive end of that range."""
    doc_start: int
    """The whole document's range in the part (start, end exclusive, EOS included)."""
    doc_end: int
    id: str
    source: str
    src: str
    """Input file the document was read from."""
    loc: int
    """1-based line in `src`."""


class RunTrace:
    """Opens a run folder once and answers trace queries."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        order = self.run_dir / "data_order.npy"
        raw = read_run_config(self.run_dir)
        if not order.is_file():
            raise ConfigError(f"{self.run_dir} is not a training run (needs config.yaml and data_order.npy)")
        # only the data section and the batch size matter here, and reading them needs no torch
        where = Where(file=str(self.run_dir / RUN_CONFIG_NAME))
        self.data: TokenDataset = from_dict(DataConfig, raw.get("data"), where.child("data")).build()
        self.order = np.load(order, mmap_mode="r")
        self.global_batch = int(raw["trainer"]["global_batch"])
        self.seq_len = self.data.seq_len
        self.max_steps = len(self.order) // self.global_batch
        self.skipped: set[int] = RecoveryState.load(self.run_dir).skipped
        """Steps whose batch spike recovery skipped (recovery.json): scheduled, never trained on."""
        self._by_instance: tuple[np.ndarray, np.ndarray] | None = None

    def positions(self, wanted: np.ndarray) -> np.ndarray:
        """The positions in the data order that hold any of `wanted` (sorted unique instance ids), ascending.

        A scan of the order per query (`np.isin`) cost 110 ms at 1 B tokens (488 K instances), most of a find;
        the order sorted by instance once (stable, so the positions of one instance stay ascending) answers
        each query with two binary searches. Above `INDEXED_ORDER_MAX` instances the sorted copy would not be
        worth its memory (4–8 bytes an instance, twice), so the scan stays."""
        order = self.order
        if len(order) > INDEXED_ORDER_MAX:
            return np.flatnonzero(np.isin(order, wanted))
        if self._by_instance is None:
            sorter = np.argsort(np.asarray(order), kind="stable")
            sorter = sorter.astype(np.int32) if len(order) < 2**31 else sorter
            self._by_instance = (sorter, np.asarray(order)[sorter])
        sorter, by_instance = self._by_instance
        lo = np.searchsorted(by_instance, wanted, side="left")
        hi = np.searchsorted(by_instance, wanted, side="right")
        if not len(wanted) or not (hi > lo).any():
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate([sorter[a:b] for a, b in zip(lo, hi, strict=True)]).astype(np.int64))

    def trained_order(self, until: int) -> np.ndarray:
        """The instance ids trained on in steps 1 … `until`, skipped steps left out."""
        order = np.asarray(self.order[: until * self.global_batch], dtype=np.int64)
        if not self.skipped:
            return order
        step_of = np.arange(len(order)) // self.global_batch + 1
        return order[~np.isin(step_of, sorted(self.skipped))]

    def _check_step(self, step: int) -> None:
        if not 1 <= step <= self.max_steps:
            raise ConfigError(f"step {step} is outside the run's schedule (1 … {self.max_steps})")

    def _span(self, step: int, instance: int, flat_part: int, inst_start: int, loc) -> DocSpan:
        """The overlap of document `loc` (a provenance DocumentLocation) with the instance starting at
        token `inst_start` of `flat_part`."""
        return DocSpan(
            step=step,
            instance=instance,
            part=self.data.part_name(flat_part),
            start=max(loc.start, inst_start),
            end=min(loc.end, inst_start + self.seq_len),
            doc_start=loc.start,
            doc_end=loc.end,
            id=loc.id,
            source=loc.source,
            src=loc.src,
            loc=loc.loc,
        )

    def step_instances(self, step: int) -> np.ndarray:
        self._check_step(step)
        return np.asarray(
            self.order[(step - 1) * self.global_batch : step * self.global_batch], dtype=np.int64
        )

    def step_documents(self, step: int) -> list[DocSpan]:
        """Every (instance, document) overlap in step `step`'s global batch, in batch order."""
        ids = self.step_instances(step)
        part, start = self.data.locate(ids)
        rows: list[DocSpan] = []
        # per row: (batch position, first doc, last doc) found with one searchsorted per part present
        first = np.empty(len(ids), dtype=np.int64)
        last = np.empty(len(ids), dtype=np.int64)
        for fp in np.unique(part):
            i, p = self.data.parts[fp]
            starts = np.asarray(self.data.dirs[i].document_starts(p))
            sel = part == fp
            first[sel] = np.searchsorted(starts, start[sel], side="right") - 1
            last[sel] = np.searchsorted(starts, start[sel] + self.seq_len - 1, side="right") - 1
        n_docs = last - first + 1
        row_of = np.repeat(np.arange(len(ids)), n_docs)
        doc_of = first[row_of] + (np.arange(n_docs.sum()) - np.repeat(np.cumsum(n_docs) - n_docs, n_docs))
        for r, doc in zip(row_of.tolist(), doc_of.tolist(), strict=True):
            i, p = self.data.parts[int(part[r])]
            d = self.data.dirs[i]
            loc = d.locate(p, int(d.document_starts(p)[doc]))
            rows.append(self._span(step, int(ids[r]), int(part[r]), int(start[r]), loc))
        return rows

    def document_steps(self, doc_id: str, source: str | None = None) -> list[DocSpan]:
        """Every time any token of document `doc_id` was trained on, by step. Tokens in a part's dropped tail
        (after its last whole instance), in held-out instances and in steps skipped by recovery never appear."""
        found = []
        for i, d in enumerate(self.data.dirs):
            for loc in d.find_document(doc_id, source):
                fp = self.data.parts.index((i, d.parts.index(loc.part)))
                n_inst = int(self.data.inst_offsets[fp + 1] - self.data.inst_offsets[fp])
                lo, hi = loc.start // self.seq_len, min((loc.end - 1) // self.seq_len, n_inst - 1)
                if lo <= hi:
                    found.append(
                        (loc, fp, np.arange(lo, hi + 1, dtype=np.int64) + self.data.inst_offsets[fp])
                    )
        if not found:
            return []
        wanted = np.unique(np.concatenate([ids for _, _, ids in found]))
        positions = self.positions(wanted)
        if self.skipped:
            positions = positions[~np.isin(positions // self.global_batch + 1, sorted(self.skipped))]
        instances = np.asarray(self.order[positions], dtype=np.int64)
        rows = []
        for pos, inst in zip(positions.tolist(), instances.tolist(), strict=True):
            loc, fp = next((loc, fp) for loc, fp, ids in found if ids[0] <= inst <= ids[-1])
            s0 = (inst - int(self.data.inst_offsets[fp])) * self.seq_len
            rows.append(self._span(pos // self.global_batch + 1, inst, fp, s0, loc))
        return rows

    def source_tokens(self, until: int) -> dict[str, int]:
        """Tokens per source in the instances trained on in steps 1 … `until` (every token of an instance counts,
        as the model reads them all; steps skipped by recovery do not)."""
        self._check_step(until)
        seen = np.bincount(self.trained_order(until), minlength=self.data.num_instances)
        totals = seen @ self.data.instance_source_tokens()
        return {s: int(totals[c]) for c, s in enumerate(self.data.sources)}
