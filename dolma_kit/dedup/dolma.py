"""Dolma's dedupe semantics (`dolma dedupe`, 1.2.1), computed exactly: which keys a document or paragraph is
checked under, and the attribute values Dolma writes from the answers.

Dolma checks keys one after another against one Bloom filter: a key seen before is a duplicate, a new one is
inserted. Here the same keys, in the same order (shard, line, then the order Dolma checks them inside a
document), go through exact dedup's hash → resolve → attributes passes, so "seen before" is exact: no false
positives, and the result does not depend on `--processes` (Dolma's threads race for which copy comes first).

Keys are compared raw, as Dolma compares them (no case folding or URL normalisation): a document key is the
string at a JSONPath (`$.metadata.url`); a paragraph key is the paragraph's text; an n-gram key is a
sequence of words from a Unicode (UAX #29) word segmentation with whitespace-only segments dropped (Dolma's
`tokenize`, from the `unicode-segmentation` crate; `regex`'s `\\b` under the WORD flag follows the same
rules).

Where Dolma 1.2.1 is wrong, `compat=False` (the default) does what its options say, and `compat=True`
reproduces it; `differences` lists the ones a given configuration meets, so the run can print them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import regex
import xxhash

from dolma_kit.documents import Document

#: the top-level document fields a JSONPath key may start with
DOCUMENT_FIELDS = ("id", "text", "source", "added", "created", "metadata")
_WORD_BOUNDS = regex.compile(r"(?V1w)\b")
_SPACE = regex.compile(r"\s")


@dataclass(kw_only=True)
class DolmaDedupe:
    """Dolma's `dedupe` section as exact dedup runs it (built from a Dolma config by `dolma_config`)."""

    attribute_name: str
    """The attribute written, unprefixed, as Dolma names it (`bff_duplicate_paragraph_spans`)."""
    documents_key: str | None = None
    """JSONPath of the document key (`$.metadata.url`): document dedup. None: paragraph dedup."""
    paragraph_separator: str = "\n"
    """What paragraphs are split on."""
    ngram_length: int = 0
    """Words per n-gram (`by_ngram.ngram_length`); 0: whole paragraphs are the keys."""
    stride: int = 0
    """Check every `stride`-th n-gram (0 or 1: all)."""
    overlap_threshold: float = 1.0
    """A paragraph is marked when this fraction of its checked n-grams was seen before."""
    skip_short_paragraphs: bool = False
    """Paragraphs with fewer than 2 checked n-grams are not checked whole (Dolma checks them whole)."""
    skip_empty: bool = False
    """Keys (document keys or paragraphs) that are empty after stripping whitespace are not checked."""
    min_length: int = 0
    """Keys shorter than this (characters) are not checked."""
    min_words: int = 0
    """Keys with fewer words than this are not checked."""
    compat: bool = False
    """Reproduce Dolma 1.2.1 where it is wrong (see `differences`); the run says which ones it met."""

    def __post_init__(self) -> None:
        if not self.attribute_name:
            raise ValueError("attribute_name must be non-empty")
        if self.documents_key is not None:
            json_path(self.documents_key)  # fails early on a path we cannot read
        for name in ("ngram_length", "stride", "min_length", "min_words"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
        if not self.paragraph_separator:
            raise ValueError("paragraph_separator must be non-empty")

    @property
    def paragraphs(self) -> bool:
        return self.documents_key is None

    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def json_path(path: str) -> tuple[str, ...]:
    """`$.metadata.url` → ("metadata", "url"); also `$['metadata']['url']`. Only plain field paths: what
    Dolma's configs use for keys."""
    rest = path.strip()
    if not rest.startswith("$"):
        raise ValueError(f"documents key {path!r}: a JSONPath starting with '$' (e.g. $.metadata.url)")
    parts = [p for p in regex.findall(r"""\.([^.\[\]]+)|\[['"]([^'"]+)['"]\]""", rest[1:])]
    names = tuple(a or b for a, b in parts)
    rebuilt = "".join(f".{a}" if a else f"['{b}']" for a, b in parts)
    if not names or rebuilt.replace('"', "'") != rest[1:].replace('"', "'"):
        raise ValueError(f"documents key {path!r}: only field paths like $.metadata.url are supported")
    if names[0] not in DOCUMENT_FIELDS:
        raise ValueError(f"documents key {path!r}: must start with one of {', '.join(DOCUMENT_FIELDS)}")
    return names


def document_key(doc: Document, names: tuple[str, ...]) -> str | None:
    """The string at `names` in the document, or None (Dolma 1.2.1 crashes on a missing or non-string key)."""
    value: Any = getattr(doc, names[0])
    for name in names[1:]:
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def words(text: str) -> list[str]:
    """Dolma's `tokenize`: UAX #29 word segments that are not all whitespace (punctuation marks count)."""
    return [w for w in _WORD_BOUNDS.split(text) if w and not w.isspace()]


def digest(key: tuple[str, ...]) -> bytes:
    """xxh3-128 of a key; each part is ended by 0xFF (never in UTF-8), so ("a b",) and ("a", "b") differ and
    a one-word n-gram equals the paragraph of that word, as Dolma's hashing of string sequences has it."""
    return xxhash.xxh3_128_digest(b"".join(p.encode("utf-8") + b"\xff" for p in key))


def utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8, encoded a piece at a time (a long document is never copied whole)."""
    if text.isascii():
        return len(text)
    step = 1 << 20
    return sum(len(text[i : i + step].encode("utf-8", "surrogatepass")) for i in range(0, len(text), step))


# --------------------------------------------------------------------------------------------- documents


def check_document(doc: Document, cfg: DolmaDedupe, names: tuple[str, ...]) -> tuple[str, str | None]:
    """What document dedup does with `doc`: ("check", key), ("skip", None) (Dolma writes `[]`) or ("none",
    None) (no key, or Dolma 1.2.1's `min_words` bug: not checked and nothing written)."""
    key = document_key(doc, names)
    if key is None:
        return "none", None
    if not cfg.compat:
        key = without_fragment(key)
    if cfg.compat:  # Dolma's chain: a set min_words decides alone, and a long enough key is never checked
        if cfg.min_words > 0:
            return ("skip", None) if len(words(key)) < cfg.min_words else ("none", None)
        if utf8_length(key) < cfg.min_length:
            return "skip", None
        if cfg.skip_empty and not key.strip():
            return "skip", None
        return "check", key
    if (
        len(key) < cfg.min_length
        or (cfg.skip_empty and not key.strip())
        or (cfg.min_words > 0 and len(words(key)) < cfg.min_words)
    ):
        return "skip", None
    return "check", key


def without_fragment(key: str) -> str:
    """An http(s) URL without its `#fragment`: the fragment never reaches the server, so `page#a` and `page`
    are one document (Dolma 1.2.1 compares URLs raw). Other strings (a text that starts with a URL: it has
    spaces) are returned as they are."""
    if "#" in key and key[:8].lower().startswith(("http://", "https://")) and not _SPACE.search(key):
        return key.partition("#")[0]
    return key


def document_value(doc: Document, key: str, cfg: DolmaDedupe) -> list[list[float]]:
    """The span a duplicate document gets: the whole text; Dolma 1.2.1 ends it at the key's length in bytes."""
    return [[0, utf8_length(key) if cfg.compat else len(doc.text), 1]]


# --------------------------------------------------------------------------------------------- paragraphs


@dataclass
class Paragraph:
    """One paragraph as Dolma checks it: its span, its keys in check order, and how answers become a value."""

    start: int
    end: int
    kind: str
    """`exact` (one key, the paragraph), `ngram` (its checked n-grams), `whole` (too few n-grams: the
    paragraph, scored 0/1) or `none` (no n-gram and skip_short_paragraphs: never marked)."""
    keys: list[bytes]
    """The keys' digests (`digest`), in check order."""


def paragraph_spans(text: str, cfg: DolmaDedupe) -> Iterator[tuple[int, int, str]]:
    """(start, end, paragraph) for each paragraph; a span includes the separator after it. Nothing after the
    last separator is no paragraph. Dolma 1.2.1 adds 1 for the separator (whatever its length) unless the
    character offset reached the text's length in *bytes* minus one: in ASCII text the last paragraph before
    a final newline loses it, in other text spans run past the end, and a trailing empty piece counts."""
    sep = cfg.paragraph_separator
    last = utf8_length(text) - 1 if cfg.compat else 0
    offset = position = 0  # offset: where Dolma thinks the piece starts; position: where it does
    while True:
        found = text.find(sep, position)
        piece = text[position:] if found < 0 else text[position:found]
        if cfg.compat:
            start = offset
            offset += len(piece)
            if offset < last:
                offset += 1
            yield start, offset, piece
        elif piece or found >= 0 or position == 0:  # nothing after the last separator is no paragraph
            yield position, position + len(piece) + (len(sep) if found >= 0 else 0), piece
        if found < 0:
            return
        position = found + len(sep)


def _checked(piece: str, cfg: DolmaDedupe) -> bool:
    if cfg.compat:  # Dolma's chain: with min_words set, no paragraph is ever checked
        if len(piece) < cfg.min_length or cfg.min_words > 0:
            return False
        return not (cfg.skip_empty and not piece.strip())
    if len(piece) < cfg.min_length or (cfg.skip_empty and not piece.strip()):
        return False
    return not (cfg.min_words > 0 and len(words(piece)) < cfg.min_words)


def _ngram_starts(count: int, cfg: DolmaDedupe) -> list[int]:
    """Which n-grams are checked (by first word). Ours: every stride-th from the first. Dolma 1.2.1 takes the
    first two whatever the stride (its "last start" is 0 until the second n-gram), then every stride-th."""
    step = max(cfg.stride, 1)
    if not cfg.compat:
        return list(range(0, count, step))
    out, last = [], 0
    for start in range(count):
        if last == 0 or start - last >= cfg.stride:
            last = start
            out.append(start)
    return out


def plan_paragraphs(text: str, cfg: DolmaDedupe) -> Iterator[Paragraph]:
    """Every paragraph that is checked, with its keys in Dolma's order (an empty text has none); one at a
    time, so a long document's paragraphs and n-grams are never all held."""
    if not text:
        return
    for start, end, piece in paragraph_spans(text, cfg):
        if not _checked(piece, cfg):
            continue
        if cfg.ngram_length == 0:
            yield Paragraph(start, end, "exact", [digest((piece,))])
            continue
        tokens = words(piece)
        n = cfg.ngram_length
        starts = _ngram_starts(max(len(tokens) - n + 1, 0), cfg)
        keys = [digest(tuple(tokens[i : i + n])) for i in starts]
        if len(keys) < 2 and not cfg.skip_short_paragraphs:
            keys.append(digest((piece,)))  # after its n-grams, as Dolma checks it
            yield Paragraph(start, end, "whole", keys)
        else:
            yield Paragraph(start, end, "ngram" if keys else "none", keys)


def paragraph_value(paragraph: Paragraph, duplicates: Sequence[bool], cfg: DolmaDedupe) -> list[float] | None:
    """The span Dolma writes for one checked paragraph from its keys' answers, or None.

    `exact`: `[s, e, 1]` when seen. `ngram`: the seen fraction (float32 division, as Dolma computes it) when
    ≥ overlap_threshold. `whole`: 1.0 or 0.0 when ≥ overlap_threshold (0 marks every short paragraph)."""
    if paragraph.kind == "exact":
        return [paragraph.start, paragraph.end, 1] if duplicates[0] else None
    if paragraph.kind == "whole":
        score = 1.0 if duplicates[-1] else 0.0
        return [paragraph.start, paragraph.end, score] if score >= cfg.overlap_threshold else None
    if paragraph.kind == "none":
        return None
    fraction = float(np.float32(sum(duplicates)) / np.float32(len(duplicates)))
    return [paragraph.start, paragraph.end, fraction] if fraction >= cfg.overlap_threshold else None


def differences(cfg: DolmaDedupe) -> list[str]:
    """Where Dolma 1.2.1 behaves differently from us for this configuration: what `compat` reproduces."""
    out = []
    if cfg.min_words > 0:
        out.append(
            "min_words > 0: Dolma 1.2.1 checks no key with enough words (it dedups nothing), and ignores "
            "min_length and skip_empty"
        )
    if cfg.paragraphs:
        out.append(
            "paragraph spans: Dolma 1.2.1 adds 1 for the separator unless a character offset reached the "
            "byte length - 1 (the last paragraph before a final newline loses it; non-ASCII spans run past "
            "the end; an empty piece after the last separator is checked)"
        )
        if len(cfg.paragraph_separator) > 1:
            out.append("paragraph_separator longer than 1: Dolma 1.2.1 counts it as 1 character")
        if cfg.ngram_length > 0 and cfg.stride > 1:
            out.append("stride: Dolma 1.2.1 checks the first two n-grams, then every stride-th")
    else:
        out.append("document spans: Dolma 1.2.1 ends them at the key's length in bytes, not the text's")
        out.append(
            "URL keys: Dolma 1.2.1 compares them raw, so page#a and page are two documents (we drop the #fragment)"
        )
        if cfg.min_length > 0:
            out.append("min_length: Dolma 1.2.1 measures document keys in bytes")
    return out


def notes(cfg: DolmaDedupe) -> list[str]:
    """The lines a run prints about Dolma: which of its 1.2.1 behaviours are reproduced, or would differ."""
    found = differences(cfg)
    if cfg.compat:
        return [f"Dolma 1.2.1 mode: reproducing {d}" for d in found]
    return [f"differs from Dolma 1.2.1 (pass --dolma-compat to reproduce): {d}" for d in found]
