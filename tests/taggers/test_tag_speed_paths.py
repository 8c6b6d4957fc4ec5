"""The tag speed-ups give the values of the plain computations they replace (issue 13's speed target).

`c4_dolma` skips a phrase's substring search when no token starts with the characters after the phrase's
first space; `ft_lang_id_dolma` predicts each distinct line once per worker (a bounded cache). Both are
checked against the direct computation on texts built to hit the edge cases.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dolma_kit.taggers import language_dolma
from dolma_kit.taggers.base import Span
from dolma_kit.taggers.language_dolma import _line
from dolma_kit.taggers.registry import build_tagger

PHRASES = ["big meanie", "a bc", "x y", "two  spaces", "tab\tsep x", "ça va", "go for it", "über alles"]
WORDS = ["darn", "heck"]
PIECES = ["big", "meanie", "meanies", "a", "bc", "bcd", "xbc", "x", "y", "two", "spaces", "tab", "sep"]
PIECES += ["ça", "va", "vas", "go", "for", "it", "über", "alles", "Über", "ALLES", "darned", "the"]
GAPS = [" ", " ", " ", "  ", "\t", "\n", "\xa0", "", "-"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) + rng.choice(GAPS) for _ in range(rng.randint(0, 12)))


def test_c4_phrase_prefilter_equals_searching_every_phrase(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS + PHRASES) + "\n", encoding="utf-8")
    _, tagger = build_tagger(f"c4_dolma:bad_words_file={words}")
    rng = random.Random(3)
    hits = 0
    for _ in range(3000):
        lowered = _text(rng).lower()
        direct = not frozenset(WORDS).isdisjoint(lowered.split()) or any(p in lowered for p in PHRASES)
        assert tagger._has_naughty_word(lowered) == direct, lowered
        hits += direct
    assert 100 < hits < 2900  # both answers were exercised


def _lines(rng: random.Random, count: int) -> list[bytes]:
    words = ["the", "weather", "is", "fine", "das", "Wetter", "ist", "schön", "日本語", "небо", "x=1;", "-"]
    pool = [_line(" ".join(rng.choices(words, k=rng.randint(0, 8)))) for _ in range(count // 3)]
    return [rng.choice(pool) for _ in range(count)] + [b"long " * 400 + b"\n"] * 3


def test_lid_cache_gives_the_uncached_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    _, tagger = build_tagger("ft_lang_id_dolma:variant=ft_lang_id_en_paragraph_v2")
    rng = random.Random(11)
    first, second = _lines(rng, 600), _lines(rng, 600)
    expected = [tagger._predict_english(first), tagger._predict_english(second)]
    assert tagger._english_scores(first) == expected[0]
    assert len(tagger._en_cache) < len(set(first))  # distinct short lines only: the long one is not kept
    assert tagger._english_scores(second) == expected[1]  # partly answered from the cache
    monkeypatch.setattr(language_dolma, "_CACHE_LINES", 5)
    assert tagger._english_scores(first) == expected[0]  # emptied, then filled again
    assert tagger._english_scores(second) == expected[1]
    assert tagger._english_scores([]) == []


def test_span_stays_immutable_and_keyword_built() -> None:
    span = Span(0, 4, "en", score=0.5)
    assert (span.start, span.end, span.type, span.score) == (0, 4, "en", 0.5)
    assert Span(1, 2, "x").score == 1.0
    with pytest.raises(AttributeError):
        span.score = 1.0  # type: ignore[misc]
