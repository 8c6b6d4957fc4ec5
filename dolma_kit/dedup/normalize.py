"""Normalisation applied before hashing, shared by exact and near-duplicate detection.

Two texts that differ only in case, accents' composition, punctuation, digits or spacing are the same
document for deduplication (the normalisation datatrove and the Gopher/CCNet pipelines use). URLs are the
same page when they differ only in scheme, `www.`, default port, fragment, trailing slash, tracking
parameters or query-parameter order.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ref|ref_src)$")


_TABLE: dict[int, str | None] = {}


def normalization_table() -> dict[int, str | None]:
    """One translation pass: punctuation and symbols deleted, decimal digits mapped to `0` (built lazily).

    Public so that stages needing the same normalisation with line breaks kept (decontamination maps matches
    back to paragraphs) translate with the very same table.
    """
    if not _TABLE:
        for cp in range(sys.maxunicode + 1):
            category = unicodedata.category(chr(cp))
            if category[0] in "PS":
                _TABLE[cp] = None
            elif category == "Nd":
                _TABLE[cp] = "0"
    return _TABLE


def normalize_text(text: str) -> str:
    """NFKC, case-folded, punctuation and symbols removed, digits mapped to 0, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().translate(normalization_table()).split())


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
