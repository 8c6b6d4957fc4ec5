"""`dolma-kit index` and `dolma-kit find`: counts equal a brute-force scan, every occurrence decodes to the
query at the file:line and characters it names, a changed tokens folder is refused as stale, a killed build
resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app, main
from dolma_kit.index.build import IndexConfig, build_index
from dolma_kit.index.engine import TokenIndexError
from dolma_kit.index.store import TokenIndex

from .conftest import ENGINE_MISSING, brute_count, brute_positions, tokenize_corpus, write_words_corpus

pytest.importorskip("infini_gram", reason=ENGINE_MISSING)


def _parts(ix: TokenIndex) -> list[np.ndarray]:
    return [np.asarray(ix.tokenized.tokens(i)) for i in range(len(ix.tokenized.parts))]


def _queries(parts: list[np.ndarray], eos: int, n: int, seed: int = 0) -> list[list[int]]:
    """Windows cut from the corpus (1 … 12 tokens, EOS-free) and a few that cannot occur."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        tokens = parts[int(rng.integers(len(parts)))]
        length = int(rng.integers(1, 13))
        start = int(rng.integers(0, len(tokens) - length))
        q = [int(t) for t in tokens[start : start + length]]
        if eos not in q:
            out.append(q)
    return [*out, [1023, 1022, 1021], [int(parts[0][0]), 1023]]


def test_counts_equal_brute_force_and_occurrences_decode_to_the_query(indexed_demo: Path) -> None:
    ix = TokenIndex.open(indexed_demo)
    parts = _parts(ix)
    texts = {}
    for source_file in {ix.tokenized.manifest["parts"][i]["src"] for i in range(len(parts))}:
        for line_no, line in enumerate(Path(source_file).read_text(encoding="utf-8").splitlines(), 1):
            texts[(source_file, line_no)] = json.loads(line)["text"]
    checked = 0
    for q in _queries(parts, ix.eos_id, 150):
        expected = brute_positions(parts, q)
        count, found = ix.find(q, limit=1000)
        assert count == len(expected) == ix.count(q) == brute_count(parts, q), q
        assert sorted((ix.tokenized.parts.index(o.part), o.start) for o in found) == expected
        for o in found[:5]:
            part = ix.tokenized.parts.index(o.part)
            assert parts[part][o.start : o.end].tolist() == q
            assert o.doc_start <= o.start < o.end <= o.doc_end
            text = texts[(o.src, o.loc)]
            covered, decoded = text[o.char_start : o.char_end], ix.decode(q)
            # exact, or widened to whole characters where the match cuts one (byte-level tokens)
            assert covered == decoded or (decoded.strip("\ufffd") in covered and len(covered) <= len(decoded))
            checked += 1
    assert checked > 100


def test_a_large_part_sorted_in_several_jobs_counts_right(tmp_path: Path) -> None:
    """Parts bigger than the memory bound are sorted in jobs and merged: answers stay exact."""
    tokens = tokenize_corpus(write_words_corpus(tmp_path, docs=40, words=2000))
    summary = build_index(IndexConfig(tokens=str(tokens), processes=2, memory_gb=1e-5))
    ix = TokenIndex.open(tokens)
    parts = _parts(ix)
    assert max(len(p) for p in parts) * 2 > 2 * 100_000  # more than two jobs of the minimum size
    assert summary.tokens == sum(len(p) for p in parts)
    for q in _queries(parts, ix.eos_id, 60, seed=3):
        assert ix.count(q) == brute_count(parts, q), q
    # disk: the suffix array (4 bytes a token here) + document offsets + the unigram table; tokens linked
    assert summary.index_bytes <= 4 * summary.tokens + 8 * 80 + 8 * 1024 + 128
    assert (tokens / "index" / "tokenized.00000").is_symlink()
    # one sorting job per part (merge and concat skipped) writes the same bytes as several merged
    tables = {p.name: p.read_bytes() for p in (tokens / "index").glob("table.*")}
    build_index(IndexConfig(tokens=str(tokens), processes=2, force=True))
    assert {p.name: p.read_bytes() for p in (tokens / "index").glob("table.*")} == tables


