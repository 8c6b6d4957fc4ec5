"""Reads the summary JSONs that stages write beside their outputs into one list of waterfall rows.

Every row says, for one stage (and one mix stream), documents in = kept + removed + rejected and what each
reason or filter rule removed. Readers are tolerant: a stage that did not run has no file and no row; a file
in a format this module does not know is listed as skipped with the reason, never an error, so a report can
always be written. Formats read:
- the executor's `RunResult` JSON (`tag_summary.json`, `dedup_exact_summary.json`,
  `dedup_minhash_summary.json`, `decontaminate_summary.json`): `{"stage", "total": {...}, "shards": [...]}`;
- `mix_summary.json`: `{"recipe", "streams": [{"stream", "documents_in", "kept", "removed", "rejected",
  "removed_by": {rule: n}, "spans_replaced", "documents_out", ...}]}`;
- a tokenized folder's `manifest.json` (`format: dolma-kit.tokenized/1`): input documents = documents +
  empty documents skipped + rejected.

Attribute stages (tag, dedup, decontaminate) only *mark*: their summaries count as "removed" what `mix` may drop
on those marks, and nothing is removed until `mix` runs. `annotate` says so in each row (`action`), and adds what
they marked: documents flagged and spans marked (duplicate paragraphs, PII, contaminated paragraphs), from the
summaries and from the counts `stats` made. Mix rows get documents written, which exceed kept when a stream is
up-sampled (`sample: 2` writes every kept document twice): the next stage reads what was written.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.stages import MODULES, find_stage

SUMMARY_GLOB = "*_summary.json"
#: Stage order in the waterfall: the registry's (the order a pipeline runs them); unknown stages come last.
STAGE_ORDER = tuple(MODULES)


@dataclass(slots=True)
class StageRow:
    """One stage's (or one mix stream's) document counts."""

    stage: str
    """Stage name as the summary gives it (`tag`, `dedup exact 3/3 attributes` is shortened to `dedup exact`)."""
    scope: str
    """What the row covers: the experiment (attribute stages), the stream (mix), or the tokenized folder."""
    path: str
    documents_in: int
    kept: int
    removed: int
    rejected: int
    removed_by: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Stage-specific numbers worth showing: spans replaced (mix), documents and bytes out, tokens."""
    action: str = "removes"
    """`marks` (attribute stages: nothing removed), `removes` (mix), `tokenizes`."""
    flagged: int | None = None
    """Marking stages: documents that got a mark (a whole-document flag, or at least one marked span)."""
    flagged_what: str = ""
    spans: int | None = None
    """Spans marked (marking stages) or replaced (mix)."""
    spans_what: str = ""
    passed_on: int = 0
    """Documents the stage hands on: in − rejected for a marking stage, kept otherwise."""
    written: int | None = None
    """Mix: documents written (kept × the stream's sampling rate when above 1)."""
    written_bytes: int | None = None

    @property
    def balanced(self) -> bool:
        return self.documents_in == self.kept + self.removed + self.rejected

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "balanced": self.balanced}


def _stage_name(raw: str) -> str:
    for known in STAGE_ORDER:
        if raw.startswith(known):
            return known
    return raw


def _experiment_of(path: str) -> str:
    """`…/attributes/<exp>/tag_summary.json` → `<exp>`; otherwise the parent folder name."""
    return storage.parent(path).rstrip("/").rsplit("/", 1)[-1]


