"""The report's repeated-spans section: present, with exact counts, when the tokens have an index; a hint
naming the command when they have none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dolma_kit.analysis.report import build_report
from dolma_kit.analysis.stats import StatsConfig
from dolma_kit.index.build import IndexConfig, build_index
from dolma_kit.index.store import TokenIndex

from .conftest import ENGINE_MISSING, tokenize_corpus, write_words_corpus

pytest.importorskip("infini_gram", reason=ENGINE_MISSING)


def test_the_report_lists_repeated_spans_with_exact_counts_once_an_index_exists(tmp_path: Path) -> None:
    root = write_words_corpus(tmp_path / "corpus", docs=30, words=60)
    boilerplate = " ".join(["this page was generated from the archive of the old mill by its keepers"] * 4)
    for source in ("alpha", "beta"):  # a licence-like paragraph repeated in some documents of each source
        shard = root / "documents" / source / "part-0000.jsonl"
        docs = [json.loads(line) for line in shard.read_text().splitlines()]
        for doc in docs[::3]:
            doc["text"] += "\n" + boilerplate
        shard.write_text("".join(json.dumps(d) + "\n" for d in docs))
    tokens = tokenize_corpus(root)
    config = StatsConfig(root=str(root), tokenized=str(tokens), output=str(tmp_path / "report"), processes=1)
    before = build_report(config)
    assert "repeated_spans" not in before.data
    assert f"dolma-kit index {tokens}" in Path(before.html_path).read_text()

    build_index(IndexConfig(tokens=str(tokens), processes=1))
    after = build_report(config)
    section = after.data["repeated_spans"]
    assert set(section["sources"]) == {"alpha", "beta"}
    index = TokenIndex.open(tokens)
    for rows in section["sources"].values():
        assert rows, "the planted paragraph repeats in every source"
        for row in rows[:2]:
            assert row["in_corpus"] == index.count(index.encode(row["text"])) >= row["in_source"] >= 2
    html = Path(after.html_path).read_text()
    assert "Repeated long spans" in html and section["sources"]["alpha"][0]["text"].strip()[:20] in html
    stats = json.loads(Path(after.stats_path).read_text())
    assert stats["repeated_spans"] == section  # the page rebuilds from stats.json alone
