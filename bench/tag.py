"""Benchmark `dolma-kit tag` against Dolma 1.2.1 on the same shards: speed, memory, and agreement.

    .venv/bin/python bench/tag.py --quick            # 2,000 documents: checks the plumbing in ~1 minute
    .venv/bin/python bench/tag.py                    # 20,000 documents, 8 shards, 2 processes (~3 minutes)
    .venv/bin/python bench/tag.py --memory-check     # also ours on a 10x corpus: peak memory growth

Both tools run as the CLIs users call (start-up included), with the same process count, over the same
explicit list of shard files, writing fresh attributes (`attributes/dolma/…`, `attributes/ours/…`). Ours
runs `gopher c4 pii char_length`, Dolma `gopher_v1 c4_v2 pii_regex_with_counts_fast_v2 char_length_v1`.

Agreement compares document-level keep/drop decisions. Ours are the `ours__gopher__pass` and `ours__c4__pass`
attributes. Dolma's taggers only emit scores, so its decisions apply the same paper thresholds (taken from
our `GopherConfig` defaults, so both sides use one set of numbers) to its `gopher_v1` scores, and for C4
keep a document when it has no `{`, no lorem ipsum and at least one line that `c4_v2` does not flag, as
docs/quality-taggers.md describes. Our default C4 also requires 5 words per line and 3 sentences, which
Dolma lacks, so C4 is compared twice: with our defaults, and like-for-like against an extra (untimed) run of
`c4:min_sentences=1,min_words_per_line=3`. Gopher is likewise compared twice: our paper-faithful `gopher`
(its differences from Dolma are documented), and like-for-like as `gopher_dolma` (Dolma's definitions, same
run), whose `pass` must match Dolma's decision and whose every attribute value must equal Dolma's as written
(Dolma rounds scores to 5 decimals in its files). Every disagreement is broken down by the rule that fires on
one side only, with example ids and both values, so a systematic difference points at its cause.
"""

from __future__ import annotations

import argparse
import functools
import glob
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from _util import Measured, mib, run_measured, wait_until_idle
from corpus import CorpusSpec, ensure_corpus
from rich.console import Console
from rich.table import Table

from dolma_kit.taggers.c4 import LINE_REASONS
from dolma_kit.taggers.gopher import GopherConfig, failed_rules
from dolma_kit.taggers.gopher_dolma import GopherDolmaConfig, failed_dolma_rules

OURS_TAGGERS = ["gopher", "c4", "pii", "char_length"]
DOLMA_TAGGERS = ["gopher_v1", "c4_v2", "pii_regex_with_counts_fast_v2", "char_length_v1"]
C4_LIKE_DOLMA = "c4:min_sentences=1,min_words_per_line=3"
GOPHER_LIKE_DOLMA = "gopher_dolma"
#: Dolma writes scores rounded to 5 decimals; ours unrounded must round to the same value
DOLMA_DECIMALS = 5
DOLMA_INSTALL = ["dolma==1.2.1", "boto3==1.28.17", "numpy<2"]
TARGET_SPEEDUP = 5.0
TARGET_AGREEMENT = 99.0
TARGET_MEMORY_GROWTH = 10.0
EXAMPLES = 2
BENCH_DIR = Path(__file__).resolve().parent

#: wide tables even when piped to a file (rich falls back to 80 columns there)
console = Console(width=None if sys.stdout.isatty() else 150)

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


# ------------------------------------------------------------------------------------------ running the tools


def ensure_dolma(venv: Path) -> Path:
    """The `dolma` executable of `venv`, installing Dolma 1.2.1 there first if it is missing.

    The boto3 pin keeps pip from backtracking for minutes; Dolma 1.2.1 breaks under numpy 2 (DESIGN §4).
    """
    exe = venv / "bin" / "dolma"
    if exe.exists():
        return exe
    console.print(f"[bold]installing Dolma 1.2.1 into {venv}[/] (one time, a few minutes)")
    subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *DOLMA_INSTALL], check=True)
    return exe


