"""What `stats` counts per source, and how one document's attributes are read into those counts.

Counts are plain sums (and a min/max), so a shard's partial counts merge with any other's in any order: the
executor counts shards in parallel and the driver adds the partials. The only bounded structure is the domain
counter (see `domains.DomainCounter`), whose approximation is reported with the numbers.

Attribute names are read by their shape `<experiment>__<producer>__<name>`, the layout every attribute-writing
stage (ours and Dolma's) uses, so no stage's code is imported here:
- language: the top-scoring `<exp>__ft_lang_id__<lang>` document span (the producer named by the
  experiment's `attributes_schema.json` when it tags with `ft_lang_id` under another name);
- PII: spans of `<exp>__pii*__email_address|phone_number|ip_address` (Dolma's upper-case names too);
- duplicates: `__exact_url__duplicate`, `__exact_text__duplicate`, `__minhash__duplicate` (score ≥ 0.5),
  `__exact_paragraphs__duplicate_paragraph` spans;
- contamination: `__decontam__contaminated` (score ≥ 0.5) and `__decontam__contaminated_paragraph` spans.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dolma_kit.analysis.domains import DomainCounter
from dolma_kit.attributes import SpanSummary

#: Character-length histogram edges: 0, then 10^(k/4) for k = 0…32 (1 to 10^8 characters, 4 bins a decade).
#: Bin i holds lengths in [edges[i], edges[i+1]); the last bin is open-ended. Fixed edges keep partials mergeable.
LENGTH_EDGES: list[float] = [0.0] + [10 ** (k / 4) for k in range(33)]
_EDGES = np.array(LENGTH_EDGES)

PII_KINDS = ("email_address", "phone_number", "ip_address")
_DOLMA_PII = {"EMAIL_ADDRESS": "email_address", "PHONE_NUMBER": "phone_number", "IP_ADDRESS": "ip_address"}
_DUPLICATE_PRODUCERS = ("exact_url", "exact_text", "minhash")
UNKNOWN_LANGUAGE = "unknown"


def length_bin(chars: int) -> int:
    """Index of the histogram bin that holds a document of `chars` characters."""
    return int(np.searchsorted(_EDGES, chars, side="right")) - 1


#: Characters measured at once by `utf8_length` and `word_count`: a long document is never copied whole.
PIECE_CHARS = 1 << 20


def utf8_length(text: str, piece: int = PIECE_CHARS) -> int:
    """`len(text.encode("utf-8"))` without the copy: ASCII text is its length, other text is encoded a piece at
    a time (a piece boundary never splits a code point; texts hold no lone surrogates, `records` rejects them)."""
    if text.isascii():
        return len(text)
    return sum(len(text[i : i + piece].encode("utf-8")) for i in range(0, len(text), piece))


def word_count(text: str, piece: int = PIECE_CHARS) -> int:
    """`len(text.split())` without the list of every word (a 50 M-character document: ~8 M strings, ~500 MB).

    Pieces are split alone; a word that runs across a boundary (no whitespace on either side of it) was
    counted once in each piece, so one is taken back. `str.split()` and `str.isspace()` agree on whitespace."""
    if len(text) <= piece:
        return len(text.split())
    words = 0
    for i in range(0, len(text), piece):
        words += len(text[i : i + piece].split())
        if i and not text[i].isspace() and not text[i - 1].isspace():
            words -= 1
    return words


def _add(into: dict[str, Any], key: str, n: float = 1) -> None:
    into[key] = into.get(key, 0) + n


@dataclass(slots=True)
class SourceCounts:
    """Everything counted for one source (or one source's part of a shard). Merge with `merge`."""

    documents: int = 0
    rejected: int = 0
    bytes: int = 0
    """UTF-8 bytes of the texts."""
    chars: int = 0
    words: int = 0
    """Whitespace-separated words (the token count when no tokenized folder is given)."""
    empty: int = 0
    min_chars: int | None = None
    max_chars: int = 0
    length_hist: list[int] = field(default_factory=lambda: [0] * len(LENGTH_EDGES))
    languages: dict[str, int] = field(default_factory=dict)
    """Documents by top-1 language; `unknown` for documents whose attribute line has no language span."""
    language_checked: int = 0
    with_url: int = 0
    domains: DomainCounter = field(default_factory=DomainCounter)
    duplicates: dict[str, dict[str, int]] = field(default_factory=dict)
    """`<exp>/<producer>` → {documents: marked duplicate, checked: documents with the attribute}."""
    duplicate_paragraphs: dict[str, dict[str, int]] = field(default_factory=dict)
    """`<exp>` → {spans, chars, documents (with ≥ 1 duplicate paragraph), checked}."""
    pii: dict[str, dict[str, int]] = field(default_factory=dict)
    """kind → {spans, documents (with ≥ 1 span of the kind)}."""
    pii_checked: int = 0
    pii_documents: int = 0
    """Documents with at least one PII span of any kind (what `tag` flagged)."""
    contamination: dict[str, dict[str, int]] = field(default_factory=dict)
    """`<exp>` → {documents: contaminated, paragraphs: contaminated paragraph spans, checked}."""
    quality: dict[str, dict[str, int]] = field(default_factory=dict)
    """`<exp>/<tagger>` → Gopher / C4 rule counts (`report_quality.QualityReader` fills them)."""

    def add_text(self, text: str) -> None:
        n = len(text)
        self.documents += 1
        self.chars += n
        self.bytes += utf8_length(text)
        self.words += word_count(text)
        self.empty += n == 0
        self.min_chars = n if self.min_chars is None else min(self.min_chars, n)
        self.max_chars = max(self.max_chars, n)
        self.length_hist[length_bin(n)] += 1

    def add_url_domain(self, domain: str | None) -> None:
        if domain is not None:
            self.with_url += 1
            self.domains.add(domain)

    def merge(self, other: SourceCounts) -> None:
        for name in (
            "documents",
            "rejected",
            "bytes",
            "chars",
            "words",
            "empty",
            "language_checked",
            "with_url",
            "pii_checked",
            "pii_documents",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.min_chars is not None:
            self.min_chars = (
                other.min_chars if self.min_chars is None else min(self.min_chars, other.min_chars)
            )
        self.max_chars = max(self.max_chars, other.max_chars)
        self.length_hist = [a + b for a, b in zip(self.length_hist, other.length_hist, strict=True)]
        for lang, n in other.languages.items():
            _add(self.languages, lang, n)
        self.domains.merge(other.domains)
        for mine, theirs in (
            (self.duplicates, other.duplicates),
            (self.duplicate_paragraphs, other.duplicate_paragraphs),
            (self.pii, other.pii),
            (self.contamination, other.contamination),
            (self.quality, other.quality),
        ):
            for key, values in theirs.items():
                slot = mine.setdefault(key, {})
                for k, v in values.items():
                    _add(slot, k, v)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["domains"] = self.domains.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], capacity: int) -> SourceCounts:
        fields = {k: v for k, v in data.items() if k != "domains"}
        counts = cls(**fields)
        counts.domains = DomainCounter(capacity=capacity)
        counts.domains.merge(data["domains"])
        return counts


