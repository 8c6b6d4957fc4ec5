"""`gopher_v1` and `gopher_dolma_v1` give exactly the values of their definitions, however a text is cut.

The taggers read a long text a chunk at a time and group n-grams in hashed blocks (to bound memory); the
references below read it whole, with lists of words and tuples of n-grams, written for clarity. Chunk and
block sizes are shrunk so that short random texts are cut everywhere, and one text is longer than a real
chunk. Values are compared with `==`: every ratio is the same two integers divided, so equal means equal.
"""

from __future__ import annotations

import random
import re
import statistics
import string
from collections import Counter

import pytest

from dolma_kit.taggers import chunks, ngrams
from dolma_kit.taggers.gopher import GopherConfig, gopher_measures
from dolma_kit.taggers.gopher_dolma import REQUIRED_WORDS, SCALAR_MEASURES, gopher_dolma_measures
from tests.taggers.random_texts import random_text, random_texts

#: stripped from a token's edges before it is matched against the stop words (docs/quality-taggers.md)
EDGE_PUNCTUATION = string.punctuation + "“”‘’«»„‚‹›…–—¡¿"
#: (characters per chunk, n-grams per block): the real sizes, then ones that cut short texts everywhere
SIZES = [(chunks.CHUNK_CHARS, ngrams.BLOCK_NGRAMS), (64, 16), (8, 4)]