def attribute_path(shard: str, experiment: str) -> Path:
    """Where both tools write a shard's attributes: the last `documents/` becomes `attributes/<experiment>/`.

    Both mirror the path below it because the bench passes explicit files (Dolma drops the source folder
    when given a `documents/*/*` glob: it mirrors only the part below the glob's fixed prefix).
    """
    head, _, rel = shard.rpartition("/documents/")
    return Path(f"{head}/attributes/{experiment}/{rel}")


def fresh(shards: list[str], experiment: str) -> None:
    """Delete an experiment's previous attributes, so every run computes everything (no resume, no skip)."""
    for head in {s.rpartition("/documents/")[0] for s in shards}:
        shutil.rmtree(f"{head}/attributes/{experiment}", ignore_errors=True)


@dataclass(frozen=True)
class Runner:
    """Runs either tool the same way: same shards, same process count, fresh output, measured as a tree."""

    processes: int
    logs: Path
    wait_idle_s: float = 0.0
    """Before each run, wait up to this long for other processes to leave the cores idle (shared machines)."""

    def ours(self, shards: list[str], experiment: str, taggers: list[str]) -> Measured:
        fresh(shards, experiment)
        cmd = [sys.executable, "-m", "dolma_kit", "tag", "--documents", *shards, "--experiment", experiment]
        cmd += ["--taggers", *taggers, "--processes", str(self.processes), "--force"]
        return self._run(cmd, self.logs / f"{experiment}.log")

    def dolma(self, exe: Path, shards: list[str], experiment: str) -> Measured:
        fresh(shards, experiment)
        cmd = [str(exe), "tag", "--documents", *shards, "--experiment", experiment]
        cmd += ["--taggers", *DOLMA_TAGGERS, "--processes", str(self.processes), "--ignore_existing"]
        return self._run(cmd, self.logs / f"{experiment}.log")

    def _run(self, cmd: list[str], log: Path) -> Measured:
        if self.wait_idle_s > 0:
            busy = wait_until_idle(self.wait_idle_s)
            if busy >= 0.05:
                console.print(f"[yellow]cores still {100 * busy:.0f}% busy after waiting; running anyway[/]")
        console.print(f"[dim]$ {' '.join(cmd[:6])} …  (log: {log})[/]")
        measured = run_measured(cmd, log)
        if measured.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"command failed ({measured.returncode}): {' '.join(cmd)}\n{tail}")
        return measured


# ------------------------------------------------------------------------------------------ decisions


@dataclass(frozen=True)
class Rule:
    """One Gopher rule with the names each side gives its measure; `dolma` None = Dolma lacks the rule."""

    label: str
    dolma: str | None
    ours: str
    low: float | None = None
    high: float | None = None

    def fires(self, value: float | None) -> bool:
        """A missing attribute never fires, as Dolma's jq filters treat `null` (n-grams of short docs)."""
        if value is None:
            return False
        return (self.low is not None and value < self.low) or (self.high is not None and value > self.high)


