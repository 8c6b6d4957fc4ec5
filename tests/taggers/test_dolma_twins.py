"""`c4_dolma_v1` and `pii_dolma_v1`: Dolma 1.2.1's `c4_v2` and `pii_regex_with_counts_fast_v2`, value for value.

The expected attributes below are what Dolma 1.2.1 wrote for these texts (each text isolates a quirk named
in the module docstrings); bench/dolma_taggers.py checks the same on ~1,450 real documents. The PII twin
finds matches on the whole text and re-matches only candidate paragraphs, so a property test compares it
with a plain per-paragraph matcher on random texts.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from dolma_kit.documents import Document
from dolma_kit.taggers import pii_dolma
from dolma_kit.taggers.base import Tagger
from dolma_kit.taggers.registry import build_tagger


def attributes(tagger: Tagger, text: str) -> dict[str, list[list[float]]]:
    """Spans grouped by type as the stage writes them (scores rounded to 5 decimals, as Dolma writes)."""
    out: dict[str, list[list[float]]] = {}
    for span in tagger.predict(Document(id="d", text=text)):
        out.setdefault(span.type, []).append([span.start, span.end, round(span.score, 5)])
    return out


C4_CASES = [
    (
        "",
        {
            "lines_with_no_ending_punctuation": [[0, 0, 1.0]],
            "lines_with_too_few_words": [[0, 0, 1.0]],
            "line_count": [[0, 0, 1.0]],
        },
    ),
    (
        # the last line's `İ` lowercases to two characters: spans are offsets into the lowered text
        "Hello world.\nshort\n\n  Three words here!  \nİstanbul is a city in Turkey.",
        {
            "lines_with_too_few_words": [[0, 13, 1.0], [13, 19, 1.0], [19, 20, 1.0]],
            "lines_with_no_ending_punctuation": [[13, 19, 1.0], [19, 20, 1.0]],
            "line_count": [[0, 71, 5.0]],
        },
    ),
    (
        "contact: alice@host.org, thanks\n555-123-4567 at line start\n call 555.123.4567\n",
        {
            "lines_with_no_ending_punctuation": [[0, 32, 1.0], [32, 59, 1.0], [59, 78, 1.0], [78, 78, 1.0]],
            "lines_with_too_few_words": [[59, 78, 1.0], [78, 78, 1.0]],
            "line_count": [[0, 78, 4.0]],
        },
    ),
    (
        "JavaScript is required { here }. Lorem Ipsum dolor.",
        {
            "has_curly_brace": [[0, 51, 1.0]],
            "has_lorem_ipsum": [[0, 51, 1.0]],
            "has_javascript": [[0, 51, 1.0]],
            "line_count": [[0, 51, 1.0]],
        },
    ),
]


@pytest.mark.parametrize(("text", "expected"), C4_CASES)
def test_c4_dolma_values_are_dolmas(text: str, expected: dict[str, list[list[float]]]) -> None:
    assert attributes(build_tagger("c4_dolma")[1], text) == expected


def test_c4_dolma_naughty_words_read_as_dolma_reads_its_list(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("darn\nGosh\nbig meanie\n", encoding="utf-8")
    _, tagger = build_tagger(f"c4_dolma:bad_words_file={words}")
    flagged = "has_naughty_word"
    assert flagged in attributes(tagger, "Oh DARN it.")  # the text is lowercased, the token matched whole
    assert flagged not in attributes(tagger, "darned it.")  # not a whole token
    assert flagged not in attributes(tagger, "Gosh, it is.")  # entries are not lowercased: `gosh` ≠ `Gosh`
    assert flagged in attributes(tagger, "what a BIG MEANIEs day")  # a phrase is a substring
    assert flagged not in attributes(build_tagger("c4_dolma")[1], "Oh darn it.")  # no list, no check


PII_CASES = [
    ("", {"doc_count": [[0, 0, 0.0]], "doc_frac": [[0, 0, -1.0]]}),
    (
        # the email span keeps the leading space and the newline; the phone span its leading space
        "Mail me at bob@example.com\nor (555) 123-4567 now. Server 10.0.0.1 and v1.2.3.4 ok",
        {
            "EMAIL_ADDRESS": [[10, 27, 1.0]],
            "PHONE_NUMBER": [[29, 44, 1.0]],
            "IP_ADDRESS": [[57, 65, 1.0], [71, 78, 1.0]],
            "doc_count": [[0, 81, 4.0]],
            "doc_frac": [[0, 81, 1.58025]],
        },
    ),
    (
        # a phone number at the start of a paragraph has no whitespace before it: not found
        "contact: alice@host.org, thanks\n555-123-4567 at line start\n call 555.123.4567\n",
        {
            "EMAIL_ADDRESS": [[7, 25, 1.0]],
            "PHONE_NUMBER": [[64, 77, 1.0]],
            "doc_count": [[0, 78, 2.0]],
            "doc_frac": [[0, 78, 1.39744]],
        },
    ),
    # no dot in the domain, a `(` local part, an address at the very end: none is an email
    ("x@nodot\n( @a.b\nend a@b.cc", {"doc_count": [[0, 25, 0.0]], "doc_frac": [[0, 25, 1.0]]}),
    (
        "tel:\n 5551234567\nfoo",
        {"PHONE_NUMBER": [[5, 16, 1.0]], "doc_count": [[0, 20, 1.0]], "doc_frac": [[0, 20, 1.55]]},
    ),
]


@pytest.mark.parametrize(("text", "expected"), PII_CASES)
def test_pii_dolma_values_are_dolmas(text: str, expected: dict[str, list[list[float]]]) -> None:
    assert attributes(build_tagger("pii_dolma")[1], text) == expected


def test_pii_dolma_skips_documents_with_many_question_marks() -> None:
    text = "?" * 10_001 + " bob@example.com \n"
    assert attributes(build_tagger("pii_dolma")[1], text) == {
        "doc_count": [[0, len(text), 0.0]],
        "doc_frac": [[0, len(text), 1.0]],
    }


def _per_paragraph(text: str) -> list[tuple[int, int, str]]:
    """The plain reading of Dolma's loop: every non-blank paragraph matched alone by all three patterns."""
    found: list[tuple[int, int, str]] = []
    for para in re.finditer(r"[^\n]*\n|[^\n]+$", text):
        chunk, base = para.group(), para.start()
        if not chunk.strip():
            continue
        for m in pii_dolma._EMAIL.finditer(chunk):
            local, domain = m.group(1).split("@", 1)
            if local.strip() != "(" and "." in domain:
                found.append((base + m.start(), base + m.end(), pii_dolma.EMAIL))
        found += [
            (base + m.start(), base + m.end(), pii_dolma.PHONE) for m in pii_dolma._PHONE.finditer(chunk)
        ]
        if pii_dolma._IP_TRIGGER.search(chunk):
            found += [(base + m.start(), base + m.end(), pii_dolma.IP) for m in pii_dolma._IP.finditer(chunk)]
    return sorted(found, key=lambda s: (s[2], s[0]))


