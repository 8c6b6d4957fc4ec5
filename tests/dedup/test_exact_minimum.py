"""Paragraph dedup's default minimum (3 words, as Dolma's `min_words`), and what the screen says of it."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dolma_kit.dedup.exact import ExactDedupConfig, dedup_exact
from dolma_kit.stages import stage
from tests.dedup.test_exact import attributes, summary, write_shard


def test_paragraph_default_skips_one_and_two_word_lines_and_counts_them(tmp_path: Path) -> None:
    """Headings like "Note" repeat in every page of a documentation source: by default (3 words, as Dolma's
    `min_words`) they are not duplicates, and the summary and the screen say how many were skipped."""
    pages = [f"Note\nSee also\nThis page explains {w} in its own words." for w in ("tags", "dedup", "mix")]
    pages.append("Note\nThe same closing sentence of every page.\nThe same closing sentence of every page.")
    write_shard(tmp_path, "docs", "part-0000.jsonl", [{"id": str(i), "text": t} for i, t in enumerate(pages)])
    config = ExactDedupConfig(
        documents=[f"{tmp_path}/documents/*/*"], experiment="para", key="paragraphs", processes=1
    )
    dedup_exact(config)
    found = {
        k: v.get("exact_paragraphs__duplicate_paragraph") for k, v in attributes(tmp_path, "para").items()
    }
    last = pages[3]
    assert [last[s:e] for s, e, _ in found["3"]] == ["The same closing sentence of every page."]
    assert found["0"] is found["1"] is found["2"] is None
    exact = summary(tmp_path, "para")["exact"]
    assert (exact["duplicate_paragraphs"], exact["paragraphs_under_minimum"]) == (1, 7)
    assert exact["settings"]["min_paragraph_words"] == 3
    console = Console(width=200, record=True)
    stage("dedup exact").execute(config, console)
    screen = console.export_text()
    assert "paragraphs under minimum: 7" in screen
    assert "documents in = kept + marked + rejected" in screen and "file MB in" in screen
