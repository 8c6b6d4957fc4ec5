"""Gopher quality and repetition rules (Rae et al. 2021, MassiveText, appendix A.1.1 and table A1).

Each measure is a document-level attribute, so a mix recipe can filter on any one of them with its own
threshold; `pass` (1.0/0.0) applies the paper's thresholds from the config. The paper's rules, not Dolma
1.2.1's approximation of them, are what this computes; docs/quality-taggers.md lists every difference.

Words are whitespace-separated tokens (`str.split()`), as Dolma does: fast, language-neutral and
reproducible without a tokenizer file. The repetition measures over word n-grams are vectorised
(`dolma_kit.taggers.ngrams`): each word gets a 64-bit hash, n-gram hashes are rolled from them, and
duplicates are found by sorting, so a 2 KB document costs tens of numpy calls instead of thousands of tuples.
A long text is read a chunk at a time (`dolma_kit.taggers.chunks`) and its words are kept only as hashes
and lengths: a 50-million-character document costs about 25 bytes a word, not a list of its words.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import filterfalse, repeat

import numpy as np

from dolma_kit.documents import Document
from dolma_kit.taggers import ngrams
from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.chunks import NEWLINE, WHITESPACE, chunks, split_chunks
from dolma_kit.taggers.ngrams import (
    DUPLICATE_NGRAM_SIZES,
    TOP_NGRAM_SIZES,
    WordArrays,
    covered_chars,
    flagged_union_chars,
    ngram_groups,
    repeated_mask,
    run_starts_and_lengths,
)
from dolma_kit.taggers.registry import register_tagger

#: characters stripped from both ends of a token before matching it against the stop words
_EDGE_PUNCTUATION = string.punctuation + "“”‘’«»„‚‹›…–—¡¿"
#: paragraphs are separated by one or more blank (or whitespace-only) lines
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


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


def _duplicate_fractions(chunks_of_items: Iterable[list[str]]) -> tuple[float, float]:
    """(fraction of items, fraction of their characters) that belong to a text occurring more than once.

    Every occurrence of a repeated text counts, the first included: two equal lines out of ten are 0.2.
    The items come a chunk at a time, so only the distinct ones are held.
    """
    counts: Counter[str] = Counter()
    n_items = total_chars = 0
    for items in chunks_of_items:
        counts.update(items)
        n_items += len(items)
        total_chars += sum(map(len, items))
    dup_items, dup_chars = duplicate_counts(counts, n_items)
    if not dup_items:
        return 0.0, 0.0
    return dup_items / n_items, dup_chars / total_chars if total_chars else 0.0


def duplicate_counts(counts: Counter[str], n_items: int) -> tuple[int, int]:
    """(items, characters) belonging to a text that occurs more than once, every occurrence counted.

    `counts` counts each distinct item of `n_items` items. Shared with the Dolma-compatible tagger, which
    divides the same counts by other totals.
    """
    if len(counts) == n_items:
        return 0, 0
    dup_items = dup_chars = 0
    for item, count in counts.items():
        if count > 1:
            dup_items += count
            dup_chars += count * len(item)
    return dup_items, dup_chars


def _ngram_measures(words: WordArrays, word_chars: int) -> dict[str, float]:
    """The nine repetition measures over word n-grams, n = 2 … 10, as fractions of all word characters.

    Equal n-grams come from `ngram_groups` (hashed, sorted in blocks, a false match can only raise a
    repetition measure slightly). Ties are broken by position, never by hash order, so results do not
    depend on the hash seed.
    """
    out = dict.fromkeys(_NGRAM_NAMES.values(), 0.0)
    n_words = len(words.hashes)
    if n_words < 2 or word_chars == 0:
        return out
    char_cumsum = words.char_cumsum
    for n, blocks in ngram_groups(words.hashes):
        if n in TOP_NGRAM_SIZES:
            covered = _top_ngram_chars(n, blocks, char_cumsum)
        else:
            covered = _repeated_chars(n, blocks, n_words - n + 1, char_cumsum)
            if covered is None:
                break  # no repeated n-gram means no repeated longer n-gram either: the rest stay 0.0
        out[_NGRAM_NAMES[n]] = covered / word_chars
    return out


def _repeated_chars(
    n: int, blocks: Iterator[tuple[np.ndarray, np.ndarray]], m: int, char_cumsum: np.ndarray
) -> int | None:
    """Characters covered by the n-grams that occur more than once (None: no n-gram does).

    One block's starts are sorted and measured directly; with several blocks, the starts are flags over the
    m positions, so no list of all the starts is held.
    """
    starts = flags = None
    for order, same_as_next in blocks:
        if not same_as_next.any():
            continue
        if starts is None and flags is None:
            starts = order[repeated_mask(same_as_next)]
            continue
        if flags is None:
            flags = np.zeros(m, dtype=bool)
            flags[starts] = True
            starts = None
        flags[order[repeated_mask(same_as_next)]] = True
    if flags is not None:
        return flagged_union_chars(flags, n, char_cumsum)
    return None if starts is None else covered_chars(np.sort(starts), n, char_cumsum)


def _top_ngram_chars(n: int, blocks: Iterator[tuple[np.ndarray, np.ndarray]], char_cumsum: np.ndarray) -> int:
    """Characters covered by the occurrences of the most frequent n-gram (overlaps counted once).

    Among n-grams tied for the highest count, the one with the most characters wins, then the one that
    occurs first: each block proposes its best, ranked the same way. When every n-gram occurs once nothing
    repeats, and the answer is 0 (Dolma reports the first n-gram's share instead).
    """
    best: tuple[int, int, int] | None = None  # (-count, -characters, first position): the smallest wins
    best_starts = None
    for order, same_as_next in blocks:
        if not same_as_next.any():
            continue
        run_starts, run_lengths = run_starts_and_lengths(same_as_next)
        top = run_lengths.max()
        candidates = run_starts[run_lengths == top]
        first_positions = order[candidates]
        if len(char_cumsum) <= ngrams.BLOCK_NGRAMS:  # all windows at once is fastest for a short text
            chars = (char_cumsum[n:] - char_cumsum[:-n])[first_positions]
        else:
            chars = char_cumsum[first_positions + n] - char_cumsum[first_positions]
        pick = np.lexsort((first_positions, -chars))[0]
        rank = (-int(top), -int(chars[pick]), int(first_positions[pick]))
        if best is None or rank < best:
            best = rank
            best_starts = order[candidates[pick] : candidates[pick] + top]  # a view: blocks are fresh arrays
    if best_starts is None:
        return 0
    return covered_chars(best_starts, n, char_cumsum)


@dataclass
class TokenFacts:
    """Words without a letter, and the stop words present, counted over a text's word chunks.

    Both look at lowercased tokens (letters stay letters in lowercase) and only the non-alphabetic distinct
    tokens need a closer look, found by C-level filters rather than a Python loop over every word. Stop
    words match case-insensitively after stripping punctuation from the token's edges ("The", "that,").
    """

    required: frozenset[str] = frozenset()
    """The stop words, lowercase (none: count letterless words only)."""
    present: set[str] = field(default_factory=set)
    """The stop words seen so far."""
    letterless: int = 0
    """Words seen so far that have no letter."""

    def words(self, text: str) -> Iterator[list[str]]:
        """The words of `text` a chunk at a time (for `WordArrays.collect`), counted as they pass.

        A chunk cut after whitespace has the same words, and the same lowercase, as that part of the text.
        """
        for _, chunk in chunks(text, WHITESPACE):
            words = chunk.split()
            self.add(chunk, words)
            yield words

    def add(self, chunk: str, words: list[str]) -> None:
        """Count one chunk (`words` is `chunk.split()`)."""
        lowered = chunk.lower().split()
        distinct = set(lowered)
        non_alpha = list(filterfalse(str.isalpha, distinct))
        letterless = {t for t in non_alpha if not any(map(str.isalpha, t))}
        if letterless:
            self.letterless += sum(map(letterless.__contains__, lowered))
        required = self.required
        if len(self.present) < len(required):
            self.present |= required & distinct
            if len(self.present) < len(required):
                self.present |= required.intersection(map(str.strip, non_alpha, repeat(_EDGE_PUNCTUATION)))


def _line_measures(text: str, bullets: tuple[str, ...]) -> dict[str, float]:
    """The four line measures over the stripped non-blank `\\n` lines, read a chunk of lines at a time."""
    n_lines = bullet_lines = ellipsis_lines = 0

    def stripped_lines() -> Iterator[list[str]]:
        nonlocal n_lines, bullet_lines, ellipsis_lines
        for pieces in split_chunks(text, NEWLINE):
            lines = [s for s in map(str.strip, pieces) if s]
            n_lines += len(lines)
            bullet_lines += sum(s.startswith(bullets) for s in lines)
            ellipsis_lines += sum(s.endswith(("...", "…")) for s in lines)
            yield lines

    dup_lines, dup_line_chars = _duplicate_fractions(stripped_lines())
    n_lines = max(n_lines, 1)
    return {
        "fraction_of_lines_starting_with_bullet": bullet_lines / n_lines,
        "fraction_of_lines_ending_with_ellipsis": ellipsis_lines / n_lines,
        "fraction_of_duplicate_lines": dup_lines,
        "fraction_of_characters_in_duplicate_lines": dup_line_chars,
    }


def gopher_measures(text: str, config: GopherConfig) -> dict[str, float]:
    """Every Gopher measure of `text`, keyed by attribute name (see MEASURES); an empty text gives zeros.

    A long text is read a chunk at a time (`chunks`), and its words only as hashes and lengths, so memory
    stays a small multiple of the number of words rather than of their strings.
    """
    lines = _line_measures(text, config.bullets)
    dup_paragraphs, dup_paragraph_chars = _duplicate_fractions(
        [s for s in map(str.strip, pieces) if s] for pieces in split_chunks(text, _PARAGRAPH_BREAK)
    )
    tokens = TokenFacts(required=frozenset(w.lower() for w in config.required_words))
    words = WordArrays.collect(tokens.words(text), max_chars=len(text))
    n_words = len(words.hashes)
    word_chars = int(words.char_cumsum[-1])
    ellipses = text.count("...") + text.count("…")
    measures = {
        "word_count": float(n_words),
        "mean_word_length": word_chars / n_words if n_words else 0.0,
        "symbol_to_word_ratio": max(text.count("#"), ellipses) / n_words if n_words else 0.0,
        "fraction_of_lines_starting_with_bullet": lines["fraction_of_lines_starting_with_bullet"],
        "fraction_of_lines_ending_with_ellipsis": lines["fraction_of_lines_ending_with_ellipsis"],
        "fraction_of_words_with_alpha_character": (n_words - tokens.letterless) / n_words if n_words else 0.0,
        "required_word_count": float(len(tokens.present)),
        "fraction_of_duplicate_lines": lines["fraction_of_duplicate_lines"],
        "fraction_of_duplicate_paragraphs": dup_paragraphs,
        "fraction_of_characters_in_duplicate_lines": lines["fraction_of_characters_in_duplicate_lines"],
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