class AttributeReader:
    """Turns one document's attribute lines (from several experiments) into counts, caching name lookups.

    `language_producers` maps an experiment to the producers that hold document-level language scores (from
    its `attributes_schema.json`; `ft_lang_id` for an experiment without a schema). A document with a line in
    such an experiment but no language span (an empty text) counts as `unknown`; likewise `pii_experiments`
    decides which documents were checked for PII (documents without PII have zero spans, not no line).
    """

    def __init__(self, language_producers: dict[str, set[str]], pii_experiments: set[str]) -> None:
        self.language_producers = language_producers
        self.pii_experiments = pii_experiments
        self._kinds: dict[str, tuple[str, str] | None] = {}

    def kind(self, name: str) -> tuple[str, str] | None:
        """(category, key) of an attribute name, or None when `stats` does not read it."""
        if name in self._kinds:
            return self._kinds[name]
        parts = name.split("__")
        found: tuple[str, str] | None = None
        if len(parts) >= 3:
            exp, producer, attr = parts[0], parts[1], "__".join(parts[2:])
            if producer in self.language_producers.get(exp, {"ft_lang_id"}):
                found = ("language", attr)
            elif producer.startswith("pii") and (attr in PII_KINDS or attr in _DOLMA_PII):
                found = ("pii", _DOLMA_PII.get(attr, attr))
            elif producer in _DUPLICATE_PRODUCERS and attr == "duplicate":
                found = ("duplicate", f"{exp}/{producer}")
            elif producer == "exact_paragraphs" and attr == "duplicate_paragraph":
                found = ("duplicate_paragraph", exp)
            elif producer == "exact_paragraphs" and attr == "duplicate_paragraph_fraction":
                found = ("duplicate_paragraph_checked", exp)
            elif producer == "decontam" and attr in ("contaminated", "contaminated_paragraph"):
                found = (attr, exp)
        self._kinds[name] = found
        return found

    def count(self, counts: SourceCounts, rows: list[tuple[str, dict[str, SpanSummary]]]) -> None:
        """Add one document's attributes: (experiment, span summaries of the names `kind` reads) for each
        experiment with a line for it (`attributes.read_summaries`: no span list of a long line is built)."""
        best_lang, best_score = UNKNOWN_LANGUAGE, -math.inf
        language_checked = any(exp in self.language_producers for exp, _ in rows)
        pii_checked = any(exp in self.pii_experiments for exp, _ in rows)
        pii_kinds: set[str] = set()
        for _, attributes in rows:
            for name, spans in attributes.items():
                kind = self.kind(name)
                if kind is None:
                    continue
                category, key = kind
                if category == "language":
                    language_checked = True
                    if spans.count and spans.first > best_score:
                        best_lang, best_score = key, spans.first
                elif category == "pii":
                    pii_checked = True
                    if spans.count:
                        _add(counts.pii.setdefault(key, {}), "spans", spans.count)
                        pii_kinds.add(key)
                elif category == "duplicate":
                    slot = counts.duplicates.setdefault(key, {})
                    _add(slot, "checked")
                    _add(slot, "documents", int(bool(spans.count) and spans.first >= 0.5))
                elif category == "duplicate_paragraph":
                    slot = counts.duplicate_paragraphs.setdefault(key, {})
                    _add(slot, "spans", spans.count)
                    _add(slot, "chars", spans.chars)
                    _add(slot, "documents", int(bool(spans.count)))
                elif category == "duplicate_paragraph_checked":
                    _add(counts.duplicate_paragraphs.setdefault(key, {}), "checked")
                elif category == "contaminated":
                    slot = counts.contamination.setdefault(key, {})
                    _add(slot, "checked")
                    _add(slot, "documents", int(bool(spans.count) and spans.first >= 0.5))
                elif category == "contaminated_paragraph":
                    _add(counts.contamination.setdefault(key, {}), "paragraphs", spans.count)
        if language_checked:
            counts.language_checked += 1
            _add(counts.languages, best_lang)
        if pii_checked:
            counts.pii_checked += 1
        for kind in pii_kinds:
            _add(counts.pii[kind], "documents")
        counts.pii_documents += bool(pii_kinds)