@pytest.fixture(params=SIZES, ids=lambda s: f"chunk{s[0]}-block{s[1]}")
def sizes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    monkeypatch.setattr(chunks, "CHUNK_CHARS", request.param[0])
    monkeypatch.setattr(ngrams, "BLOCK_NGRAMS", request.param[1])
    return request.param


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(items, characters) of the texts that occur more than once, every occurrence counted."""
    counts = Counter(items)
    repeated = [item for item in items if counts[item] > 1]
    return len(repeated), sum(map(len, repeated))


def _grams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def _union_chars(words: list[str], starts: list[int], n: int) -> int:
    return sum(len(words[j]) for j in {j for i in starts for j in range(i, i + n)})


def reference_gopher(text: str, config: GopherConfig) -> dict[str, float]:
    words = text.split()
    n_words = len(words)
    word_chars = sum(map(len, words))
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    lowered = [w.lower() for w in words]
    required = {w.lower() for w in config.required_words}
    out = {
        "word_count": float(n_words),
        "mean_word_length": word_chars / n_words if n_words else 0.0,
        "symbol_to_word_ratio": (
            max(text.count("#"), text.count("...") + text.count("…")) / n_words if n_words else 0.0
        ),
        "fraction_of_lines_starting_with_bullet": sum(s.startswith(config.bullets) for s in lines)
        / max(len(lines), 1),
        "fraction_of_lines_ending_with_ellipsis": sum(s.endswith(("...", "…")) for s in lines)
        / max(len(lines), 1),
        "fraction_of_words_with_alpha_character": (
            sum(any(c.isalpha() for c in w) for w in words) / n_words if n_words else 0.0
        ),
        "required_word_count": float(
            len(required & (set(lowered) | {w.strip(EDGE_PUNCTUATION) for w in lowered}))
        ),
    }
    for name, items in (("lines", lines), ("paragraphs", paragraphs)):
        count, chars = _duplicates(items)
        total = sum(map(len, items))
        out[f"fraction_of_duplicate_{name}"] = count / len(items) if count else 0.0
        out[f"fraction_of_characters_in_duplicate_{name}"] = chars / total if count and total else 0.0
    for n in range(2, 11):
        grams = _grams(words, n)
        counts = Counter(grams)
        if n <= 4:
            top = max(counts.values(), default=0)
            starts = []
            if top > 1:  # the most characters, then the earliest first occurrence
                best = min(
                    (g for g in counts if counts[g] == top), key=lambda g: (-len("".join(g)), grams.index(g))
                )
                starts = [i for i, g in enumerate(grams) if g == best]
            name = f"fraction_of_characters_in_most_common_{n}grams"
        else:
            starts = [i for i, g in enumerate(grams) if counts[g] > 1]
            name = f"fraction_of_characters_in_duplicate_{n}grams"
        out[name] = _union_chars(words, starts, n) / word_chars if word_chars and n_words >= 2 else 0.0
    return out


def reference_gopher_dolma(text: str, collapse_blank_lines: bool) -> dict[str, float]:
    if not text:
        return dict.fromkeys(SCALAR_MEASURES, 0.0)
    words = text.split()
    n_words = len(words)
    word_chars = sum(map(len, words))
    lines = re.split(r"\n+", text) if collapse_blank_lines else text.split("\n")
    dup_lines, dup_chars = _duplicates(lines)
    out = {
        "character_count": float(len(text)),
        "word_count": float(n_words),
        "median_word_length": float(statistics.median(map(len, words))) if words else 0.0,
        "symbol_to_word_ratio": sum("#" in w or "…" in w for w in words) / max(n_words, 1),
        "fraction_of_words_with_alpha_character": (
            sum(any(c.isalpha() for c in w) for w in words) / n_words if n_words else 0.0
        ),
        "required_word_count": float(sum(w in REQUIRED_WORDS for w in words)),
        "fraction_of_lines_starting_with_bullet_point": sum(s.startswith(("*", "-")) for s in lines)
        / len(lines),
        "fraction_of_lines_ending_with_ellipsis": sum(s.endswith("…") for s in lines) / len(lines),
        "fraction_of_duplicate_lines": dup_lines / len(lines),
        "fraction_of_characters_in_duplicate_lines": dup_chars / max(word_chars, 1),
    }
    for n in range(2, min(n_words, 10) + 1) if n_words >= 2 else ():
        grams = _grams(words, n)
        counts = Counter(grams)  # insertion order: a tie goes to the n-gram seen first
        if n <= 4:
            gram, top = max(counts.items(), key=lambda kv: kv[1])
            out[f"fraction_of_characters_in_most_common_{n}grams"] = (
                top * len("".join(gram)) / max(word_chars, 1)
            )
        else:
            repeated = sum(c * len("".join(g)) for g, c in counts.items() if c > 1)
            total = sum(c * len("".join(g)) for g, c in counts.items())
            out[f"fraction_of_characters_in_duplicate_{n}grams"] = repeated / max(total, 1)
    return out


def test_gopher_equals_its_reference(sizes: tuple[int, int]) -> None:
    config = GopherConfig()
    for text in random_texts(seed=sizes[0] + sizes[1], count=80, max_size=3000):
        assert gopher_measures(text, config) == reference_gopher(text, config), repr(text[:200])


def test_gopher_dolma_equals_its_reference(sizes: tuple[int, int]) -> None:
    for text in random_texts(seed=sizes[0] * sizes[1], count=80, max_size=3000):
        for collapse in (False, True):
            assert gopher_dolma_measures(text, collapse) == reference_gopher_dolma(text, collapse), repr(
                text[:200]
            )


def test_a_text_of_several_real_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # chunks of the real size; blocks of 16K n-grams, so that a 100,000-word text has several
    monkeypatch.setattr(ngrams, "BLOCK_NGRAMS", 1 << 14)
    rng = random.Random(11)
    text = random_text(rng, 2 * chunks.CHUNK_CHARS) + " ".join(["ha"] * 20_000) + random_text(rng, 50_000)
    assert len(text) > 2 * chunks.CHUNK_CHARS and len(text.split()) > 8 * ngrams.BLOCK_NGRAMS
    config = GopherConfig(required_words=("the", "ipsum", "ha"))
    assert gopher_measures(text, config) == reference_gopher(text, config)
    assert gopher_dolma_measures(text) == reference_gopher_dolma(text, False)
