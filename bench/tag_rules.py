"""Document-level keep/drop decisions of both sides, rule by rule, from their attribute records.

Dolma's taggers only emit scores, so its decisions apply the paper thresholds (from our `GopherConfig`) to
`gopher_v1`'s scores and derive C4's from `c4_v2`'s flags; ours come from our own measures. Each side's
`Verdict` names the rules that fire, so a disagreement can be traced to the rule behind it.
bench/mix_bench.py reuses `gopher_rules` to write the same thresholds into Dolma's mixer recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from dolma_kit.taggers.c4 import LINE_REASONS
from dolma_kit.taggers.gopher import GopherConfig, failed_rules
from dolma_kit.taggers.gopher_dolma import GopherDolmaConfig, failed_dolma_rules


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


def doc_scores(attributes: dict[str, list[list[float]]], prefix: str) -> dict[str, float]:
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
    scores = doc_scores(attrs, prefix)
    values = {r.label: scores.get(r.dolma) if r.dolma else None for r in rules}
    return Verdict(values, {r.label for r in rules if r.dolma and r.fires(values[r.label])})


def ours_gopher(attrs: dict[str, list[list[float]]], prefix: str, rules: list[Rule]) -> tuple[Verdict, bool]:
    """Our Gopher verdict from our measures (`failed_rules` under the default config), and our `pass`."""
    scores = doc_scores(attrs, prefix)
    label = {r.ours: r.label for r in rules}
    values: dict[str, float | None] = {r.label: scores.get(r.ours) for r in rules}
    return Verdict(values, {label[n] for n in failed_rules(scores, GopherConfig())}), scores["pass"] == 1.0


def ours_gopher_dolma(
    attrs: dict[str, list[list[float]]], prefix: str, rules: list[Rule]
) -> tuple[Verdict, bool]:
    """Our like-for-like Gopher verdict: `gopher_dolma`'s measures (Dolma's names) and its `pass`."""
    scores = doc_scores(attrs, prefix)
    label = {r.dolma: r.label for r in rules if r.dolma}
    values: dict[str, float | None] = {r.label: scores.get(r.dolma) if r.dolma else None for r in rules}
    fired = {label[n] for n in failed_dolma_rules(scores, GopherDolmaConfig())}
    return Verdict(values, fired), scores["pass"] == 1.0


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
    scores = doc_scores(attrs, prefix)
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
