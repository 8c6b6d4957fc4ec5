"""Dolma 1.2.1's `pii_regex_with_counts_fast_v2` reproduced exactly (`pii_dolma_v1`).

Our `pii_v1` spans cover the address only and validate what they match (docs/pii.md); Dolma's do not, and
a corpus masked or filtered with Dolma can only be reproduced with Dolma's definitions, so this tagger
emits Dolma's names (`EMAIL_ADDRESS`, `PHONE_NUMBER`, `IP_ADDRESS`, `doc_count`, `doc_frac`) with Dolma's
values, quirks included:

- matching is per paragraph: a line with its `\\n`, whitespace-only lines skipped; a document with more than
  10,000 `?` gets no PII spans at all;
- an email span is the whole regex match: leading `.`, whitespace, `@,?!;:)(` and the trailing character
  and whitespace (often the newline) are inside it; the address needs a `.` in its domain and a local part
  other than `(`; an address at the very end of a text (no whitespace after it) is not found;
- a phone span starts with the whitespace before the number (so a number at the start of a line is not
  found), then `(ddd) ddd-dddd` in loose forms: any ten digits grouped 3-3-4;
- an IP span is any dotted quad of 0–255 (leading zeros allowed), anywhere, versions and OIDs included
  (Dolma's URL check on the match can never fire: its pattern starts with a backspace character);
- `doc_count` counts the spans; `doc_frac` is (characters in spans + the text's length) / the text's length,
  so it is ≥ 1 (the `doc_count` span is summed with the PII spans), and -1.0 for an empty text.

Speed without changing a value: each pattern is first run over the whole text, and only the paragraphs that
can hold a match (an `@`, the end of a phone-shaped match) are matched again alone, as Dolma does for all.
IP matches never contain a newline, so the whole-text matches are the per-paragraph ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dolma_kit.documents import Document
from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.registry import register_tagger

EMAIL = "EMAIL_ADDRESS"
PHONE = "PHONE_NUMBER"
IP = "IP_ADDRESS"
MAX_QUESTION_MARKS = 10_000

_BOUNDARY = r"[.\s@,?!;:)(]"
#: optional punctuation/whitespace, local@domain (lazy), optional punctuation, then whitespace
_EMAIL = re.compile(rf"{_BOUNDARY}*([^\s@]+@[^\s@,?!;:)(]+?){_BOUNDARY}?[\s\n\r]")
#: whitespace, then 3 digits (optionally in parentheses), separators, 3 digits, one optional separator, 4 digits
_PHONE = re.compile(r"\s+\(?(\d{3})\)?[-. ]*(\d{3})[-. ]?(\d{4})")
_QUAD = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
_IP = re.compile(rf"(?:{_QUAD}\.){{3}}{_QUAD}")
_IP_TRIGGER = re.compile(r"\.\S")


@dataclass(kw_only=True)
class PiiDolmaConfig(TaggerConfig):
    """Nothing to tune: the patterns are Dolma's. `name=pii_regex_with_counts_fast_v2` writes Dolma's keys."""

    name: str = ""
    """Attribute prefix instead of the spec's name (`<experiment>__<name>__EMAIL_ADDRESS`)."""


