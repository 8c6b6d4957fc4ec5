"""Counting how often Dolma's and our decisions agree, and which rule explains each disagreement.

`compare` reads each shard's documents and both sides' attribute files side by side (they are
line-aligned), feeds every document's verdicts to one `Agreement` per decision, and checks the like-for-like
`gopher_dolma` values against Dolma's `gopher_v1` values attribute by attribute (`ValueEquality`).
`KNOWN_CAUSES` lists the documented differences (docs/quality-taggers.md), so only unexplained
disagreements call for a look.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tag_rules import (
    Verdict,
    doc_scores,
    dolma_c4,
    dolma_gopher,
    gopher_rules,
    ours_c4,
    ours_gopher,
    ours_gopher_dolma,
)
from tag_runner import GOPHER_LIKE_DOLMA, attribute_path

from dolma_kit.taggers.gopher import GopherConfig

#: Dolma writes scores rounded to 5 decimals; ours unrounded must round to the same value
DOLMA_DECIMALS = 5
EXAMPLES = 2

#: (rule, side where only it fires, the documented difference that explains it: docs/quality-taggers.md)
_CAUSES = [
    (
        "duplicate lines",
        "Dolma",
        "Dolma counts blank lines as (duplicate) lines: 3+ blank-line paragraphs ≈ 0.45",
    ),
    (
        "duplicate line chars",
        "Dolma",
        "Dolma divides line chars (spaces included) by word chars: ≈ 1.2× higher",
    ),
    (
        "word length (Dolma median, ours mean)",
        "ours",
        "mean (paper) vs Dolma's median: long URLs raise the mean",
    ),
    ("word length (Dolma median, ours mean)", "Dolma", "mean (paper) vs Dolma's median"),
    ("stop words", "Dolma", "Dolma counts exact lowercase tokens only: `The`, `the,` do not count"),
    ("stop words", "ours", "ours needs 2 different stop words; Dolma counts occurrences"),
    ("symbol ratio", "ours", "ours counts `...` too; Dolma only words containing `#` or `…`"),
    ("symbol ratio", "Dolma", "Dolma sums `#` and `…` words; ours limits each symbol on its own"),
    ("bullet lines", "ours", "Dolma: only `*`/`-` at column 0, and blank lines count as lines"),
    ("ellipsis lines", "ours", "Dolma counts only `…`, not `...`"),
    ("duplicate paragraphs", "ours", "Dolma has no paragraph rules"),
    ("duplicate paragraph chars", "ours", "Dolma has no paragraph rules"),
    ("too few sentences (ours only)", "ours", "C4's 3-sentence rule; Dolma's c4_v2 has none"),
    (
        "no kept line",
        "ours",
        "ours: < 5 words/line (TFDS), `...` endings, javascript/policy lines; Dolma: < 3 words",
    ),
    *(
        (
            f"duplicate {n}-gram chars",
            "ours",
            "paper: union of repeated windows; Dolma's unmerged share is lower",
        )
        for n in range(5, 11)
    ),
    *((f"top {n}-gram chars", "Dolma", "Dolma counts overlapping occurrences again") for n in range(2, 5)),
    *(
        (f"top {n}-gram chars", "ours", "ties: ours takes the n-gram with most characters")
        for n in range(2, 5)
    ),
]
KNOWN_CAUSES = {(rule, side): why for rule, side, why in _CAUSES}


@dataclass
class ValueEquality:
    """How many documents have every Dolma `gopher_v1` attribute equal to ours (`gopher_dolma`), and which not."""

    docs: int = 0
    equal: int = 0
    values: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, doc_id: str, dolma: dict[str, float], ours: dict[str, float]) -> None:
        """Compare one document; ours is rounded as Dolma rounds, a missing name on either side differs."""
        ours = {k: v for k, v in ours.items() if k != "pass"}
        self.docs += 1
        bad = sorted(dolma.keys() ^ ours.keys())
        for name in dolma.keys() & ours.keys():
            self.values += 1
            if abs(round(ours[name], DOLMA_DECIMALS) - dolma[name]) > 1e-9:
                bad.append(name)
        self.equal += not bad
        self.mismatches.update(bad)
        if bad and len(self.examples) < EXAMPLES:
            self.examples.append(f"{doc_id}: {', '.join(bad[:3])}")


@dataclass
class Agreement:
    """Counts of one document-level decision compared between Dolma and ours."""

    name: str
    docs: int = 0
    both_keep: int = 0
    both_drop: int = 0
    only_dolma_keeps: int = 0
    only_ours_keeps: int = 0
    inconsistent: int = 0
    unexplained: int = 0
    diffs: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    by_kind: dict[str, list[int]] = field(default_factory=dict)

    @property
    def percent(self) -> float:
        return 100.0 * (self.both_keep + self.both_drop) / max(self.docs, 1)

    explainable: bool = True
    """False for a like-for-like comparison: there every disagreement is a bug, none is a known cause."""

    def add(self, doc_id: str, kind: str, dolma: Verdict, ours: Verdict, ours_keep: bool) -> None:
        """Count one document. `ours_keep` is our `pass` attribute, checked against our own rule verdict."""
        dolma_keep = not dolma.fired
        if ours_keep != (not ours.fired):
            self.inconsistent += 1  # our `pass` disagrees with our own measures: a tagger bug worth a look
        self.docs += 1
        agree = dolma_keep == ours_keep
        if agree:
            self.both_keep += dolma_keep
            self.both_drop += not dolma_keep
        else:
            self.only_dolma_keeps += dolma_keep
            self.only_ours_keeps += ours_keep
            differing = [
                (r, "Dolma" if r in dolma.fired else "ours") for r in sorted(dolma.fired ^ ours.fired)
            ]
            if not self.explainable or not differing or any(d not in KNOWN_CAUSES for d in differing):
                self.unexplained += 1
            for rule, side in differing:
                self.diffs[rule, side] += 1
                shown = self.examples.setdefault(f"{rule}|{side}", [])
                if len(shown) < EXAMPLES:
                    dv, ov = dolma.values.get(rule), ours.values.get(rule)
                    shown.append(f"{doc_id} ({kind}; Dolma {_fmt(dv)}, ours {_fmt(ov)})")
        row = self.by_kind.setdefault(kind, [0, 0, 0, 0])
        row[0] += 1
        row[1] += dolma_keep
        row[2] += ours_keep
        row[3] += agree


def _fmt(value: float | None) -> str:
    return "·" if value is None else f"{value:.3g}"


def read_jsonl(path: Path) -> Any:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def compare(
    shards: list[str], exp_dolma: str, exp_ours: str, exp_like: str | None
) -> tuple[list[Agreement], ValueEquality]:
    """Read documents and the attribute files side by side (line-aligned) and count the decisions.

    `exp_like` holds the like-for-like runs (`C4_LIKE_DOLMA` and `GOPHER_LIKE_DOLMA`); the second result
    compares `gopher_dolma`'s values with Dolma's `gopher_v1` attribute by attribute.
    """
    rules = gopher_rules(GopherConfig())
    gopher = Agreement("Gopher")
    gopher_like = Agreement("Gopher like-for-like", explainable=False)
    c4 = Agreement("C4 defaults")
    c4like = Agreement("C4 like-for-like")
    values = ValueEquality()
    for shard in shards:
        streams = [read_jsonl(Path(shard)), read_jsonl(attribute_path(shard, exp_dolma))]
        streams.append(read_jsonl(attribute_path(shard, exp_ours)))
        if exp_like:
            streams.append(read_jsonl(attribute_path(shard, exp_like)))
        for records in zip(*streams, strict=True):
            doc, dolma, ours = records[0], records[1]["attributes"], records[2]["attributes"]
            if {r["id"] for r in records} != {doc["id"]}:
                raise SystemExit(f"{shard}: attribute files are not line-aligned at id {doc['id']}")
            doc_id, kind = doc["id"], (doc.get("metadata") or {}).get("kind", "-")
            d_gopher = dolma_gopher(dolma, f"{exp_dolma}__gopher_v1__", rules)
            gopher.add(doc_id, kind, d_gopher, *ours_gopher(ours, f"{exp_ours}__gopher__", rules))
            d_c4 = dolma_c4(dolma, f"{exp_dolma}__c4_v2__")
            c4.add(doc_id, kind, d_c4, *ours_c4(ours, f"{exp_ours}__c4__"))
            if exp_like:
                like = records[3]["attributes"]
                like_prefix = f"{exp_like}__{GOPHER_LIKE_DOLMA}__"
                gopher_like.add(doc_id, kind, d_gopher, *ours_gopher_dolma(like, like_prefix, rules))
                c4like.add(doc_id, kind, d_c4, *ours_c4(like, f"{exp_like}__c4__"))
                dolma_scores = doc_scores(dolma, f"{exp_dolma}__gopher_v1__")
                values.add(doc_id, dolma_scores, doc_scores(like, like_prefix))
    if exp_like:
        return [gopher, gopher_like, c4, c4like], values
    return [gopher, c4], values
