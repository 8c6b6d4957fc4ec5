"""Gopher quality and repetition rules (Rae et al. 2021, MassiveText, appendix A.1.1 and table A1).

Each measure is a document-level attribute, so a mix recipe can filter on any one of them with its own
threshold; `pass` (1.0/0.0) applies the paper's thresholds from the config. The paper's rules, not Dolma
1.2.1's approximation of them, are what this computes; docs/quality-taggers.md lists every difference.

Words are whitespace-separated tokens (`str.split()`), as Dolma does: fast, language-neutral and
reproducible without a tokenizer file. The repetition measures over word n-grams are vectorised: each word
gets a 64-bit hash, n-gram hashes are built by a polynomial roll over the word hashes, and duplicates are
found by one sort per n, so a 2 KB document costs tens of numpy calls instead of thousands of tuples.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import filterfalse, repeat

import numpy as np

from dolma_kit.documents import Document
from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.registry import register_tagger

TOP_NGRAM_SIZES = (2, 3, 4)
DUPLICATE_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)

#: characters stripped from both ends of a token before matching it against the stop words
_EDGE_PUNCTUATION = string.punctuation + "“”‘’«»„‚‹›…–—¡¿"
#: paragraphs are separated by one or more blank (or whitespace-only) lines
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
#: odd 64-bit multiplier of the polynomial n-gram hash (any large odd constant works; word hashes are random)
_ROLL = np.uint64(0x9E3779B97F4A7C15)


@dataclass(kw_only=True)
class GopherConfig(TaggerConfig):
    """Thresholds for `pass`; defaults are the paper's. Every measure is emitted whatever the thresholds."""

    min_words: int = 50
    """Fewest words a kept document has (inclusive)."""
    max_words: int = 100_000
    """Most words a kept document has (inclusive)."""
    min_mean_word_length: float = 3.0
    """Shortest mean word length, in characters, of a kept document (inclusive)."""
    max_mean_word_length: float = 10.0
    """Longest mean word length of a kept document (inclusive)."""
    max_symbol_to_word_ratio: float = 0.1
    """Most `#` per word, and separately most ellipses (`...` or `…`) per word, of a kept document."""
    max_bullet_lines_fraction: float = 0.9
    """Largest fraction of non-blank lines that may start with a bullet."""
    max_ellipsis_lines_fraction: float = 0.3
    """Largest fraction of non-blank lines that may end with an ellipsis."""
    min_alpha_words_fraction: float = 0.8
    """Smallest fraction of words that must contain a letter."""
    required_words: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")
    """The stop words; matched case-insensitively against tokens stripped of edge punctuation."""
    min_required_words: int = 2
    """How many *different* stop words a kept document contains at least (the paper: "at least two of")."""
    bullets: tuple[str, ...] = (
        *("•", "‣", "●", "○", "◦", "▪", "▫", "■", "□", "◆", "◇", "⁃", "∙", "·"),
        *("-", "*", "–", "►", "▶", "➢", "➤", "✓", "✔"),
    )
    """Line prefixes (after leading whitespace) that count as bullets. The em dash is left out: it opens dialogue."""
    max_duplicate_lines_fraction: float = 0.3
    """Largest fraction of non-blank lines whose text occurs more than once."""
    max_duplicate_paragraphs_fraction: float = 0.3
    """Largest fraction of paragraphs whose text occurs more than once."""
    max_duplicate_line_chars_fraction: float = 0.2
    """Largest fraction of line characters inside lines that occur more than once."""
    max_duplicate_paragraph_chars_fraction: float = 0.2
    """Largest fraction of paragraph characters inside paragraphs that occur more than once."""
    max_top_ngram_chars_fraction: tuple[float, ...] = (0.20, 0.18, 0.16)
    """For n = 2, 3, 4: largest fraction of word characters covered by the most frequent n-gram."""
    max_duplicate_ngram_chars_fraction: tuple[float, ...] = (0.15, 0.14, 0.13, 0.12, 0.11, 0.10)
    """For n = 5 … 10: largest fraction of word characters covered by n-grams that occur more than once."""

    def __post_init__(self) -> None:
        check_ngram_limits(self.max_top_ngram_chars_fraction, self.max_duplicate_ngram_chars_fraction)
        if self.min_words > self.max_words or self.min_mean_word_length > self.max_mean_word_length:
            raise ValueError(
                "a minimum is larger than its maximum; check min_/max_ words and mean_word_length"
            )