def test_a_changed_tokens_folder_makes_the_index_stale(indexed_demo: Path, capsys) -> None:
    manifest = indexed_demo / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"seed": 0', '"seed": 1'))
    with pytest.raises(TokenIndexError, match="STALE"):
        TokenIndex.open(indexed_demo)
    with pytest.raises(SystemExit) as exit_info:
        main(["find", "--index", str(indexed_demo), "--tokens", "274"])
    err = capsys.readouterr().err
    assert (
        exit_info.value.code == 2 and "STALE" in err and "dolma-kit index" in err and "Traceback" not in err
    )
    summary = build_index(IndexConfig(tokens=str(indexed_demo), processes=1))
    assert summary.rebuilt_stale and summary.parts_built == len(summary.per_part)
    assert TokenIndex.open(indexed_demo).count([274]) > 0


def test_a_part_replaced_behind_the_manifest_is_stale(indexed_demo: Path) -> None:
    part = indexed_demo / "part-00001.npy"
    part.write_bytes(part.read_bytes()[:-2])
    with pytest.raises(TokenIndexError):
        TokenIndex.open(indexed_demo)


def test_an_interrupted_build_resumes_and_gives_the_same_bytes(indexed_demo: Path) -> None:
    index = indexed_demo / "index"
    before = {p.name: p.read_bytes() for p in index.iterdir() if not p.is_symlink()}
    (index / "index.json").unlink()
    (index / "part-00002.done").unlink()
    (index / "table.00002").write_bytes(b"half")
    with pytest.raises(TokenIndexError, match="unfinished"):
        TokenIndex.open(indexed_demo)
    summary = build_index(IndexConfig(tokens=str(indexed_demo), processes=2))
    assert summary.parts_built == 1 and summary.parts_skipped == len(summary.per_part) - 1
    assert {p.name: p.read_bytes() for p in index.iterdir() if not p.is_symlink()} == before


def test_queries_that_cannot_be_answered_are_one_line(indexed_demo: Path) -> None:
    ix = TokenIndex.open(indexed_demo)
    with pytest.raises(TokenIndexError, match="EOS"):
        ix.count([274, ix.eos_id])
    with pytest.raises(TokenIndexError, match="empty"):
        ix.count([])
    with pytest.raises(TokenIndexError, match="outside"):
        ix.count([70_000])
    with pytest.raises(TokenIndexError, match="no suffix-array index"):
        TokenIndex.open(_unindexed(indexed_demo))


def _unindexed(tokens: Path) -> Path:
    copy = tokens.parent / "plain"
    shutil.copytree(tokens, copy, symlinks=True, ignore=shutil.ignore_patterns("index"))
    return copy