def rows_from_summary(path: str, data: Any) -> list[StageRow]:
    """Rows from one parsed summary file; `ValueError` when the format is not one this module reads."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if isinstance(data.get("streams"), list):
        rows = []
        for s in data["streams"]:
            rows.append(
                StageRow(
                    stage="mix",
                    scope=str(s["stream"]),
                    path=path,
                    documents_in=int(s["documents_in"]),
                    kept=int(s["kept"]),
                    removed=int(s["removed"]),
                    rejected=int(s["rejected"]),
                    removed_by={str(k): int(v) for k, v in s.get("removed_by", {}).items()},
                    extra={
                        k: s[k] for k in ("spans_replaced", "documents_out", "bytes_out", "output") if k in s
                    },
                )
            )
        return rows
    if isinstance(data.get("total"), dict) and "stage" in data:
        t = data["total"]
        extra: dict[str, Any] = {"shards": len(data.get("shards", []))}
        if isinstance(data.get("exact"), dict):
            exact = data["exact"]
            extra["key"] = exact.get("key")
            for k in (
                "duplicates",
                "documents_with_duplicate_paragraphs",
                "duplicate_paragraphs",
                "duplicate_chars",
            ):
                if isinstance(exact.get(k), int):
                    extra[k] = exact[k]
        return [
            StageRow(
                stage=_stage_name(str(data["stage"])),
                scope=_experiment_of(path),
                path=path,
                documents_in=int(t["documents_in"]),
                kept=int(t["kept"]),
                removed=int(t["removed"]),
                rejected=int(t["rejected"]),
                removed_by={str(k): int(v) for k, v in t.get("removed_by", {}).items()},
                extra=extra,
            )
        ]
    if str(data.get("format", "")).startswith("dolma-kit.tokenized/"):
        empty = int(data.get("empty_documents_skipped", 0))
        return [
            StageRow(
                stage="tokenize",
                scope=_experiment_of(path),
                path=path,
                documents_in=int(data["input_documents"]),
                kept=int(data["documents"]),
                removed=empty,
                rejected=int(data.get("rejected_documents", 0)),
                removed_by={"empty text": empty} if empty else {},
                extra={"tokens": int(data.get("tokens", 0))},
            )
        ]
    raise ValueError("not a stage summary this version reads (no 'total', 'streams' or tokenized 'format')")


def find_summaries(root: str, extra: list[str]) -> list[str]:
    """Summary files: `<root>/attributes/*/*_summary.json` plus `extra` (files, globs, or folders)."""
    found: list[str] = []
    patterns = [storage.join(root, "attributes", "*", SUMMARY_GLOB)]
    for item in extra:
        folder = not item.endswith(".json") and not any(c in item for c in "*?[")
        # a remote folder is a prefix, not an object: it cannot be checked with exists()
        if folder and (storage.is_remote(item) or storage.exists(item)):
            patterns += [storage.join(item, SUMMARY_GLOB), storage.join(item, "manifest.json")]
        else:
            patterns.append(item)
    for i, pattern in enumerate(patterns):
        try:
            found += [f.path for f in storage.expand([pattern])]
        except DolmaKitError:
            if i == 0 or pattern.endswith(("manifest.json", SUMMARY_GLOB)):
                continue  # no summaries there: the stage did not run
            raise DolmaKitError(f"--stage-summaries {pattern!r}: no such file") from None
    return list(dict.fromkeys(found))


def read_stage_rows(paths: list[str]) -> tuple[list[StageRow], list[dict[str, str]]]:
    """(rows in pipeline order, skipped files with the reason)."""
    rows: list[StageRow] = []
    skipped: list[dict[str, str]] = []
    for path in paths:
        try:
            rows += rows_from_summary(path, json.loads(storage.read_text(path)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            skipped.append({"path": path, "reason": f"{type(exc).__name__}: {exc}"})

    def order(row: StageRow) -> tuple[int, str, str]:
        rank = STAGE_ORDER.index(row.stage) if row.stage in STAGE_ORDER else len(STAGE_ORDER)
        return rank, row.path, row.scope

    return sorted(rows, key=order), skipped


def marks(stage: str) -> str:
    """What a marking stage flags, from its declaration ("" for a stage that removes, or an unknown one)."""
    declared = find_stage(stage) if stage in MODULES else None
    return declared.marks if declared else ""


def annotate(rows: list[StageRow], total: dict[str, Any], pii_experiments: set[str]) -> None:
    """Fill each row's action, flagged documents and spans (marking stages) and documents written (mix).

    `total` is stats' merged counts (`duplicate_paragraphs`, `contamination` per experiment, `pii`): the spans a
    stage marked are counted from its attribute files, since its summary counts documents only."""
    for row in rows:
        if marks(row.stage):
            row.action = "marks"
            row.passed_on = row.documents_in - row.rejected
            _marks(row, total, pii_experiments)
        elif row.stage == "tokenize":
            row.action = "tokenizes"
            row.passed_on = row.kept
        else:
            row.passed_on = row.kept
            if row.stage == "mix":
                if "documents_out" in row.extra:
                    row.written = int(row.extra["documents_out"])
                if "bytes_out" in row.extra:
                    row.written_bytes = int(row.extra["bytes_out"])
                replaced = row.extra.get("spans_replaced")
                if isinstance(replaced, dict):
                    row.spans = sum(int(v) for v in replaced.values())
                    row.spans_what = "spans replaced"


def _marks(row: StageRow, total: dict[str, Any], pii_experiments: set[str]) -> None:
    exp = row.scope
    if row.stage == "tag":
        if exp in pii_experiments:
            row.flagged, row.flagged_what = total.get("pii_documents", 0), marks("tag")
            row.spans = sum(int(c.get("spans", 0)) for c in total.get("pii", {}).values())
            row.spans_what = "PII spans"
        return
    if row.extra.get("key") == "paragraphs" or exp in total.get("duplicate_paragraphs", {}):
        counted = total.get("duplicate_paragraphs", {}).get(exp, {})
        row.flagged = int(row.extra.get("documents_with_duplicate_paragraphs", counted.get("documents", 0)))
        row.flagged_what = "documents with a repeated paragraph"
        row.spans = int(row.extra.get("duplicate_paragraphs", counted.get("spans", 0)))
        row.spans_what = "duplicate paragraphs"
        return
    row.flagged = row.removed
    row.flagged_what = marks(row.stage)
    contaminated = total.get("contamination", {}).get(exp)
    if row.stage == "decontaminate" and contaminated is not None:
        row.spans, row.spans_what = int(contaminated.get("paragraphs", 0)), "contaminated paragraphs"