def gopher_rules(c: GopherConfig) -> list[Rule]:
    """The paper's rules, thresholds from our config, under Dolma's attribute names (quality-taggers.md)."""
    same = "fraction_of_lines_ending_with_ellipsis"
    rules = [
        Rule("word count", "word_count", "word_count", c.min_words, c.max_words),
        Rule(
            "word length (Dolma median, ours mean)",
            "median_word_length",
            "mean_word_length",
            c.min_mean_word_length,
            c.max_mean_word_length,
        ),
        Rule("symbol ratio", "symbol_to_word_ratio", "symbol_to_word_ratio", high=c.max_symbol_to_word_ratio),
        Rule(
            "bullet lines",
            "fraction_of_lines_starting_with_bullet_point",
            "fraction_of_lines_starting_with_bullet",
            high=c.max_bullet_lines_fraction,
        ),
        Rule("ellipsis lines", same, same, high=c.max_ellipsis_lines_fraction),
        Rule(
            "alpha words",
            "fraction_of_words_with_alpha_character",
            "fraction_of_words_with_alpha_character",
            low=c.min_alpha_words_fraction,
        ),
        Rule("stop words", "required_word_count", "required_word_count", low=c.min_required_words),
        Rule(
            "duplicate lines",
            "fraction_of_duplicate_lines",
            "fraction_of_duplicate_lines",
            high=c.max_duplicate_lines_fraction,
        ),
        Rule(
            "duplicate line chars",
            "fraction_of_characters_in_duplicate_lines",
            "fraction_of_characters_in_duplicate_lines",
            high=c.max_duplicate_line_chars_fraction,
        ),
        Rule(
            "duplicate paragraphs",
            None,
            "fraction_of_duplicate_paragraphs",
            high=c.max_duplicate_paragraphs_fraction,
        ),
        Rule(
            "duplicate paragraph chars",
            None,
            "fraction_of_characters_in_duplicate_paragraphs",
            high=c.max_duplicate_paragraph_chars_fraction,
        ),
    ]
    for n, limit in zip((2, 3, 4), c.max_top_ngram_chars_fraction, strict=True):
        name = f"fraction_of_characters_in_most_common_{n}grams"
        rules.append(Rule(f"top {n}-gram chars", name, name, high=limit))
    for n, limit in zip(range(5, 11), c.max_duplicate_ngram_chars_fraction, strict=True):
        name = f"fraction_of_characters_in_duplicate_{n}grams"
        rules.append(Rule(f"duplicate {n}-gram chars", name, name, high=limit))
    return rules


def _doc_scores(attributes: dict[str, list[list[float]]], prefix: str) -> dict[str, float]:
    """Document-level scores (first span) of one tagger, by short attribute name."""
    return {k[len(prefix) :]: v[0][2] for k, v in attributes.items() if k.startswith(prefix) and v}


def _span_starts(attributes: dict[str, list[list[float]]], names: list[str]) -> set[float]:
    return {span[0] for name in names for span in attributes.get(name, ())}


class Verdict(NamedTuple):
    """One side's view of a document: each rule's value (None: not emitted) and the rules that fire."""

    values: dict[str, float | None]
    fired: set[str]


def dolma_gopher(attrs: dict[str, list[list[float]]], prefix: str, rules: list[Rule]) -> Verdict:
    """Dolma's Gopher verdict: the paper thresholds applied to its `gopher_v1` scores."""
    scores = _doc_scores(attrs, prefix)
    values = {r.label: scores.get(r.dolma) if r.dolma else None for r in rules}
    return Verdict(values, {r.label for r in rules if r.dolma and r.fires(values[r.label])})


def ours_gopher(attrs: dict[str, list[list[float]]], prefix: str, rules: list[Rule]) -> tuple[Verdict, bool]:
    """Our Gopher verdict from our measures (`failed_rules` under the default config), and our `pass`."""
    scores = _doc_scores(attrs, prefix)
    label = {r.ours: r.label for r in rules}
    values: dict[str, float | None] = {r.label: scores.get(r.ours) for r in rules}
    return Verdict(values, {label[n] for n in failed_rules(scores, GopherConfig())}), scores["pass"] == 1.0


def ours_gopher_dolma(
    attrs: dict[str, list[list[float]]], prefix: str, rules: list[Rule]
) -> tuple[Verdict, bool]:
    """Our like-for-like Gopher verdict: `gopher_dolma`'s measures (Dolma's names) and its `pass`."""
    scores = _doc_scores(attrs, prefix)
    label = {r.dolma: r.label for r in rules if r.dolma}
    values: dict[str, float | None] = {r.label: scores.get(r.dolma) if r.dolma else None for r in rules}
    fired = {label[n] for n in failed_dolma_rules(scores, GopherDolmaConfig())}
    return Verdict(values, fired), scores["pass"] == 1.0


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


