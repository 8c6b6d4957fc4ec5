"""Span replacement: mask PII, delete duplicate paragraphs, in one pass over a document's text.

Rules (docs/mix.md): spans are `[start, end)` code-point offsets into the text the attributes were made from.
Overlapping spans are merged into one region (touching spans are not: two adjacent addresses stay two tokens);
the region takes the replacement of its longest span (ties: the earlier start, then the earlier rule), so a
duplicate paragraph that contains an email is deleted, not masked. An empty replacement that deletes a whole
line also deletes that line's newline, so removed paragraphs leave no blank lines behind. The result is the
same as applying the regions right to left on the original offsets; it is built left to right in one join.
"""

from __future__ import annotations

from collections.abc import Sequence

from dolma_kit.errors import DolmaKitError

# (start, end, replacement, rule index) of one span that passed its rule's min_score
Edit = tuple[int, int, str, int]


class SpanError(DolmaKitError, ValueError):
    """A span outside the text: the attributes were made from other text than this document's. The stage
    re-raises it with the file, line and id (`mix.stage`)."""


def merge(edits: Sequence[Edit]) -> list[tuple[int, int, str]]:
    """Overlapping edits → disjoint regions, each with the replacement of its longest member."""
    regions: list[tuple[int, int, str]] = []
    best: Edit | None = None
    for edit in sorted(edits, key=lambda e: (e[0], -(e[1] - e[0]), e[3])):
        start, end = edit[0], edit[1]
        if regions and start < regions[-1][1]:
            r_start, r_end, _ = regions[-1]
            if best is None or end - start > best[1] - best[0]:
                best = edit
            regions[-1] = (r_start, max(r_end, end), best[2])
        else:
            best = edit
            regions.append((start, end, edit[2]))
    return regions


def apply(text: str, edits: Sequence[Edit]) -> str:
    """The text with every region replaced (see the module docstring for merging and line deletion)."""
    n = len(text)
    for start, end, _, _ in edits:
        if not 0 <= start <= end <= n:
            raise SpanError(f"span [{start}, {end}) is outside the text (length {n})")
    pieces: list[str] = []
    cursor = 0
    for start, end, replacement in merge(edits):
        if not replacement:
            start, end = _whole_line(text, start, end)
        start = max(start, cursor)
        pieces.append(text[cursor:start])
        pieces.append(replacement)
        cursor = max(cursor, end)
    pieces.append(text[cursor:])
    return "".join(pieces)


def _whole_line(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a deletion to take the newline after it (or before it, at the end) when it spans whole lines."""
    at_line_start = start == 0 or text[start - 1] == "\n"
    at_line_end = end == len(text) or text[end] == "\n"
    if not (at_line_start and at_line_end) or start == end:
        return start, end
    if end < len(text):
        return start, end + 1
    if start > 0:
        return start - 1, end
    return start, end
