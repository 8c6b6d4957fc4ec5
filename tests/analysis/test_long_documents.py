"""`stats` on long documents: words and UTF-8 bytes counted a piece at a time give the whole-text figures.

`SourceCounts.add_text` used `len(text.split())` and `len(text.encode())`, which on one 50 M-character document
held ~8 M word strings (~500 MB, bench/big_document.py: stats peaked at 698 MB, now 371 MB). The piecewise
counts must equal those for every text, so they are checked at tiny piece sizes where every boundary case
(a word across a cut, whitespace of every kind on either side, non-ASCII at a cut) comes up.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dolma_kit.analysis import counts
from dolma_kit.analysis.counts import utf8_length, word_count
from dolma_kit.analysis.stats import StatsConfig, collect_stats
from tests.conftest import CORPUS

#: every character `str.split()` splits on, and some it does not (zero-width space, no-break joiners)
SPACES = [c for c in map(chr, range(0x3100)) if c.isspace()]
OTHERS = ["a", "é", "ß", "中", "😀", "\u200b", "\u2060", "-", "."]


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(SPACES) if rng.random() < 0.35 else rng.choice(OTHERS) for _ in range(n))


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64])
def test_piecewise_counts_equal_the_whole_text_counts(piece: int) -> None:
    rng = random.Random(piece)
    texts = ["", " ", "a", " a ", "a b", "ab", "  ab  cd ", "\x1c\x1d\x1e\x1f", "x\u3000y\x85z"]
    texts += [random_text(rng, rng.randrange(0, 200)) for _ in range(300)]
    for text in texts:
        assert word_count(text, piece) == len(text.split()), repr(text)
        assert utf8_length(text, piece) == len(text.encode("utf-8")), repr(text)


def test_stats_json_is_the_same_at_any_piece_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole report's numbers, with pieces far smaller than the documents: byte-identical stats."""
    docs = tmp_path / "corpus" / "documents" / "debian"
    docs.mkdir(parents=True)
    texts = [p.read_text() for p in sorted(Path("/usr/share/common-licenses").glob("*"))[:6] if p.is_file()]
    texts += [random_text(random.Random(0), 5000), "Ünïcödé  words\u3000across\tpieces"]
    with (docs / "part-0000.jsonl").open("w") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"id": str(i), "text": text}) + "\n")
    for source in ("web", "wiki"):
        (docs.parent / source).mkdir()
        (docs.parent / source / "part-0000.jsonl").write_bytes(
            (CORPUS / "documents" / source / "part-0000.jsonl").read_bytes()
        )
    results = []
    for piece in (counts.PIECE_CHARS, 5):  # the second run cuts every document into 5-character pieces
        monkeypatch.setattr(counts, "utf8_length", lambda t, p=piece: utf8_length(t, p))
        monkeypatch.setattr(counts, "word_count", lambda t, p=piece: word_count(t, p))
        config = StatsConfig(root=str(tmp_path / "corpus"), output=str(tmp_path / f"out{piece}"), processes=1)
        data = collect_stats(config).data
        results.append(json.dumps(data, sort_keys=True).replace(f"out{piece}", "out"))
    assert results[0] == results[1]
    assert json.loads(results[0])["sources"]["debian"]["words"] == sum(len(t.split()) for t in texts)
