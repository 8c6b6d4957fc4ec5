"""Normalisation before hashing: what must compare equal, and what must not."""

from __future__ import annotations

import pytest

from dolma_kit.dedup.normalize import normalize_text, normalize_url


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hello, World!", "hello world"),
        ("It costs 12 euros.", "It costs 99 euros"),
        ("ﬁne  day\n\n", "fine day"),  # NFKC ligature, whitespace
        ("École", "école"),
        ("STRASSE", "straße"),  # case folding
        ("٣ apples", "3 apples"),  # any decimal digit
    ],
)
def test_equal_after_normalisation(a: str, b: str) -> None:
    assert normalize_text(a) == normalize_text(b)


@pytest.mark.parametrize(("a", "b"), [("cat", "cot"), ("a b", "ab"), ("Köln", "Koln")])
def test_different_after_normalisation(a: str, b: str) -> None:
    assert normalize_text(a) != normalize_text(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://www.example.com/a/b/", "http://example.com/a/b"),
        ("http://example.com:80/x#top", "https://EXAMPLE.com/x"),
        ("http://example.com/p?b=2&a=1&utm_source=news", "http://example.com/p?a=1&b=2"),
        ("http://example.com//a///b", "http://example.com/a/b"),
    ],
)
def test_same_page_urls(a: str, b: str) -> None:
    assert normalize_url(a) == normalize_url(b)


def test_different_pages_and_non_urls() -> None:
    assert normalize_url("http://example.com/a?x=1") != normalize_url("http://example.com/a?x=2")
    assert normalize_url("http://example.com:8080/") != normalize_url("http://example.com/")
    assert normalize_url("  not a url ") == "not a url"


def test_long_texts_normalise_in_pieces_to_the_same_result(monkeypatch) -> None:
    """Pieces cut after a space or newline give the whole text's result, whatever the characters around the
    cut (combining marks, Hangul jamo, ligatures, other whitespace, punctuation): NFKC never composes across
    a space or newline."""
    import random
    import unicodedata

    from dolma_kit.dedup import normalize

    def whole(text: str) -> str:
        folded = unicodedata.normalize("NFKC", text).casefold()
        return " ".join(folded.translate(normalize.normalization_table()).split())

    monkeypatch.setattr(normalize, "CHUNK_CHARS", 7)
    rng = random.Random(3)
    chars = " \t\n\r\x0b\x0c\x1c\x85\xa0\u2000\u3000abcXYZ.,!?-é\u00ad\u0301\u0308\uac00\u1161\u11a8\u00b4\ufb01ẞΣς5"
    for _ in range(5000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 60)))
        assert normalize.normalize_text(text) == whole(text), repr(text)


def test_text_digest_hashes_pieces_without_holding_the_normalised_text(monkeypatch) -> None:
    """Exact text dedup hashes a long text piece by piece: the same digest as hashing the whole normalised
    text, with far less memory at the peak (issue 14: one 50 M-character document)."""
    import random
    import tracemalloc

    from dolma_kit.dedup import exact_passes, normalize

    monkeypatch.setattr(normalize, "CHUNK_CHARS", 7)
    rng = random.Random(5)
    for _ in range(500):
        text = "".join(rng.choice(" \n\tab.É5ß") for _ in range(rng.randint(0, 50)))
        assert exact_passes.text_digest(text) == exact_passes._digest(normalize.normalize_text(text)), text
    monkeypatch.setattr(normalize, "CHUNK_CHARS", 1 << 14)
    text = "Lorem ipsum dolor, sit amet 42.\n" * 64_000  # 2 M characters
    tracemalloc.start()
    exact_passes.text_digest(text)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < len(text) // 4, peak  # the normalised text alone would be ~1.5 MB, its bytes as much


def test_the_table_scans_every_plane_that_holds_punctuation_symbols_or_digits() -> None:
    """`normalization_table` scans planes 0–3 and 14 only: none of the planes it leaves out holds a P*, S* or
    Nd code point in this Python's Unicode database (else the table, and so every dedup key, would miss it)."""
    import sys
    import unicodedata

    from dolma_kit.dedup.normalize import TABLE_PLANES, normalization_table

    bounds = [0, *(b for plane in sorted(TABLE_PLANES) for b in plane), sys.maxunicode + 1]
    left_out = [range(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]  # the gaps between planes
    missed = [
        cp
        for gap in left_out
        for cp in gap
        if unicodedata.category(chr(cp))[0] in "PS" or unicodedata.category(chr(cp)) == "Nd"
    ]
    assert sum(len(gap) for gap in left_out) == sys.maxunicode + 1 - sum(b - a for a, b in TABLE_PLANES)
    assert missed == []
    table = normalization_table()
    assert table[ord("!")] is None and table[ord("٣")] == "0" and table[0x1F600] is None  # an emoji: So
