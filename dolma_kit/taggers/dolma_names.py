"""Dolma 1.2.1 tagger names → the dolma-kit spec that writes the same attributes with the same values.

A user coming from Dolma types Dolma's names (`c4_v2`, `pii_regex_with_counts_fast_v2`); our versioned names
differ (`c4_v1` is the C4 paper's tagger, not Dolma's `c4_v1`), so an unknown-tagger error should point at the
twin, not at the nearest spelling. docs/dolma-migration.md has the full table, with what each twin needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_LANG = (
    "ft_lang_id_en_doc_v2",
    "ft_lang_id_en_only_v2",
    "ft_lang_id_en_paragraph_v2",
    "ft_lang_id_en_paragraph_with_doc_score_v2",
    "ft_lang_id_doc_v1",
    "ft_lang_id_paragraph_v1",
    "ft_lang_id_1e2",
)

DOLMA_EQUIVALENTS: Mapping[str, str] = MappingProxyType(
    {
        "gopher_v1": "gopher_dolma:name=gopher_v1",
        "gopher_v2": "gopher_dolma:name=gopher_v2,collapse_blank_lines=true",
        "c4_v2": "c4_dolma:name=c4_v2,bad_words_file=PATH",
        "pii_regex_with_counts_fast_v2": "pii_dolma:name=pii_regex_with_counts_fast_v2",
        **{name: f"ft_lang_id_dolma:variant={name},name={name},model=PATH" for name in _LANG},
    }
)


def dolma_hint(name: str) -> str | None:
    """`"Dolma's <name>: use <spec>"` for a Dolma tagger name we reproduce, else None."""
    spec = DOLMA_EQUIVALENTS.get(name)
    return (
        f"{name} is Dolma's tagger; its dolma-kit twin is `{spec}` (docs/dolma-migration.md)"
        if spec
        else None
    )