def check_ngram_limits(top: tuple[float, ...], duplicate: tuple[float, ...]) -> None:
    """Reject n-gram threshold lists of the wrong length (shared with the Dolma-compatible config)."""
    if len(top) != len(TOP_NGRAM_SIZES):
        raise ValueError(
            "max_top_ngram_chars_fraction needs 3 values (for 2-, 3- and 4-grams), e.g. 0.2|0.18|0.16"
        )
    if len(duplicate) != len(DUPLICATE_NGRAM_SIZES):
        raise ValueError("max_duplicate_ngram_chars_fraction needs 6 values (for 5- to 10-grams)")


def _ngram_attribute(n: int) -> str:
    if n in TOP_NGRAM_SIZES:
        return f"fraction_of_characters_in_most_common_{n}grams"
    return f"fraction_of_characters_in_duplicate_{n}grams"


#: attribute name of each n-gram measure, by n
_NGRAM_NAMES = {n: _ngram_attribute(n) for n in TOP_NGRAM_SIZES + DUPLICATE_NGRAM_SIZES}

MEASURES: tuple[str, ...] = (
    "word_count",
    "mean_word_length",
    "symbol_to_word_ratio",
    "fraction_of_lines_starting_with_bullet",
    "fraction_of_lines_ending_with_ellipsis",
    "fraction_of_words_with_alpha_character",
    "required_word_count",
    "fraction_of_duplicate_lines",
    "fraction_of_duplicate_paragraphs",
    "fraction_of_characters_in_duplicate_lines",
    "fraction_of_characters_in_duplicate_paragraphs",
    *_NGRAM_NAMES.values(),
)


def _duplicate_fractions(items: list[str]) -> tuple[float, float]:
    """(fraction of items, fraction of their characters) that belong to a text occurring more than once.

    Every occurrence of a repeated text counts, the first included: two equal lines out of ten are 0.2.
    """
    if not items:
        return 0.0, 0.0
    dup_items, dup_chars = duplicate_counts(items)
    if not dup_items:
        return 0.0, 0.0
    total_chars = sum(map(len, items))
    return dup_items / len(items), dup_chars / total_chars if total_chars else 0.0


def duplicate_counts(items: list[str]) -> tuple[int, int]:
    """(items, characters) belonging to a text that occurs more than once, every occurrence counted.

    Shared with the Dolma-compatible tagger, which divides the same counts by other totals.
    """
    counts = Counter(items)
    if len(counts) == len(items):
        return 0, 0
    dup_items = dup_chars = 0
    for item, count in counts.items():
        if count > 1:
            dup_items += count
            dup_chars += count * len(item)
    return dup_items, dup_chars


def _covered_chars(starts: np.ndarray, n: int, char_cumsum: np.ndarray) -> int:
    """Characters of the words covered by n-grams starting at sorted `starts`, overlaps counted once.

    With equal-length windows in increasing order, window k contributes the words from its start up to the
    next window's start or its own end, whichever comes first; the sum is the size of the union.
    """
    ends = np.minimum(starts + n, np.append(starts[1:], np.iinfo(np.int64).max))
    return int((char_cumsum[ends] - char_cumsum[starts]).sum())


def word_char_cumsum(words: list[str]) -> np.ndarray:
    """Prefix sums of word lengths (length len(words) + 1), so any word window's characters cost one subtraction."""
    n_words = len(words)
    char_cumsum = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=n_words), out=char_cumsum[1:])
    return char_cumsum


