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
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError

SUMMARY_GLOB = "*_summary.json"
#: Stage order in the waterfall: the order a pipeline runs them; unknown stages come last, by path.
STAGE_ORDER = ("tag", "dedup exact", "dedup minhash", "decontaminate", "mix", "tokenize")


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
            extra["key"] = data["exact"].get("key")
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
        if not storage.is_remote(item) and storage.exists(item) and not item.endswith(".json"):
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
