"""Gopher rules: each one at its threshold (passes) and just past it (fails, for that rule alone).

Documents are built from distinct made-up filler words so that only the property under test varies; the
builder pads the text to an exact number of word characters, which makes each fraction land exactly on the
paper's threshold.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dolma_kit.documents import Document
from dolma_kit.taggers.gopher import (
    MEASURES,
    GopherConfig,
    GopherTagger,
    failed_rules,
    gopher_measures,
)
from dolma_kit.taggers.registry import build_tagger

CONFIG = GopherConfig()
ROOT = Path(__file__).resolve().parents[2]


def _letters(i: int, width: int) -> str:
    """`i` written in base 26 with letters, left-padded to `width`."""
    out = []
    for _ in range(width):
        i, r = divmod(i, 26)
        out.append(chr(ord("a") + r))
    return "".join(reversed(out))


class Fillers:
    """Distinct lowercase words that never equal a stop word or a test word (they all start with `q`)."""

    def __init__(self) -> None:
        self.used: Counter[int] = Counter()

    def word(self, length: int = 5) -> str:
        i = self.used[length]
        self.used[length] += 1
        return "q" + _letters(i, length - 1)

    def words(self, n: int, length: int = 5) -> list[str]:
        return [self.word(length) for _ in range(n)]


def build_words(total_chars: int, segments: list[list[str]] = (), gap: int = 2) -> list[str]:
    """`the`, `of`, each segment preceded by `gap` fillers, then fillers up to exactly `total_chars` word chars."""
    fill = Fillers()
    words = ["the", "of"]
    for segment in segments:
        words += fill.words(gap) + segment
    rest = total_chars - sum(map(len, words))
    assert rest == 0 or rest >= 5, "not enough room for the filler"
    while rest >= 10:
        words.append(fill.word())
        rest -= 5
    if rest:
        words.append(fill.word(rest))
    assert sum(map(len, words)) == total_chars
    return words


def as_lines(words: list[str], per_line: int = 10) -> str:
    return "\n".join(" ".join(words[i : i + per_line]) for i in range(0, len(words), per_line))


def measures(text: str, **overrides: object) -> dict[str, float]:
    return gopher_measures(text, GopherConfig(**overrides))


def failures(text: str) -> list[str]:
    return failed_rules(gopher_measures(text, CONFIG), CONFIG)


def test_clean_document_passes_and_emits_every_attribute() -> None:
    text = as_lines(build_words(495))
    spans = GopherTagger().predict(Document(id="1", text=text))
    assert [s.type for s in spans] == [*MEASURES, "pass"]
    assert all((s.start, s.end) == (0, len(text)) for s in spans)
    assert {s.type: s.score for s in spans}["pass"] == 1.0
    assert set(GopherTagger().attribute_names()) == {s.type for s in spans}


# --- quality rules -------------------------------------------------------------------------------


def test_word_count_minimum_edge() -> None:
    fill = Fillers()
    at = ["the", "of", *fill.words(48)]
    assert failures(as_lines(at)) == []
    assert failures(as_lines(at[:-1])) == ["word_count"]


def test_word_count_maximum_edge() -> None:
    words = ["the", "of", *Fillers().words(99_998)]
    assert failures(" ".join(words)) == []
    assert failures(" ".join([*words, "qzzzzz"])) == ["word_count"]


def test_mean_word_length_lower_edge() -> None:
    # 60 words, 180 chars: mean exactly 3.0; one char less: 2.98
    fill = Fillers()
    at = ["the", "of", *fill.words(57, 3), fill.word(4)]
    assert measures(" ".join(at))["mean_word_length"] == 3.0
    assert failures(" ".join(at)) == []
    below = ["the", "of", *fill.words(58, 3)]
    assert failures(" ".join(below)) == ["mean_word_length"]


def test_mean_word_length_upper_edge() -> None:
    fill = Fillers()
    # 60 words, 600 chars: "the" and "of" are 15 chars short of 10 each, one long word makes up for them
    at = ["the", "of", *fill.words(57, 10), fill.word(25)]
    assert measures(" ".join(at))["mean_word_length"] == 10.0
    assert failures(" ".join(at)) == []
    above = ["the", "of", *fill.words(57, 10), fill.word(26)]
    assert failures(" ".join(above)) == ["mean_word_length"]


@pytest.mark.parametrize("symbol", ["#{w}", "{w}...", "{w}…", "…{w}"])
def test_symbol_to_word_ratio_edge(symbol: str) -> None:
    # 100 words; 10 carry the symbol (0.1 passes), 11 do not
    for marked, expected in ((10, []), (11, ["symbol_to_word_ratio"])):
        words = build_words(495)
        assert len(words) == 100
        for i in range(marked):
            words[5 + 7 * i] = symbol.format(w=words[5 + 7 * i])
        text = " ".join(words)  # one line: symbols never end a line
        assert failures(text) == expected, marked


def test_hashes_and_ellipses_are_separate_ratios() -> None:
    # the paper: "greater than 0.1 for either the hash symbol or the ellipsis"; 10 of each in 100 words passes
    words = build_words(495)
    for i in range(10):
        words[3 + 9 * i] = "#" + words[3 + 9 * i]
        words[4 + 9 * i] = words[4 + 9 * i] + "…"
    assert measures(" ".join(words))["symbol_to_word_ratio"] == 0.1
    assert failures(" ".join(words)) == []


def test_bullet_lines_edge() -> None:
    # 20 lines of 6 words; 18 bullet lines = 0.9 passes, 19 fail
    lines = [" ".join(w) for w in _chunks(build_words(600), 6)][:20]
    assert len(lines) == 20
    bullets = ["•", "-", "*", "‣", "●", "  – "]
    for n_bullets, expected in ((18, []), (19, ["fraction_of_lines_starting_with_bullet"])):
        text = "\n".join(
            f"{bullets[i % len(bullets)]} {line}" if i < n_bullets else line for i, line in enumerate(lines)
        )
        assert failures(text) == expected


def test_dialogue_dashes_are_not_bullets() -> None:
    lines = [f"— {' '.join(w)}" for w in _chunks(build_words(600), 6)]
    assert measures("\n".join(lines))["fraction_of_lines_starting_with_bullet"] == 0.0


def test_ellipsis_lines_edge() -> None:
    lines = [" ".join(w) for w in _chunks(build_words(495), 10)]
    assert len(lines) == 10
    for n_ellipsis, expected in ((3, []), (4, ["fraction_of_lines_ending_with_ellipsis"])):
        ends = ["...", "…", " …", "...."]
        text = "\n".join(line + ends[i] if i < n_ellipsis else line for i, line in enumerate(lines))
        assert failures(text) == expected


def test_alpha_words_edge() -> None:
    # 100 words; 20 without a letter = 0.8 passes, 21 fail
    for letterless, expected in ((20, []), (21, ["fraction_of_words_with_alpha_character"])):
        words = build_words(495)
        for i in range(letterless):
            words[4 + 4 * i] = f"{1000 + i}."
        assert failures(as_lines(words)) == expected


def test_letters_of_any_script_count_as_alpha() -> None:
    m = measures("привет 世界 123 ٣٤ café ½ x2 __")
    assert m["fraction_of_words_with_alpha_character"] == 4 / 8


def test_required_words_edge() -> None:
    fill = Fillers()
    two = ["The", *fill.words(48), "of,"]  # case and edge punctuation do not matter
    assert measures(" ".join(two))["required_word_count"] == 2.0
    assert failures(" ".join(two)) == []
    one = ["the", *fill.words(44), "the", "The", "the.", "THE", "the"]  # one stop word, many times
    assert failures(" ".join(one)) == ["required_word_count"]


def test_required_words_are_whole_tokens() -> None:
    assert measures("theory often bethe other tothe")["required_word_count"] == 0.0
    assert measures("“the” (with) have—")["required_word_count"] == 3.0


# --- repetition rules: lines and paragraphs ----------------------------------------------------------


def test_duplicate_lines_edge() -> None:
    # 14 long unique lines + 6 (then 7) short repeated lines: the line fraction moves, the char fraction stays low
    fill = Fillers()
    unique = [" ".join(fill.words(10)) for _ in range(14)]
    unique[0] = "the of " + unique[0]
    a, b, c = fill.word(), fill.word(), fill.word()
    at = [*unique[:5], a, *unique[5:9], a, b, *unique[9:], b, c, c]
    assert measures("\n".join(at))["fraction_of_duplicate_lines"] == 0.3
    assert failures("\n".join(at)) == []
    past = [*at, a]  # 7 duplicate lines of 21
    assert failures("\n".join(past)) == ["fraction_of_duplicate_lines"]


def test_duplicate_line_chars_edge() -> None:
    # 8 unique lines of 59 chars and one 59-letter line twice: 118 / 590 = 0.2
    fill = Fillers()
    unique = [" ".join(["the", "of", *fill.words(8), fill.word(4)])] + [
        " ".join(fill.words(10)) for _ in range(7)
    ]
    assert {len(u) for u in unique} == {59}
    for long_len, expected in ((59, []), (60, ["fraction_of_characters_in_duplicate_lines"])):
        long_word = "x" + _letters(7, long_len - 1)
        text = "\n".join([*unique[:3], long_word, *unique[3:6], long_word, *unique[6:]])
        assert failures(text) == expected


def test_blank_and_whitespace_lines_are_not_duplicates() -> None:
    text = "\n\n \n\t\n".join(" ".join(w) for w in _chunks(build_words(495), 10)) + "\n\n\n"
    m = measures(text)
    assert m["fraction_of_duplicate_lines"] == 0.0
    assert m["fraction_of_duplicate_paragraphs"] == 0.0
    assert failures(text) == []


def test_duplicate_paragraphs_edge() -> None:
    # 7 unique paragraphs of 3 lines, a one-word paragraph 3 times (3/10 = 0.3); a 4th copy fails
    fill = Fillers()
    unique = ["\n".join(" ".join(fill.words(10)) for _ in range(3)) for _ in range(7)]
    unique[0] = "the of " + unique[0]
    dup = fill.word()
    at = [*unique[:2], dup, *unique[2:4], dup, *unique[4:6], dup, unique[6]]
    assert measures("\n\n".join(at))["fraction_of_duplicate_paragraphs"] == 0.3
    assert failures("\n\n".join(at)) == []
    assert failures("\n\n".join([*at, dup])) == ["fraction_of_duplicate_paragraphs"]


def test_duplicate_paragraph_chars_edge() -> None:
    # 8 unique 2-line paragraphs of 59 chars; one 2-line paragraph twice whose second line is indented
    # (indentation counts inside a paragraph, not in a stripped line): 2 * 59 / 590 = 0.2
    fill = Fillers()
    unique = ["\n".join([" ".join(fill.words(5)), " ".join(fill.words(5))]) for _ in range(8)]
    unique[0] = "\n".join(["the of " + " ".join(fill.words(3)) + " qzzz", " ".join(fill.words(5))])
    assert {len(u) for u in unique} == {59}
    for indent, expected in ((40, []), (41, ["fraction_of_characters_in_duplicate_paragraphs"])):
        dup = "xaaaaaaaa\n" + " " * indent + "xbbbbbbbb"
        text = "\n\n".join([*unique[:4], dup, *unique[4:], dup])
        assert failures(text) == expected


def test_crlf_lines_and_paragraphs() -> None:
    words = build_words(495)
    lf = as_lines(words[:50]) + "\n\n" + as_lines(words[50:])
    crlf = lf.replace("\n", "\r\n")
    assert measures(crlf) == measures(lf)
    dup = "same line\r\nother line\nsame line\n"
    assert measures(dup)["fraction_of_duplicate_lines"] == 2 / 3


# --- repetition rules: n-grams -----------------------------------------------------------------------


@pytest.mark.parametrize(("n", "word_lengths"), [(2, (10, 10)), (3, (6, 6, 6)), (4, (4, 4, 4, 4))])
def test_most_common_ngram_edge(n: int, word_lengths: tuple[int, ...]) -> None:
    # 10 copies of an n-gram of 20 / 18 / 16 chars in 1000 word chars = 0.20 / 0.18 / 0.16
    gram = ["x" + _letters(i, length - 1) for i, length in enumerate(word_lengths)]
    name = f"fraction_of_characters_in_most_common_{n}grams"
    at = build_words(1000, [gram] * 10)
    assert measures(as_lines(at))[name] == CONFIG.max_top_ngram_chars_fraction[n - 2]
    assert failures(as_lines(at)) == []
    assert failures(as_lines(build_words(999, [gram] * 10))) == [name]


@pytest.mark.parametrize("n", [5, 6, 7, 8, 9, 10])
def test_duplicate_ngram_edge(n: int) -> None:
    # an n-gram of 4 * (20 - n) chars twice in 800 word chars = (20 - n) / 100, the paper's threshold
    chars = 4 * (20 - n)
    lengths = [chars // n + (1 if i < chars % n else 0) for i in range(n)]
    gram = ["x" + _letters(i, length - 1) for i, length in enumerate(lengths)]
    name = f"fraction_of_characters_in_duplicate_{n}grams"
    at = build_words(800, [gram, gram])
    m = measures(as_lines(at))
    assert m[name] == CONFIG.max_duplicate_ngram_chars_fraction[n - 5]
    assert all(m[f"fraction_of_characters_in_duplicate_{k}grams"] == 0.0 for k in range(n + 1, 11))
    assert failures(as_lines(at)) == []
    assert failures(as_lines(build_words(799, [gram, gram]))) == [name]


def test_overlapping_occurrences_are_counted_once() -> None:
    # "ab ab ab ..." : the 2-gram "ab ab" occurs 9 times overlapping, yet covers the 10 words once
    m = measures(" ".join(["ab"] * 10))
    assert m["fraction_of_characters_in_most_common_2grams"] == 1.0
    assert m["fraction_of_characters_in_duplicate_5grams"] == 1.0
    # a 6-word run repeated back to back: 5-grams overlap across the copies but cover each word once
    run = ["aa", "bbb", "cccc", "dd", "eee", "ffff"]
    m = measures(" ".join([*run, *run, "zzzzzzzzzzzz"]))
    assert m["fraction_of_characters_in_duplicate_5grams"] == 36 / 48


def test_top_ngram_ties_prefer_more_characters() -> None:
    # "aa bb" and "cccc dddd" both occur twice; the longer one is the "most common" in characters
    text = "aa bb x1 cccc dddd x2 aa bb x3 cccc dddd"
    total = sum(len(w) for w in text.split())
    assert measures(text)["fraction_of_characters_in_most_common_2grams"] == 16 / total


def _reference_ngram_measures(words: list[str]) -> dict[str, float]:
    """The definitions written the slow, obvious way, to check the vectorised code."""
    total = sum(map(len, words))
    out = {}
    for n in range(2, 11):
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        counts = Counter(grams)
        if n <= 4:
            name = f"fraction_of_characters_in_most_common_{n}grams"
            if not grams:
                out[name] = 0.0
                continue
            top = max(counts.values())
            if top == 1:
                out[name] = 0.0  # nothing repeats
                continue
            # the most characters, then the earliest first occurrence
            best = min(
                (g for g in counts if counts[g] == top), key=lambda g: (-sum(map(len, g)), grams.index(g))
            )
            starts = [i for i, g in enumerate(grams) if g == best]
        else:
            name = f"fraction_of_characters_in_duplicate_{n}grams"
            starts = [i for i, g in enumerate(grams) if counts[g] > 1]
        covered = {j for i in starts for j in range(i, i + n)}
        out[name] = sum(len(words[j]) for j in covered) / total if total else 0.0
    return out


def test_vectorised_ngrams_match_reference() -> None:
    rng = random.Random(7)
    vocab = ["a", "bb", "ccc", "dddd", "eeeee", "ff", "g"]
    for _ in range(300):
        words = [rng.choice(vocab[: rng.randint(2, 7)]) for _ in range(rng.randint(0, 40))]
        got = measures(" ".join(words))
        for name, value in _reference_ngram_measures(words).items():
            assert got[name] == pytest.approx(value), (name, words)


_SEED_SCRIPT = """
import random, sys
from dolma_kit.taggers.gopher import GopherConfig, gopher_measures
rng = random.Random(3)
docs = [" ".join(rng.choice(["a", "bb", "ccc", "dd"]) for _ in range(30)) for _ in range(40)]
print(repr([gopher_measures(d, GopherConfig()) for d in docs]))
"""


def test_results_do_not_depend_on_the_hash_seed() -> None:
    # word hashes come from Python's randomised str hash; tie-breaking must not follow hash order
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", _SEED_SCRIPT],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1


# --- edge cases --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\n\n", " \t\r\n \u3000 "])
def test_empty_and_whitespace_documents(text: str) -> None:
    spans = GopherTagger().predict(Document(id="e", text=text))
    scores = {s.type: s.score for s in spans}
    assert all(scores[name] == 0.0 for name in MEASURES)
    assert scores["pass"] == 0.0
    assert all((s.start, s.end) == (0, len(text)) for s in spans)


def test_single_very_long_line() -> None:
    no_spaces = "x" * 300_000
    assert failures(no_spaces) == ["word_count", "mean_word_length", "required_word_count"]
    long_line = " ".join(build_words(250_000))  # ~50,000 words, no line breaks
    assert failures(long_line) == []


def test_languages_without_spaces_or_stop_words() -> None:
    # whitespace words: a Chinese paragraph is one long "word" (a known limit of whitespace tokenisation)
    zh = "这是一个没有空格的中文句子，我们用它来测试分词。" * 20
    assert measures(zh)["word_count"] == 1.0
    assert failures(zh) == ["word_count", "mean_word_length", "required_word_count"]
    ru = " ".join(f"слово{_letters(i, 3)}" for i in range(80))
    m = measures(ru)
    assert m["fraction_of_words_with_alpha_character"] == 1.0
    assert failures(ru) == ["required_word_count"]


def test_registry_spec_sets_thresholds() -> None:
    prefix, tagger = build_tagger("gopher:min_words=3,max_top_ngram_chars_fraction=0.5|0.4|0.3")
    assert prefix == "gopher"
    assert isinstance(tagger, GopherTagger)
    assert tagger.config.min_words == 3
    assert tagger.config.max_top_ngram_chars_fraction == (0.5, 0.4, 0.3)
    with pytest.raises(ValueError, match="3 values"):
        GopherConfig(max_top_ngram_chars_fraction=(0.1,))


def _chunks(words: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(words), size):
        yield words[i : i + size]
