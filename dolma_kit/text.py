"""Text units every stage agrees on: paragraphs are newline-separated lines with content.

Spans exclude the newline itself, so masking or removing a paragraph never merges its neighbours.
"""

from __future__ import annotations

import re

_NON_EMPTY_LINE = re.compile(r"[^\n]*\S[^\n]*")


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """`[start, end)` of every line that has a non-whitespace character (Dolma's paragraph definition)."""
    return [m.span() for m in _NON_EMPTY_LINE.finditer(text)]


def single_line(text: str) -> str:
    """fastText predicts on one line: newlines (and other line breaks) become spaces."""
    return text.replace("\n", " ").replace("\r", " ").replace("\x0b", " ").replace("\x0c", " ")