def dolma_c4(attrs: dict[str, list[list[float]]], prefix: str) -> Verdict:
    """Dolma's C4 verdict from `c4_v2`'s outputs, as docs/quality-taggers.md derives it.

    Kept lines = `line_count` minus the distinct line starts flagged for punctuation or word count;
    `has_javascript` and `has_naughty_word` are left out (C4 drops only the line; we ship no word list).
    """
    p = prefix
    flagged = _span_starts(attrs, [p + "lines_with_no_ending_punctuation", p + "lines_with_too_few_words"])
    kept = attrs[p + "line_count"][0][2] - len(flagged)
    values: dict[str, float | None] = {
        "curly brace": float(p + "has_curly_brace" in attrs),
        "lorem ipsum": float(p + "has_lorem_ipsum" in attrs),
        "no kept line": kept,
        "too few sentences (ours only)": None,
    }
    fired = {r for r in ("curly brace", "lorem ipsum") if values[r]}
    return Verdict(values, fired | ({"no kept line"} if kept <= 0 else set()))


def ours_c4(attrs: dict[str, list[list[float]]], prefix: str) -> tuple[Verdict, bool]:
    """Our C4 verdict (flags, kept lines, sentences) under attribute prefix `prefix`, and our `pass`."""
    scores = _doc_scores(attrs, prefix)
    kept = scores["line_count"] - sum(len(attrs.get(prefix + r, ())) for r in LINE_REASONS)
    values: dict[str, float | None] = {
        "curly brace": scores["has_curly_brace"],
        "lorem ipsum": scores["has_lorem_ipsum"],
        "bad word": scores.get("has_bad_word"),
        "no kept line": kept,
        "too few sentences (ours only)": scores["sentence_count"],
    }
    fired = {r for r in ("curly brace", "lorem ipsum", "bad word") if values[r]}
    if kept <= 0:
        fired.add("no kept line")
    elif scores["too_few_sentences"]:  # only when lines are kept: otherwise "no kept line" says it all
        fired.add("too few sentences (ours only)")
    return Verdict(values, fired), scores["pass"] == 1.0


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


def _lines(path: Path) -> Any:
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
        streams = [_lines(Path(shard)), _lines(attribute_path(shard, exp_dolma))]
        streams.append(_lines(attribute_path(shard, exp_ours)))
        if exp_like:
            streams.append(_lines(attribute_path(shard, exp_like)))
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
                dolma_scores = _doc_scores(dolma, f"{exp_dolma}__gopher_v1__")
                values.add(doc_id, dolma_scores, _doc_scores(like, like_prefix))
    if exp_like:
        return [gopher, gopher_like, c4, c4like], values
    return [gopher, c4], values


# ------------------------------------------------------------------------------------------ reporting


def throughput_table(rows: list[tuple[str, Measured]], docs: int, text_mb: float) -> Table:
    table = Table(title=f"Throughput: {docs:,} documents, {text_mb:,.1f} MB of text")
    columns = ("run", "wall s", "docs/s", "MB/s", "CPU s", "CPU ms/doc", "peak RSS (sum)", "peak PSS (sum)")
    for col in (*columns, "other CPU s"):
        table.add_column(col, justify="left" if col == "run" else "right", no_wrap=col != "run")
    for name, m in rows:
        table.add_row(
            name,
            f"{m.wall_s:,.1f}",
            f"{docs / m.wall_s:,.0f}",
            f"{text_mb / m.wall_s:,.2f}",
            f"{m.cpu_s:,.1f}",
            f"{1000 * m.cpu_s / docs:,.2f}",
            mib(m.peak_rss),
            mib(m.peak_pss),
            f"{m.other_cpu_s:,.1f}",
        )
    table.caption = (
        "wall and CPU include start-up; memory is summed over the process tree; other CPU s = what the rest "
        "of the machine used meanwhile (more than a few % of CPU s: the cores were shared, timings inflated)"
    )
    return table


