"""The report's "repeated long spans" section: the token sequences that recur most within each source, from a
suffix-array index over the tokens (`dolma-kit index`). A duplicate signal no MinHash gives: boilerplate,
templated paragraphs and licence texts repeated inside otherwise different documents.

Counting is `dolma_kit.index.repeats.report_section` (exact counts from the index); this module only reads
the index when one exists and renders what stats.json holds, so the page still rebuilds from stats.json alone.
"""

from __future__ import annotations

from typing import Any

from dolma_kit.analysis.report_parts import esc, table


def repeated_spans(tokenized: str | None) -> dict[str, Any] | None:
    """The section's data for a tokenized folder with an up-to-date index; None otherwise (no tokens, no
    index, a stale one, or the infini-gram engine not installed): the page then says how to get one."""
    if tokenized is None:
        return None
    from dolma_kit.index.repeats import report_section

    return report_section(tokenized)


def render_repeated_spans(data: dict[str, Any]) -> str:
    section = data.get("repeated_spans")
    if not section:
        tokenized = (data.get("tokens") or {}).get("path")
        where = tokenized or "TOKENS"
        # an optional index, not missing data: a hint, not an empty section
        return (
            '<p class="meta">No token index for this corpus. '
            + esc(
                f"`dolma-kit index {where}` builds one (pip install 'dolma-kit[index]'); the report then lists "
                "the most repeated long token spans per source, with exact counts."
            )
            + "</p>"
        )
    parts = [
        f'<p class="meta">Spans of {section["length"]} tokens that occur most often within each source '
        "(exact counts from the suffix-array index; `dolma-kit find --index TOKENS --repeats N` lists more).</p>"
    ]
    for source, rows in sorted(section["sources"].items()):
        parts.append(f"<h3>{esc(source)}</h3>")
        parts.append(
            table(
                ["span", "in source", "documents", "in corpus"],
                [[r["text"], r["in_source"], r["documents"], r["in_corpus"]] for r in rows],
            )
        )
    return "".join(parts)