def test_find_cli_table_json_and_ngram_counts(indexed_demo: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ix = TokenIndex.open(indexed_demo)
    parts = _parts(ix)
    result = runner.invoke(app, ["find", " the", "--index", str(indexed_demo), "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["count"] == brute_count(parts, ix.encode(" the")) and len(data["occurrences"]) == 3
    result = runner.invoke(app, ["find", "--index", str(indexed_demo), "--tokens", "274", "-k", "2"])
    assert result.exit_code == 0 and "occurrences of 1 tokens" in result.output
    ngrams = tmp_path / "ngrams.txt"
    ngrams.write_text(" the\n the river\nzzqx never here\n")
    result = runner.invoke(app, ["find", "--index", str(indexed_demo), "--ngrams", str(ngrams)])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["count"] for r in rows] == [brute_count(parts, ix.encode(r["text"])) for r in rows]
    assert rows[2]["count"] == 0


def test_index_cli_reports_tokens_and_bytes(demo_tokens: Path) -> None:
    result = CliRunner().invoke(app, ["index", str(demo_tokens), "--processes", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((demo_tokens / "manifest.json").read_text())
    assert f"{manifest['tokens']:,} tokens in {len(manifest['parts'])} parts" in " ".join(
        result.output.split()
    )
    again = CliRunner().invoke(app, ["index", str(demo_tokens)])
    assert "0 indexed now" in again.output


def test_most_repeated_spans_per_source_equal_a_brute_force_count(tmp_path: Path) -> None:
    from collections import Counter

    from dolma_kit.index.repeats import top_repeats

    root = write_words_corpus(tmp_path, docs=12, words=40)
    for source, footer in (
        ("alpha", "Click here to subscribe to our newsletter today"),
        ("beta", "All rights reserved"),
    ):
        path = root / "documents" / source / "part-0000.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for i, row in enumerate(rows):
            if i % 3:  # in two documents of three
                row["text"] += " " + footer
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tokens = tokenize_corpus(root)
    build_index(IndexConfig(tokens=str(tokens), processes=1))
    ix = TokenIndex.open(tokens)
    length = 5
    brute: dict[str, Counter] = {}
    total: Counter = Counter()
    for p in range(len(ix.tokenized.parts)):
        t = np.asarray(ix.tokenized.tokens(p))
        for s in range(len(t) - length + 1):
            w = tuple(int(x) for x in t[s : s + length])
            if ix.eos_id not in w:
                brute.setdefault(ix.tokenized.locate(p, s).source, Counter())[w] += 1
                total[w] += 1
    found = top_repeats(ix, length=length, top=3, chunk=64)  # small chunks: runs cross chunk edges
    assert set(found) == {"alpha", "beta"}
    for source, rows in found.items():
        best = brute[source].most_common(1)[0][1]
        assert rows[0].source_count == best >= 8
        assert [r.source_count for r in rows] == sorted((r.source_count for r in rows), reverse=True)
        for r in rows:
            assert r.count == total[tuple(r.tokens)] and r.source_count == brute[source][tuple(r.tokens)]
    assert all(
        r.text and r.text in " Click here to subscribe to our newsletter today" for r in found["alpha"]
    )
    result = CliRunner().invoke(app, ["find", "--index", str(tokens), "--repeats", "5", "-k", "2", "--json"])
    assert result.exit_code == 0 and set(json.loads(result.output)) == {"alpha", "beta"}


def test_character_spans_by_byte_counts_equal_those_by_decoding(indexed_demo: Path) -> None:
    """Byte-level tokenizers get character offsets from per-id counts; other tokenizers decode: same spans."""
    fast = TokenIndex.open(indexed_demo)
    slow = TokenIndex.open(indexed_demo)
    assert fast._byte_chars is not None  # the demo tokenizer is byte-level
    slow.__dict__["_byte_chars"] = None
    parts = _parts(fast)
    for q in _queries(parts, fast.eos_id, 40, seed=9):
        assert fast.find(q, limit=10) == slow.find(q, limit=10)


def test_the_report_section_needs_an_up_to_date_index(indexed_demo: Path, demo_tokens: Path) -> None:
    from dolma_kit.index.repeats import report_section

    section = report_section(str(indexed_demo), length=4, top=2)
    assert section is not None and section["length"] == 4 and section["sources"]
    assert all(0 < len(rows) <= 2 for rows in section["sources"].values())
    assert report_section(str(_unindexed(indexed_demo))) is None
    manifest = indexed_demo / "manifest.json"
    manifest.write_text(manifest.read_text() + " ")
    assert report_section(str(indexed_demo)) is None  # stale: left out, not wrong


def test_an_adopted_foreign_folder_is_indexed_from_its_own_token_files(tmp_path: Path) -> None:
    """A folder made by `tokenize-adopt` names its token files (`x.bin`, not `part-<n>.npy`): the index reads
    those, and counts equal a brute-force scan of them."""
    from dolma_kit.tokenize.adopt import AdoptConfig, adopt
    from tests.tokenize.test_adopt import EOS, write_megatron

    folder = tmp_path / "megatron"
    folder.mkdir()
    docs = [[5, 6, 7, EOS], [8, 5, 6, EOS], [9, 5, 6, 7, EOS]]
    adopt(AdoptConfig(files=[str(write_megatron(folder, "shard", docs))], eos_id=EOS))
    build_index(IndexConfig(tokens=str(folder), processes=1))
    ix = TokenIndex.open(folder)
    parts = [np.fromfile(folder / "shard.bin", dtype="<u2")]
    for query in ([5, 6], [5, 6, 7], [8], [9, 5], [4]):
        assert ix.count(query) == brute_count(parts, query), query