PIECES = (
    *("a@b.cc", "(x@y.org)", "x@y", "@", "me.@host.de,", " 555 123 4567", "(555)123-4567", "5551234567"),
    *("555.123.45678", " \n 212-555-0100", "10.0.0.1", "256.1.1.1", "1.2.3.4.5", "01.02.03.04", "v2.0.1.3"),
    *("word", "text.", "\n", "\n\n", " ", "  ", "\t", "\r\n", "12", "345", "-", ".", "?", "İ", "日本"),
    *(" ٣٣٣ ٤٤٤ ٥٥٥٥", "５５５-１２３-４５６７", "\u00a0555 123 4567", "1.2.3.4\n5", ".1.2.3"),
)


def test_pii_dolma_whole_text_search_equals_per_paragraph_matching() -> None:
    rng = random.Random(13)
    tagger = build_tagger("pii_dolma")[1]
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 25)))
        spans = [(s.start, s.end, s.type) for s in tagger.predict(Document(id="d", text=text))]
        ours = sorted(
            (s for s in spans if s[2] in {pii_dolma.EMAIL, pii_dolma.PHONE, pii_dolma.IP}),
            key=lambda s: (s[2], s[0]),
        )
        assert ours == _per_paragraph(text), text


def test_every_dolma_name_maps_to_a_spec_that_builds(tmp_path: Path) -> None:
    from dolma_kit.taggers.dolma_names import DOLMA_EQUIVALENTS, dolma_hint

    words = tmp_path / "words.txt"
    words.write_text("darn\n", encoding="utf-8")
    for dolma_name, spec in DOLMA_EQUIVALENTS.items():
        prefix, _ = build_tagger(
            spec.replace("bad_words_file=PATH", f"bad_words_file={words}").replace(",model=PATH", "")
        )
        assert prefix == dolma_name  # the twin writes Dolma's keys
    assert "c4_dolma" in (dolma_hint("c4_v2") or "") and dolma_hint("c4_v1") is None


def test_a_dolma_tagger_name_is_answered_with_its_twin_not_a_look_alike() -> None:
    """`-t c4_v2` must point to the Dolma twin, not suggest our paper tagger `c4_v1` by spelling."""
    from dolma_kit.errors import DolmaKitError
    from dolma_kit.taggers.registry import resolve_name

    with pytest.raises(DolmaKitError) as info:
        resolve_name("c4_v2")
    assert "its dolma-kit twin is `c4_dolma:name=c4_v2" in str(info.value)
    assert "did you mean" not in str(info.value)