def ngram_groups(words: list[str]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For n = 2 … 10 while there are at least n words: (n, order, same_as_next) of the word n-grams.

    `order` lists n-gram start positions grouped by equal n-gram, each group in text order;
    `same_as_next[i]` says whether `order[i]` and `order[i + 1]` are the same n-gram. Each word gets Python's
    64-bit string hash (random per process, equal for equal strings) and n-gram hashes are rolled from them.
    The low bits of each n-gram key are replaced by its position, so one plain `np.sort` groups equal
    n-grams *and* lists each group's occurrences in text order (3-4x faster than a stable argsort). The hash
    keeps 64 - log2(#n-grams) bits: 55 bits for a 2 KB document, 47 at 100,000 words, where a false match
    between two different n-grams has odds of about 1 in 30,000 per document and n. Shared by `gopher_v1`
    and the Dolma-compatible tagger, which score the same groups differently.
    """
    n_words = len(words)
    keys = np.fromiter(map(hash, words), dtype=np.int64, count=n_words).view(np.uint64)
    position_bits = np.uint64(max(n_words.bit_length(), 1))
    position_mask = np.uint64((1 << int(position_bits)) - 1)
    positions = np.arange(n_words, dtype=np.uint64)
    grams = keys
    for n in _NGRAM_NAMES:
        m = n_words - n + 1  # number of n-grams
        if m <= 0:
            return
        grams = grams[:m] * _ROLL + keys[n - 1 :]
        packed = np.sort((grams & ~position_mask) | positions[:m])
        hashes = packed >> position_bits
        yield n, (packed & position_mask).astype(np.int64), hashes[1:] == hashes[:-1]


def _ngram_measures(words: list[str], word_chars: int) -> dict[str, float]:
    """The nine repetition measures over word n-grams, n = 2 … 10, as fractions of all word characters.

    Equal n-grams come from `ngram_groups` (hashed, one sort per n, a false match can only raise a
    repetition measure slightly). Ties are broken by position, never by hash order, so results do not
    depend on the hash seed.
    """
    out = dict.fromkeys(_NGRAM_NAMES.values(), 0.0)
    if len(words) < 2 or word_chars == 0:
        return out
    char_cumsum = word_char_cumsum(words)
    for n, order, same_as_next in ngram_groups(words):
        if n in TOP_NGRAM_SIZES:
            covered = _top_ngram_chars(n, order, same_as_next, char_cumsum)
        else:
            if not same_as_next.any():
                break  # no repeated n-gram means no repeated longer n-gram either: the rest stay 0.0
            covered = _covered_chars(np.sort(order[repeated_mask(same_as_next)]), n, char_cumsum)
        out[_NGRAM_NAMES[n]] = covered / word_chars
    return out


def repeated_mask(same_as_next: np.ndarray) -> np.ndarray:
    """Which entries of a grouped `order` belong to an n-gram that occurs more than once."""
    repeated = np.zeros(len(same_as_next) + 1, dtype=bool)
    repeated[1:] = same_as_next
    repeated[:-1] |= same_as_next
    return repeated


def run_starts_and_lengths(same_as_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each group of equal n-grams starts in a grouped `order`, and how many occurrences it has."""
    run_starts = np.flatnonzero(np.concatenate(([True], ~same_as_next)))
    return run_starts, np.diff(np.append(run_starts, len(same_as_next) + 1))


def _top_ngram_chars(n: int, order: np.ndarray, same_as_next: np.ndarray, char_cumsum: np.ndarray) -> int:
    """Characters covered by the occurrences of the most frequent n-gram (overlaps counted once).

    `order` lists n-gram positions grouped by n-gram, each group in text order. Among n-grams tied for the
    highest count, the one with the most characters wins, then the one that occurs first. When every n-gram
    occurs once nothing repeats, and the answer is 0 (Dolma reports the first n-gram's share instead).
    """
    if not same_as_next.any():
        return 0
    window_chars = char_cumsum[n:] - char_cumsum[:-n]
    run_starts, run_lengths = run_starts_and_lengths(same_as_next)
    top = run_lengths.max()
    candidates = run_starts[run_lengths == top]
    first_positions = order[candidates]
    chars = window_chars[first_positions]
    best = np.lexsort((first_positions, -chars))[0]
    return _covered_chars(order[candidates[best] : candidates[best] + top], n, char_cumsum)


def _token_measures(text: str, n_words: int, required: frozenset[str]) -> tuple[float, int]:
    """(fraction of words with a letter, number of different stop words present).

    Both look at lowercased tokens (letters stay letters in lowercase) and only the non-alphabetic distinct
    tokens need a closer look, found by C-level filters rather than a Python loop over every word. Stop
    words match case-insensitively after stripping punctuation from the token's edges ("The", "that,").
    """
    lowered = text.lower().split()
    distinct = set(lowered)
    non_alpha = list(filterfalse(str.isalpha, distinct))
    letterless = {t for t in non_alpha if not any(map(str.isalpha, t))}
    with_letter = n_words - sum(map(letterless.__contains__, lowered)) if letterless else n_words
    present = required & distinct
    if len(present) < len(required):
        present |= required.intersection(map(str.strip, non_alpha, repeat(_EDGE_PUNCTUATION)))
    return (with_letter / n_words if n_words else 0.0), len(present)


def gopher_measures(text: str, config: GopherConfig) -> dict[str, float]:
    """Every Gopher measure of `text`, keyed by attribute name (see MEASURES); an empty text gives zeros."""
    words = text.split()
    n_words = len(words)
    word_chars = sum(map(len, words))
    lines = [s for s in (line.strip() for line in text.split("\n")) if s]
    paragraphs = [s for s in (p.strip() for p in _PARAGRAPH_BREAK.split(text)) if s]
    dup_lines, dup_line_chars = _duplicate_fractions(lines)
    dup_paragraphs, dup_paragraph_chars = _duplicate_fractions(paragraphs)
    n_lines = max(len(lines), 1)
    ellipses = text.count("...") + text.count("…")
    alpha_fraction, stop_words = _token_measures(
        text, n_words, frozenset(w.lower() for w in config.required_words)
    )
    measures = {
        "word_count": float(n_words),
        "mean_word_length": word_chars / n_words if n_words else 0.0,
        "symbol_to_word_ratio": max(text.count("#"), ellipses) / n_words if n_words else 0.0,
        "fraction_of_lines_starting_with_bullet": sum(s.startswith(config.bullets) for s in lines) / n_lines,
        "fraction_of_lines_ending_with_ellipsis": sum(s.endswith(("...", "…")) for s in lines) / n_lines,
        "fraction_of_words_with_alpha_character": alpha_fraction,
        "required_word_count": float(stop_words),
        "fraction_of_duplicate_lines": dup_lines,
        "fraction_of_duplicate_paragraphs": dup_paragraphs,
        "fraction_of_characters_in_duplicate_lines": dup_line_chars,
        "fraction_of_characters_in_duplicate_paragraphs": dup_paragraph_chars,
    }
    measures.update(_ngram_measures(words, word_chars))
    return measures


def failed_rules(measures: dict[str, float], config: GopherConfig) -> list[str]:
    """Names of the measures that break the paper's rules under `config` (empty = the document passes).

    Bounds are inclusive: a value exactly at a threshold passes, as the paper removes documents "with more
    than" / "greater than" a maximum and keeps those with "at least" a minimum.
    """
    c = config
    m = measures
    failed = []
    if not c.min_words <= m["word_count"] <= c.max_words:
        failed.append("word_count")
    if not c.min_mean_word_length <= m["mean_word_length"] <= c.max_mean_word_length:
        failed.append("mean_word_length")
    upper = {
        "symbol_to_word_ratio": c.max_symbol_to_word_ratio,
        "fraction_of_lines_starting_with_bullet": c.max_bullet_lines_fraction,
        "fraction_of_lines_ending_with_ellipsis": c.max_ellipsis_lines_fraction,
        "fraction_of_duplicate_lines": c.max_duplicate_lines_fraction,
        "fraction_of_duplicate_paragraphs": c.max_duplicate_paragraphs_fraction,
        "fraction_of_characters_in_duplicate_lines": c.max_duplicate_line_chars_fraction,
        "fraction_of_characters_in_duplicate_paragraphs": c.max_duplicate_paragraph_chars_fraction,
    }
    limits = c.max_top_ngram_chars_fraction + c.max_duplicate_ngram_chars_fraction
    upper.update(zip(_NGRAM_NAMES.values(), limits, strict=True))
    if m["fraction_of_words_with_alpha_character"] < c.min_alpha_words_fraction:
        failed.append("fraction_of_words_with_alpha_character")
    if m["required_word_count"] < c.min_required_words:
        failed.append("required_word_count")
    failed.extend(name for name, limit in upper.items() if m[name] > limit)
    return failed


@register_tagger("gopher_v1", alias="gopher")
class GopherTagger(Tagger):
    """Gopher quality + repetition measures, one document-level span each, and `pass` under the config."""

    Config = GopherConfig
    config: GopherConfig

    def predict(self, doc: Document) -> list[Span]:
        measures = gopher_measures(doc.text, self.config)
        spans = [whole_document(doc, name, value) for name, value in measures.items()]
        spans.append(whole_document(doc, "pass", 0.0 if failed_rules(measures, self.config) else 1.0))
        return spans

    def attribute_names(self) -> list[str]:
        return [*MEASURES, "pass"]
