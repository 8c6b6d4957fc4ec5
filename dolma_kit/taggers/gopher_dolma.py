"""Dolma 1.2.1's `gopher_v1` measures, reproduced exactly, for users migrating from Dolma (`gopher_dolma_v1`).

`gopher_v1` follows the Gopher paper; Dolma's tagger departs from it in ways that change about one decision
in ten (docs/quality-taggers.md, "Differences from Dolma 1.2.1 `gopher_v1`"). A corpus filtered with Dolma
and a recipe written against Dolma's attribute names can only be reproduced with Dolma's definitions, so
this tagger emits Dolma's names with Dolma's semantics, quirks included:

- `median_word_length`, not the mean;
- `symbol_to_word_ratio` counts *words containing* `#` or `…` (ASCII `...` is ignored);
- lines are `text.split("\\n")`, blank ones included, never stripped: bullets are `*` or `-` in column 0,
  ellipsis lines end in `…` exactly, and two blank lines are "duplicates";
- duplicate-line characters are divided by *word* characters, so the value can exceed 1;
- `required_word_count` counts occurrences of exact lowercase tokens (`The` and `the,` do not count);
- top 2/3/4-grams are count × characters of the most frequent n-gram (first seen wins a tie), overlaps
  counted again; duplicate 5…10-grams divide by the characters of all n-gram windows, unmerged;
- the n-gram attributes are emitted only when the text has at least n words;
- `character_count` is `len(text)`.

It adds `pass`, the paper's thresholds applied the way docs/quality-taggers.md "Computing Dolma's keep/drop
decision" describes: a missing attribute does not fire. Set `collapse_blank_lines=true` for `gopher_v2`,
whose only change is splitting lines on runs of `\\n`. The n-gram grouping is `gopher_v1`'s vectorised one.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from dolma_kit.documents import Document
from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.chunks import NEWLINE, split_chunks
from dolma_kit.taggers.gopher import TokenFacts, check_ngram_limits, duplicate_counts
from dolma_kit.taggers.ngrams import (
    DUPLICATE_NGRAM_SIZES,
    TOP_NGRAM_SIZES,
    WordArrays,
    ngram_groups,
    repeated_mask,
    run_starts_and_lengths,
)
from dolma_kit.taggers.registry import register_tagger

#: Dolma's `REQUIRED_ENGLISH_WORDS`, matched as exact tokens
REQUIRED_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
_TOP_NAMES = {n: f"fraction_of_characters_in_most_common_{n}grams" for n in TOP_NGRAM_SIZES}
_DUPLICATE_NAMES = {n: f"fraction_of_characters_in_duplicate_{n}grams" for n in DUPLICATE_NGRAM_SIZES}
_BLANK_RUNS = re.compile(r"\n+")

#: always emitted, in Dolma's names
SCALAR_MEASURES: tuple[str, ...] = (
    "character_count",
    "word_count",
    "median_word_length",
    "symbol_to_word_ratio",
    "fraction_of_words_with_alpha_character",
    "required_word_count",
    "fraction_of_lines_starting_with_bullet_point",
    "fraction_of_lines_ending_with_ellipsis",
    "fraction_of_duplicate_lines",
    "fraction_of_characters_in_duplicate_lines",
)
#: emitted only when the text has at least n words
NGRAM_MEASURES: tuple[str, ...] = (*_TOP_NAMES.values(), *_DUPLICATE_NAMES.values())
MEASURES: tuple[str, ...] = SCALAR_MEASURES + NGRAM_MEASURES


@dataclass(kw_only=True)
class GopherDolmaConfig(TaggerConfig):
    """Thresholds for `pass` (the paper's by default), applied to Dolma's measures; no paragraph rules."""

    name: str = ""
    """Attribute prefix instead of the spec's name: `name=gopher_v1` writes `<experiment>__gopher_v1__…`, the
    keys a Dolma mix recipe reads, so the recipe works unchanged."""
    collapse_blank_lines: bool = False
    """Split lines on runs of `\\n` (Dolma's `gopher_v2`) instead of on every `\\n` (`gopher_v1`)."""
    min_words: int = 50
    """Fewest words a kept document has (inclusive)."""
    max_words: int = 100_000
    """Most words a kept document has (inclusive)."""
    min_median_word_length: float = 3.0
    """Shortest median word length of a kept document (inclusive); Dolma has no mean."""
    max_median_word_length: float = 10.0
    """Longest median word length of a kept document (inclusive)."""
    max_symbol_to_word_ratio: float = 0.1
    """Largest fraction of words containing `#` or `…`."""
    max_bullet_lines_fraction: float = 0.9
    """Largest fraction of lines (blank ones included) starting with `*` or `-`."""
    max_ellipsis_lines_fraction: float = 0.3
    """Largest fraction of lines (blank ones included) ending with `…`."""
    min_alpha_words_fraction: float = 0.8
    """Smallest fraction of words that contain a letter."""
    min_required_words: int = 2
    """Fewest stop-word occurrences (exact lowercase tokens) in a kept document."""
    max_duplicate_lines_fraction: float = 0.3
    """Largest fraction of lines whose text occurs more than once (blank lines are lines)."""
    max_duplicate_line_chars_fraction: float = 0.2
    """Largest `fraction_of_characters_in_duplicate_lines` (Dolma's recipes use 0.3)."""
    max_top_ngram_chars_fraction: tuple[float, ...] = (0.20, 0.18, 0.16)
    """For n = 2, 3, 4: largest `fraction_of_characters_in_most_common_{n}grams`."""
    max_duplicate_ngram_chars_fraction: tuple[float, ...] = (0.15, 0.14, 0.13, 0.12, 0.11, 0.10)
    """For n = 5 … 10: largest `fraction_of_characters_in_duplicate_{n}grams`."""

    def __post_init__(self) -> None:
        check_ngram_limits(self.max_top_ngram_chars_fraction, self.max_duplicate_ngram_chars_fraction)
        if self.min_words > self.max_words or self.min_median_word_length > self.max_median_word_length:
            raise ValueError(
                "a minimum is larger than its maximum; check min_/max_ words and median_word_length"
            )


def _ngram_measures(words: WordArrays, word_chars: int) -> dict[str, float]:
    """Dolma's n-gram measures for every n with at least n words, from `gopher_v1`'s hashed groups.

    Top n-gram: count × characters of the most frequent n-gram / word characters; a tie goes to the n-gram
    seen first (Counter insertion order), and when nothing repeats that is the first n-gram. Duplicate
    n-grams: characters of the windows of repeated n-grams / characters of all windows, each window counted
    whole even where windows overlap. Integer sums, divided once, so values equal Dolma's bit for bit. Each
    is a maximum or a sum over the blocks of `ngram_groups`.
    """
    out: dict[str, float] = {}
    n_words = len(words.hashes)
    if n_words < 2:
        return out
    char_cumsum = words.char_cumsum
    for n, blocks in ngram_groups(words.hashes):
        m = n_words - n + 1
        if n in _TOP_NAMES:
            top, first = 0, m
            for order, same_as_next in blocks:
                run_starts, run_lengths = run_starts_and_lengths(same_as_next)
                block_top = int(run_lengths.max())
                block_first = int(order[run_starts[run_lengths == block_top]].min())
                if block_top > top or (block_top == top and block_first < first):
                    top, first = block_top, block_first
            window = int(char_cumsum[first + n] - char_cumsum[first])
            out[_TOP_NAMES[n]] = top * window / max(word_chars, 1)
            continue
        repeated = 0
        any_repeated = False
        for order, same_as_next in blocks:
            if same_as_next.any():
                any_repeated = True
                starts = order[repeated_mask(same_as_next)]
                repeated += int((char_cumsum[starts + n] - char_cumsum[starts]).sum())
        if not any_repeated:
            # no repeated n-gram, so no longer one either: every longer n with enough words is 0.0
            out.update((_DUPLICATE_NAMES[k], 0.0) for k in DUPLICATE_NGRAM_SIZES if n <= k <= n_words)
            break
        # the characters of all m windows: each word counted once per window it is in
        all_windows = int(char_cumsum[n:].sum()) - int(char_cumsum[:m].sum())
        out[_DUPLICATE_NAMES[n]] = repeated / max(all_windows, 1)
    return out


@dataclass
class _DolmaTokenFacts(TokenFacts):
    """`TokenFacts` plus Dolma's own word counts: stop-word occurrences and words with `#` or `…`."""

    required_occurrences: int = 0
    """Words that are exactly a lowercase stop word."""
    symbol_words: int = 0
    """Words containing `#` or `…` (a `###` word counts once)."""

    def add(self, chunk: str, words: list[str]) -> None:
        super().add(chunk, words)
        self.required_occurrences += sum(map(REQUIRED_WORDS.__contains__, words))
        if "#" in chunk or "…" in chunk:  # most texts have neither, so look first
            self.symbol_words += sum(1 for w in words if "#" in w or "…" in w)


def gopher_dolma_measures(text: str, collapse_blank_lines: bool = False) -> dict[str, float]:
    """Dolma 1.2.1 `gopher_v1` attributes of `text` by name; n-gram ones only where there are ≥ n words.

    An empty text gives Dolma's zeros and no n-gram attributes (Dolma returns before computing anything).
    A long text is read a chunk at a time, its words kept as hashes and lengths only (as in `gopher_v1`).
    """
    measures = dict.fromkeys(SCALAR_MEASURES, 0.0)
    if not text:
        return measures
    counts: Counter[str] = Counter()
    n_lines = bullet_lines = ellipsis_lines = 0
    for lines in split_chunks(text, _BLANK_RUNS if collapse_blank_lines else NEWLINE):
        counts.update(lines)
        n_lines += len(lines)
        # map over the bound methods: a C loop, not a generator frame per line (real text has many short lines)
        bullet_lines += sum(map(str.startswith, lines, repeat(("*", "-"), len(lines))))
        ellipsis_lines += sum(map(str.endswith, lines, repeat("…", len(lines))))
    dup_lines, dup_line_chars = duplicate_counts(counts, n_lines)
    del counts
    # a letter stays a letter when lowercased, so gopher_v1's lowercase-based alpha count is Dolma's
    tokens = _DolmaTokenFacts()
    words = WordArrays.collect(tokens.words(text), max_chars=len(text))
    n_words = len(words.hashes)
    word_chars = int(words.char_cumsum[-1])
    per_word = max(n_words, 1)
    measures.update(
        character_count=float(len(text)),
        word_count=float(n_words),
        median_word_length=float(np.median(words.lengths)) if n_words else 0.0,
        symbol_to_word_ratio=tokens.symbol_words / per_word,
        fraction_of_words_with_alpha_character=(n_words - tokens.letterless) / n_words if n_words else 0.0,
        required_word_count=float(tokens.required_occurrences),
        fraction_of_lines_starting_with_bullet_point=bullet_lines / n_lines,
        fraction_of_lines_ending_with_ellipsis=ellipsis_lines / n_lines,
        fraction_of_duplicate_lines=dup_lines / n_lines,
        fraction_of_characters_in_duplicate_lines=dup_line_chars / max(word_chars, 1),
    )
    measures.update(_ngram_measures(words, word_chars))
    return measures


def failed_dolma_rules(measures: dict[str, float], config: GopherDolmaConfig) -> list[str]:
    """Names of the measures that break the thresholds under `config`; a missing measure never fails.

    Bounds are inclusive, as in `gopher_v1`. Missing means "not emitted": the n-gram measures of a text with
    fewer than n words, which Dolma's jq filters read as `null`, and `null` comparisons do not fire.
    """
    c = config
    bounds: dict[str, tuple[float | None, float | None]] = {
        "word_count": (c.min_words, c.max_words),
        "median_word_length": (c.min_median_word_length, c.max_median_word_length),
        "symbol_to_word_ratio": (None, c.max_symbol_to_word_ratio),
        "fraction_of_words_with_alpha_character": (c.min_alpha_words_fraction, None),
        "required_word_count": (c.min_required_words, None),
        "fraction_of_lines_starting_with_bullet_point": (None, c.max_bullet_lines_fraction),
        "fraction_of_lines_ending_with_ellipsis": (None, c.max_ellipsis_lines_fraction),
        "fraction_of_duplicate_lines": (None, c.max_duplicate_lines_fraction),
        "fraction_of_characters_in_duplicate_lines": (None, c.max_duplicate_line_chars_fraction),
    }
    limits = c.max_top_ngram_chars_fraction + c.max_duplicate_ngram_chars_fraction
    bounds.update((name, (None, high)) for name, high in zip(NGRAM_MEASURES, limits, strict=True))
    failed = []
    for name, (low, high) in bounds.items():
        value = measures.get(name)
        if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
            failed.append(name)
    return failed


@register_tagger("gopher_dolma_v1", alias="gopher_dolma")
class GopherDolmaTagger(Tagger):
    """Dolma 1.2.1 `gopher_v1` measures under Dolma's names, one document-level span each, and `pass`."""

    Config = GopherDolmaConfig
    config: GopherDolmaConfig

    def predict(self, doc: Document) -> list[Span]:
        measures = gopher_dolma_measures(doc.text, self.config.collapse_blank_lines)
        spans = [whole_document(doc, name, value) for name, value in measures.items()]
        spans.append(whole_document(doc, "pass", 0.0 if failed_dolma_rules(measures, self.config) else 1.0))
        return spans

    def attribute_names(self) -> list[str]:
        return [*MEASURES, "pass"]
