"""Normalisation applied before hashing, shared by exact and near-duplicate detection.

Two texts that differ only in case, accents' composition, punctuation, digits or spacing are the same
document for deduplication (the normalisation datatrove and the Gopher/CCNet pipelines use). URLs are the
same page when they differ only in scheme, `www.`, default port, fragment, trailing slash, tracking
parameters or query-parameter order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ref|ref_src)$")


_TABLE: dict[int, str | None] = {}


def normalization_table() -> dict[int, str | None]:
    """One translation pass: punctuation and symbols deleted, decimal digits mapped to `0` (built lazily).

    Public so that stages needing the same normalisation with line breaks kept (decontamination maps matches
    back to paragraphs) translate with the very same table.
    """
    if not _TABLE:
        for first, last in TABLE_PLANES:
            for cp in range(first, last):
                category = unicodedata.category(chr(cp))
                if category[0] in "PS":
                    _TABLE[cp] = None
                elif category == "Nd":
                    _TABLE[cp] = "0"
    return _TABLE


#: the code points the table scans: planes 0–3 (every P*, S* and Nd of Unicode 14–16 is in planes 0–1; 2–3 are
#: ideographs) and 14 (tags, variation selectors). Planes 4–13 are unassigned and 15–16 private use. Scanning
#: all 1.1 M code points took 0.34 CPU-s in every worker process of every dedup pass; this takes a quarter.
#: A test checks that the planes left out hold none of these categories.
TABLE_PLANES = ((0, 0x40000), (0xE0000, 0xF0000))


_WHITESPACE = re.compile(r"\s+")
#: texts longer than this are normalised piece by piece (see `normalize_text`)
CHUNK_CHARS = 1 << 20


def normalize_text(text: str) -> str:
    """NFKC, case-folded, punctuation and symbols removed, digits mapped to 0, whitespace collapsed.

    A long text is normalised in pieces cut just after a space or newline: NFKC composition never crosses
    one (a space or newline composes with nothing, and blocks composition across it), case folding and the
    table are per character, and the cut is whitespace either way, so the pieces joined by one space are the
    whole text's result. It matters for memory: `str.casefold` allocates 12 bytes per character of its
    input, 600 MB for one 50 MB document."""
    if len(text) <= CHUNK_CHARS:
        return _normalize_piece(text)
    return " ".join(normalized_pieces(text))


def normalized_pieces(text: str) -> Iterator[str]:
    """`normalize_text(text)` as non-empty pieces that, joined by one space, are the whole result: a caller
    that only hashes the result (exact dedup) never holds it, nor its UTF-8 copy, at once."""
    if len(text) <= CHUNK_CHARS:
        piece = _normalize_piece(text)
        if piece:
            yield piece
        return
    for start, stop in _cuts(text, CHUNK_CHARS):
        piece = _normalize_piece(text[start:stop])
        if piece:
            yield piece


def _normalize_piece(text: str) -> str:
    folded = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    # `re`'s \s is `str.isspace`, as `str.split()` uses; a regex keeps a long text from becoming a word list
    return _WHITESPACE.sub(" ", folded.translate(normalization_table())).strip(" ")


def _cuts(text: str, size: int) -> list[tuple[int, int]]:
    """[start, stop) pieces of about `size` characters, each (but the last) ending just after a space or newline."""
    out = []
    start = 0
    while len(text) - start > size:
        cut = max(text.rfind(" ", start, start + size), text.rfind("\n", start, start + size))
        if cut < start:  # no space in the window: the piece runs on to the next one
            cut = min((i for i in (text.find(" ", start + size), text.find("\n", start + size)) if i != -1),
                      default=len(text) - 1)  # fmt: skip
        out.append((start, cut + 1))
        start = cut + 1
    out.append((start, len(text)))
    return out


def normalize_url(url: str) -> str:
    """Canonical form of a URL for exact URL dedup; a string that is not a URL is only stripped."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.netloc:
        return url
    host = (parts.hostname or "").lower().rstrip(".")
    host = host.removeprefix("www.")
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    path = re.sub(r"/+", "/", parts.path or "/")
    if len(path) > 1:
        path = path.rstrip("/")
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING_PARAMS.match(k)
    )
    return urlunsplit(("", netloc, path, urlencode(query), ""))
