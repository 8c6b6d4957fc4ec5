"""A long text a chunk at a time, cut where splitting it gives exactly the pieces of splitting it whole.

A tagger that splits a 50-million-character document into words or lines holds millions of Python strings
(about 60 bytes each) at once. Splitting it a chunk of about `CHUNK_CHARS` characters at a time bounds that
to one chunk's pieces. A cut is always made right after a match of a boundary pattern, at a place where the
split of the whole text has a break anyway, so the pieces of the chunks, put together, are the pieces of the
whole text, in order, and so are the counts and sums made from them. A text of at most `CHUNK_CHARS`
characters is one chunk, the text itself (no copy): ordinary documents take the same path as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dolma_kit.text import paragraph_spans

#: characters per chunk (a few MB in memory); tests set it small to cut often
CHUNK_CHARS = 1 << 18
#: paragraphs per batch of `paragraph_chunks`
BATCH_PARAGRAPHS = 1024

#: one whitespace character: the set `str.split()` and `str.isspace()` use (a test checks every code point)
WHITESPACE = re.compile(r"\s")
#: one newline: chunks of whole lines
NEWLINE = re.compile("\n")


def chunks(text: str, boundary: re.Pattern[str] = NEWLINE) -> Iterator[tuple[int, str]]:
    """(offset, chunk) pairs that make up `text`; each chunk but the last ends right after a boundary match.

    Chunks are about `CHUNK_CHARS` long: the cut is the end of the first boundary match found at least
    `CHUNK_CHARS` characters into the chunk. The cut is never at the very end of the text, so only the last
    chunk reaches it. A text without a boundary match there is one chunk. With `WHITESPACE`, `str.split()`
    of the chunks gives the words of the text; with `NEWLINE`, the lines (see `split_chunks`). Lowercasing a
    chunk cut after whitespace gives the same characters as lowercasing the whole (case context, such as
    Greek final sigma, never reaches across whitespace).
    """
    size = CHUNK_CHARS
    if len(text) <= size:
        yield 0, text
        return
    start = 0
    while True:
        match = boundary.search(text, start + size) if start + size < len(text) else None
        if match is None or match.end() >= len(text):
            yield start, text[start:]
            return
        yield start, text[start : match.end()]
        start = match.end()


def split_chunks(text: str, separator: re.Pattern[str]) -> Iterator[list[str]]:
    """`separator.split(text)`, one chunk's pieces at a time (all lists together are exactly the whole split).

    For a separator whose split is unchanged by a cut right after one of its matches: `\\n`, `\\n+` and
    `\\n\\s*\\n` (a match ends after the last newline of its run of whitespace, wherever the search starts
    in that run).
    A chunk that ends with a match splits into its pieces plus an empty one that is not a piece of the text
    (the next piece starts the next chunk), so that one is dropped from every chunk but the last.
    """
    plain = separator.pattern == "\n"
    length = len(text)
    for offset, chunk in chunks(text, separator):
        pieces = chunk.split("\n") if plain else separator.split(chunk)
        if offset + len(chunk) < length:
            pieces.pop()
        yield pieces


def paragraph_chunks(text: str) -> Iterator[tuple[list[tuple[int, int]], list[str]]]:
    """`paragraph_spans(text)` with each paragraph's text, in batches of whole lines of a chunk.

    Spans are offsets into `text`. A paragraph is a line, so it never straddles a cut; a batch holds at most
    `BATCH_PARAGRAPHS` paragraphs, so predicting a long document batch by batch bounds what a batch costs
    (a model scoring every label returns one (label, score) pair per label and paragraph).
    """
    for offset, chunk in chunks(text, NEWLINE):
        spans = paragraph_spans(chunk)
        for first in range(0, len(spans), BATCH_PARAGRAPHS):
            batch = spans if len(spans) <= BATCH_PARAGRAPHS else spans[first : first + BATCH_PARAGRAPHS]
            texts = [chunk[start:end] for start, end in batch]
            if offset:
                batch = [(start + offset, end + offset) for start, end in batch]
            yield batch, texts