def _paragraph(text: str, pos: int) -> tuple[int, int]:
    """`[start, end)` of Dolma's paragraph holding `pos`: the line with its trailing `\\n`."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end + 1


def _paragraphs_at(text: str, positions: list[int]) -> list[tuple[int, int]]:
    """The distinct paragraphs holding `positions` (ascending), in text order."""
    out: list[tuple[int, int]] = []
    for pos in positions:
        if out and pos < out[-1][1]:
            continue
        out.append(_paragraph(text, pos))
    return out


def _emails(text: str) -> list[Span]:
    spans: list[Span] = []
    at = text.find("@")
    positions: list[int] = []
    while at >= 0:
        positions.append(at)
        at = text.find("@", at + 1)
    for start, end in _paragraphs_at(text, positions):
        for m in _EMAIL.finditer(text[start:end]):
            addressee, domain = m.group(1).split("@", 1)
            if addressee.strip() != "(" and "." in domain:
                spans.append(Span(start + m.start(), start + m.end(), EMAIL))
    return spans


#: a byte per character: digits and `(` become `0`, the other characters of a phone number (`)-. `) `.`
_SKELETON = bytearray(b"_" * 256)
_SKELETON[ord("0") : ord("9") + 1] = b"0" * 10
_SKELETON[ord("(")] = ord("0")
for _byte in b")-. ":
    _SKELETON[_byte] = ord(".")
_SKELETON_TABLE = bytes(_SKELETON)
del _SKELETON, _byte
#: the digits-and-separators part of a phone match is a run of ≥ 10 such characters starting with a `0`
_PHONE_RUN = re.compile(rb"0[0.]{9,}")
_BEYOND_LATIN1 = re.compile(r"[^\x00-\xff]")
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")  # `\d` is any Unicode decimal digit (٣, ５), as in Dolma
_IP_CANDIDATE = re.compile(
    r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]"
)  # a literal first: skipped along at memchr speed


def _phone_positions(text: str) -> list[int]:
    """A position in every paragraph that can hold a phone match (and in a few that cannot).

    Every match ends with its digits-and-separators part, a run of `0-9()-. ` with no newline; on a byte
    skeleton of the text (latin-1 has no other decimal digits) a literal-first pattern finds those runs at C
    speed. A text with digits beyond latin-1 is searched with Dolma's own pattern instead.
    """
    if _BEYOND_LATIN1.search(text) and _NON_ASCII_DIGIT.search(text):
        return [m.end() - 1 for m in _PHONE.finditer(text)]
    skeleton = text.encode("latin-1", "replace").translate(_SKELETON_TABLE)
    return [m.start() for m in _PHONE_RUN.finditer(skeleton)]


def _phones(text: str) -> list[Span]:
    # every per-paragraph match ends in a paragraph holding one of the positions: the part of a match after
    # its leading whitespace has no newline, so the candidates' paragraphs are matched again alone
    spans: list[Span] = []
    for start, end in _paragraphs_at(text, _phone_positions(text)):
        for m in _PHONE.finditer(text[start:end]):
            spans.append(Span(start + m.start(), start + m.end(), PHONE))
    return spans


def _ips(text: str) -> list[Span]:
    # an IP match has no newline, so per-paragraph matches are the matches of the lines holding a candidate
    positions = [m.start() for m in _IP_CANDIDATE.finditer(text)]
    spans: list[Span] = []
    for start, end in _paragraphs_at(text, positions):
        spans.extend(Span(start + m.start(), start + m.end(), IP) for m in _IP.finditer(text[start:end]))
    return spans


@register_tagger("pii_dolma_v1", alias="pii_dolma")
class PiiDolmaTagger(Tagger):
    """Dolma 1.2.1 `pii_regex_with_counts_fast_v2`: its spans, `doc_count` and its (≥ 1) `doc_frac`."""

    Config = PiiDolmaConfig
    config: PiiDolmaConfig

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        found: list[Span] = []
        if text.count("?") <= MAX_QUESTION_MARKS and not text.isspace():
            if "@" in text:
                found += _emails(text)
            found += _phones(text)
            if "." in text and _IP_TRIGGER.search(text) is not None:
                found += _ips(text)
        n = len(text)
        covered = sum(s.end - s.start for s in found)
        spans = [*found, whole_document(doc, "doc_count", len(found))]
        # Dolma sums the lengths of every span so far, its own whole-document `doc_count` span included
        spans.append(whole_document(doc, "doc_frac", (covered + n) / n if n else -1.0))
        return spans

    def attribute_names(self) -> list[str]:
        return [EMAIL, PHONE, IP, "doc_count", "doc_frac"]