def agreement_tables(results: list[Agreement]) -> list[Table]:
    title = f"Agreement with Dolma's document-level decisions (target ≥ {TARGET_AGREEMENT:g}%)"
    summary = Table(title=title)
    columns = ("decision", "docs", "both keep", "both drop", "only Dolma keeps", "only ours keeps", "agree")
    for col in (*columns, "disagreements not explained by a documented difference"):
        summary.add_column(col, justify="left" if col == "decision" else "right")
    for a in results:
        style = "green" if a.percent >= TARGET_AGREEMENT else "red"
        summary.add_row(
            a.name,
            f"{a.docs:,}",
            f"{a.both_keep:,}",
            f"{a.both_drop:,}",
            f"{a.only_dolma_keeps:,}",
            f"{a.only_ours_keeps:,}",
            f"[{style}]{a.percent:.2f}%[/]",
            f"{a.unexplained:,}",
        )
    summary.caption = (
        "Gopher: ours as benchmarked (the paper's rules). Gopher like-for-like: ours as "
        f"`{GOPHER_LIKE_DOLMA}` (Dolma 1.2.1's definitions), its `pass` vs Dolma's decision. "
        "C4 defaults: ours as benchmarked (TFDS: 5 words per line, 3 sentences). "
        f"C4 like-for-like: ours as `{C4_LIKE_DOLMA}`, Dolma's line rule and no sentence rule."
    )
    diffs = Table(title="Disagreements by rule (a document can count under several rules)")
    for col in (
        "decision",
        "rule",
        "fires only in",
        "docs",
        "examples (kind; Dolma value, ours value)",
        "why",
    ):
        diffs.add_column(col, justify="right" if col == "docs" else "left")
    for a in results:
        for (rule, side), n in sorted(a.diffs.items(), key=lambda kv: -kv[1]):
            examples = "\n".join(a.examples[f"{rule}|{side}"])
            why = KNOWN_CAUSES.get((rule, side), "[red]not a documented difference[/]")
            diffs.add_row(a.name, rule, side, f"{n:,}", examples, why)
    kinds = Table(title="Keep rates by generated document kind (Dolma / ours, and agreement)")
    kinds.add_column("kind")
    kinds.add_column("docs", justify="right")
    for a in results:
        kinds.add_column(f"{a.name}: keep D / O", justify="right")
        kinds.add_column("agree", justify="right")
    for kind in sorted(results[0].by_kind, key=lambda k: -results[0].by_kind[k][0]):
        cells = [kind, f"{results[0].by_kind[kind][0]:,}"]
        for a in results:
            n, dk, ok, ag = a.by_kind[kind]
            cells += [f"{100 * dk / n:.0f}% / {100 * ok / n:.0f}%", f"{100 * ag / n:.1f}%"]
        kinds.add_row(*cells)
    return [summary, diffs, kinds]


def count_docs(shards: list[str]) -> tuple[int, float]:
    """(documents, MB of text) of the input, read once so both tools are judged on the same count."""
    docs = chars = 0
    for shard in shards:
        for doc in _lines(Path(shard)):
            docs += 1
            chars += len(doc["text"].encode())
    return docs, chars / 1e6


# ------------------------------------------------------------------------------------------ main


def prepare_corpus(args: argparse.Namespace, out: Path) -> tuple[list[str], str]:
    """(shard files, description): the user's shards, or the generated corpus (built once, then reused)."""
    if args.documents:
        shards = sorted(os.path.abspath(p) for pattern in args.documents for p in glob.glob(pattern))
        if not shards or any("/documents/" not in s for s in shards):
            raise SystemExit("--documents: give shards under a 'documents/' folder (Dolma's layout)")
        return shards, ", ".join(args.documents)
    spec = CorpusSpec(docs=args.docs, shards=args.shards, seed=args.seed)
    t0 = time.perf_counter()
    root, reused = ensure_corpus(spec, out, args.processes)
    console.print(f"{'reusing' if reused else f'generated in {time.perf_counter() - t0:.0f} s:'} {root}")
    shards = sorted(str(p) for p in (root / "documents").glob("*/*.jsonl.gz"))
    return shards, f"synthetic, {spec.docs:,} docs in {spec.shards} shards, seed {spec.seed}"


def memory_table(memory: list[tuple[int, Measured]]) -> tuple[Table, dict[str, float]]:
    """Peak memory of the small and the 10x run, and the growth in % (RSS and PSS sums)."""
    (_, small), (_, large) = memory
    title = f"Peak memory of dolma-kit tag, 10× the input (target growth < {TARGET_MEMORY_GROWTH:g}%)"
    table = Table(title=title)
    for col in ("documents", "wall s", "docs/s", "peak RSS (sum)", "peak PSS (sum)", "other CPU s"):
        table.add_column(col, justify="right")
    for n, m in memory:
        table.add_row(
            f"{n:,}",
            f"{m.wall_s:,.1f}",
            f"{n / m.wall_s:,.0f}",
            mib(m.peak_rss),
            mib(m.peak_pss),
            f"{m.other_cpu_s:,.1f}",
        )
    growth = {
        "rss": 100 * (large.peak_rss / small.peak_rss - 1),
        "pss": 100 * (large.peak_pss / small.peak_pss - 1),
    }
    table.add_row("growth", "", "", f"{growth['rss']:+.1f}%", f"{growth['pss']:+.1f}%", "", style="bold")
    return table, growth


def _git_commit() -> str:
    """The checked-out commit (with `+dirty` for local changes), so a figure can be traced to the code."""
    try:
        run = functools.partial(subprocess.run, capture_output=True, text=True, cwd=BENCH_DIR, check=True)
        commit = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--", "../dolma_kit"]).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    args = parse_args()
    started = datetime.now(timezone.utc)
    out = args.out.resolve()
    shards, corpus_name = prepare_corpus(args, out)
    docs, text_mb = count_docs(shards)
    report: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "corpus": corpus_name,
        "docs": docs,
        "text_mb": text_mb,
        "processes": args.processes,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "dolma_kit_commit": _git_commit(),
    }
    dolma = ensure_dolma(args.dolma_venv.resolve())
    runner = Runner(args.processes, out / "logs", args.wait_idle)

    dolma_runs: list[Measured] = []
    ours_runs: list[Measured] = []
    for i in range(args.repeat):  # alternate the tools, so a slow spell of a noisy VM hits both alike
        console.rule(f"run {i + 1}/{args.repeat}, Dolma 1.2.1: {' '.join(DOLMA_TAGGERS)}")
        dolma_runs.append(runner.dolma(dolma, shards, "dolma"))
        console.rule(f"run {i + 1}/{args.repeat}, dolma-kit: {' '.join(OURS_TAGGERS)}")
        ours_runs.append(runner.ours(shards, "ours", OURS_TAGGERS))
    report["walls"] = {"dolma": [m.wall_s for m in dolma_runs], "ours": [m.wall_s for m in ours_runs]}
    m_dolma = min(dolma_runs, key=lambda m: m.wall_s)
    m_ours = min(ours_runs, key=lambda m: m.wall_s)
    speedup, cpu_speedup = m_dolma.wall_s / m_ours.wall_s, m_dolma.cpu_s / m_ours.cpu_s
    rows = [("Dolma 1.2.1 (4 taggers)", m_dolma), ("dolma-kit (4 taggers)", m_ours)]
    if args.per_tagger or speedup < TARGET_SPEEDUP:  # which of ours to speed up
        rows += [(f"dolma-kit {t} alone", runner.ours(shards, f"ours_{t}", [t])) for t in OURS_TAGGERS]
    report.update(runs={name: asdict(m) for name, m in rows}, speedup=speedup, cpu_speedup=cpu_speedup)

    runner.ours(shards, "ours_like", [C4_LIKE_DOLMA, GOPHER_LIKE_DOLMA])  # untimed: agreement only
    results, values = compare(shards, "dolma", "ours", "ours_like")
    report["gopher_values"] = {**asdict(values), "mismatches": dict(values.mismatches)}
    report["agreement"] = [
        {
            **{k: v for k, v in asdict(a).items() if k != "diffs"},
            "percent": a.percent,
            "diffs": {f"{r} | {s}": n for (r, s), n in a.diffs.items()},
        }
        for a in results
    ]

    memory: list[tuple[int, Measured]] = []
    if args.memory_check:
        if args.documents:
            raise SystemExit("--memory-check needs the generated corpus (leave out --documents)")
        big = CorpusSpec(docs=args.docs * 10, shards=args.shards, seed=args.seed)
        console.rule(f"memory check: {big.docs:,} documents in {big.shards} shards")
        big_root, _ = ensure_corpus(big, out, args.processes)
        big_shards = sorted(str(p) for p in (big_root / "documents").glob("*/*.jsonl.gz"))
        memory = [(docs, m_ours), (big.docs, runner.ours(big_shards, "ours", OURS_TAGGERS))]
        report["memory"] = {str(n): asdict(m) for n, m in memory}

    console.rule("results")
    console.print(f"{report['date']}; dolma-kit {report['dolma_kit_commit']}; {report['machine']}")
    console.print(f"$ {report['command']}\ncorpus: {corpus_name}; {args.processes} processes")
    console.print(throughput_table(rows, docs, text_mb))
    if args.repeat > 1:
        walls = "; ".join(f"{k}: {', '.join(f'{w:.1f}' for w in v)}" for k, v in report["walls"].items())
        console.print(f"best of {args.repeat} runs shown; all wall times (s): {walls}")
    style = "green" if speedup >= TARGET_SPEEDUP else "red"
    console.print(
        f"speed: dolma-kit / Dolma = [{style}]{speedup:.2f}×[/] docs/s (target ≥ {TARGET_SPEEDUP:g}×); "
        f"CPU seconds: {cpu_speedup:.2f}× fewer"
    )
    if any(m.other_cpu_s > 0.1 * m.cpu_s for _, m in rows + memory):
        console.print(
            "[yellow]other processes used the cores during some runs: those timings are inflated[/]"
        )
    for table in agreement_tables(results):
        console.print(table)
    style = "green" if values.equal == values.docs else "red"
    console.print(
        f"Gopher values: [{style}]{values.equal:,} of {values.docs:,}[/] documents have every Dolma "
        f"`gopher_v1` attribute equal to ours `{GOPHER_LIKE_DOLMA}` (same names, {values.values:,} values, "
        f"ours rounded to {DOLMA_DECIMALS} decimals as Dolma writes them)"
        + (
            f"; differing: {dict(values.mismatches.most_common(5))}, e.g. {values.examples}"
            if values.mismatches
            else ""
        )
    )
    if any(a.inconsistent for a in results):
        counts = {a.name: a.inconsistent for a in results}
        console.print(f"[red]our `pass` disagrees with our own measures (tagger bug?): {counts}[/]")
    if memory:
        table, report["memory_growth_percent"] = memory_table(memory)
        console.print(table)

    path = out / "results" / f"tag-{started.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    console.print(f"[dim]saved {path}[/]")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--docs", type=int, default=20_000, help="documents in the generated corpus (default 20,000)"
    )
    p.add_argument("--shards", type=int, default=8, help="shards of the generated corpus (default 8)")
    p.add_argument("--processes", type=int, default=2, help="processes for both tools (default 2)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--quick", action="store_true", help="2,000 documents: checks the plumbing")
    p.add_argument("--documents", nargs="+", metavar="GLOB", help="take these shards instead of generating")
    p.add_argument(
        "--out", type=Path, default=BENCH_DIR / "out", help="corpora, logs, results (default bench/out)"
    )
    p.add_argument(
        "--dolma-venv",
        type=Path,
        default=BENCH_DIR / "out" / "dolma-venv",
        help="venv holding Dolma 1.2.1; created with pip when missing (default bench/out/dolma-venv)",
    )
    p.add_argument(
        "--memory-check", action="store_true", help="also run ours on a 10x corpus; print peak growth"
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="run both tools N times (alternating); report the best"
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="S",
        help="before each timed run, wait up to S seconds for the other processes to leave the cores idle",
    )
    p.add_argument("--per-tagger", action="store_true", help="also time each of our taggers alone")
    args = p.parse_args()
    if args.quick:
        args.docs = 2_000
    return args


if __name__ == "__main__":
    main()
