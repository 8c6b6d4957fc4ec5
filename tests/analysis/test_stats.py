"""`dolma-kit stats`: its numbers against counts made here, independently, from the fixture files."""

from __future__ import annotations

import gzip
import json
import math
import os
from collections import Counter
from pathlib import Path

import pytest

from dolma_kit.analysis.counts import LENGTH_EDGES, length_bin
from dolma_kit.analysis.domains import DomainCounter, registered_domain
from dolma_kit.analysis.stages import read_stage_rows, rows_from_summary
from dolma_kit.analysis.stats import StatsConfig, collect_stats
from dolma_kit.errors import DolmaKitError
from tests.analysis.conftest import Pipeline, read_jsonl


def documents_by_source(root: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for path in sorted((root / "documents").glob("*/*.jsonl")):
        out.setdefault(path.parent.name, []).extend(read_jsonl(path))
    return out


def attribute_rows(root: Path, experiment: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for path in sorted((root / "attributes" / experiment).glob("*/*.jsonl")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as fh:
            out.setdefault(path.parent.name, []).extend(json.loads(line) for line in fh)
    return out


def test_documents_bytes_words_per_source(pipeline: Pipeline) -> None:
    stats = pipeline.stats()
    docs = documents_by_source(pipeline.root)
    assert sorted(stats["sources"]) == sorted(docs) == ["forum", "web", "wiki"]
    for source, rows in docs.items():
        s = stats["sources"][source]
        texts = [r["text"] for r in rows]
        assert s["documents"] == len(rows)
        assert s["bytes"] == sum(len(t.encode("utf-8")) for t in texts)
        assert s["chars"] == sum(len(t) for t in texts)
        assert s["words"] == s["tokens"] == sum(len(t.split()) for t in texts)
        assert (s["min_chars"], s["max_chars"]) == (min(map(len, texts)), max(map(len, texts)))
        # bin of n ≥ 1 characters is 1 + floor(4·log10 n): four bins a decade
        expected_hist = Counter(1 + math.floor(4 * math.log10(len(t)) + 1e-9) for t in texts)
        assert {i: n for i, n in enumerate(s["length_hist"]) if n} == dict(expected_hist)
    assert stats["total"]["documents"] == 17
    assert stats["total"]["bytes"] == sum(stats["sources"][s]["bytes"] for s in docs)
    assert stats["tokens"] == {"from": "whitespace words"}


def test_length_bins() -> None:
    assert length_bin(0) == 0
    assert length_bin(1) == 1
    assert length_bin(9) == 4 and length_bin(10) == 5
    assert length_bin(10**9) == len(LENGTH_EDGES) - 1  # open-ended last bin


def test_languages_are_top1_of_the_attributes(pipeline: Pipeline) -> None:
    stats = pipeline.stats()
    for source, rows in attribute_rows(pipeline.root, "demo").items():
        expected: Counter[str] = Counter()
        for row in rows:
            langs = {k.split("__")[2]: v[0][2] for k, v in row["attributes"].items() if "__ft_lang_id__" in k}
            expected[max(langs, key=langs.__getitem__) if langs else "unknown"] += 1
        assert stats["sources"][source]["languages"] == dict(expected)
    # the demo corpus is written in known languages: one Russian forum post, German web pages (one copied)
    assert stats["sources"]["forum"]["languages"]["ru"] == 1
    assert stats["sources"]["web"]["languages"]["de"] == 2
    assert stats["total"]["language_checked"] == 17


def test_pii_counts_match_the_spans_tag_wrote(pipeline: Pipeline) -> None:
    stats = pipeline.stats()
    for source, rows in attribute_rows(pipeline.root, "demo").items():
        spans: Counter[str] = Counter()
        documents: Counter[str] = Counter()
        for row in rows:
            for kind in ("email_address", "phone_number", "ip_address"):
                n = len(row["attributes"].get(f"demo__pii__{kind}", []))
                spans[kind] += n
                documents[kind] += n > 0
        got = stats["sources"][source]["pii"]
        assert {k: v["spans"] for k, v in got.items()} == {k: v for k, v in spans.items() if v}
        assert {k: v["documents"] for k, v in got.items()} == {k: v for k, v in documents.items() if v}
    # planted in the demo shards (web-0001: an email and a phone number) and copied once by the fixture
    assert stats["total"]["pii"]["email_address"]["spans"] == 5
    assert stats["total"]["pii_checked"] == 17


def test_duplicate_and_contamination_rates(pipeline: Pipeline) -> None:
    stats = pipeline.stats()
    web = stats["sources"]["web"]
    # the fixture copies two web pages exactly: both dedups mark the copies, nothing else
    assert web["duplicates"]["dedup_text/exact_text"] == {"documents": 2, "checked": 9}
    assert web["duplicates"]["dedup_mh/minhash"] == {"documents": 2, "checked": 9}
    assert stats["sources"]["wiki"]["duplicates"]["dedup_text/exact_text"] == {"documents": 0, "checked": 4}
    assert stats["total"]["contamination"]["dc"] == {"documents": 2, "paragraphs": 2, "checked": 17}
    assert stats["sources"]["forum"]["contamination"]["dc"]["documents"] == 1


def test_domains(pipeline: Pipeline) -> None:
    domains = pipeline.stats()["total"]["domains"]
    assert domains["counts"]["harbour.co.uk"] == 2  # news. and sport. subdomains of one registered domain
    assert domains["counts"]["millstone-bakery.example"] == 2
    assert domains["approximate"] is False
    assert pipeline.stats()["total"]["with_url"] == 9


def test_stage_rows_are_the_summaries(pipeline: Pipeline) -> None:
    stats = pipeline.stats()
    stages = {(r["stage"], r["scope"]): r for r in stats["stages"]}
    assert [r["stage"] for r in stats["stages"]] == [
        "tag",
        "dedup exact",
        "dedup minhash",
        "decontaminate",
        "mix",
    ]
    tag = json.loads((pipeline.root / "attributes" / "demo" / "tag_summary.json").read_text())["total"]
    assert stages["tag", "demo"]["documents_in"] == tag["documents_in"] == 17
    mix = json.loads((pipeline.mixed / "documents" / "mix_summary.json").read_text())["streams"][0]
    row = stages["mix", "all"]
    assert (row["documents_in"], row["kept"], row["removed"], row["rejected"]) == (
        mix["documents_in"],
        mix["kept"],
        mix["removed"],
        mix["rejected"],
    )
    assert row["removed_by"]["exact duplicate"] == 2 and row["removed_by"]["contaminated"] == 2
    assert all(r["balanced"] for r in stats["stages"])
    assert stats["stage_summaries_skipped"] == []


def test_stage_reader_is_tolerant(tmp_path: Path) -> None:
    odd = tmp_path / "odd_summary.json"
    odd.write_text(json.dumps({"something": "else"}))
    broken = tmp_path / "broken_summary.json"
    broken.write_text("{not json")
    rows, skipped = read_stage_rows([str(odd), str(broken)])
    assert rows == [] and [s["path"] for s in skipped] == [str(odd), str(broken)]
    manifest = {
        "format": "dolma-kit.tokenized/1",
        "input_documents": 10,
        "documents": 8,
        "empty_documents_skipped": 1,
        "rejected_documents": 1,
        "tokens": 99,
    }
    (row,) = rows_from_summary("tok/manifest.json", manifest)
    assert (row.stage, row.kept, row.removed, row.rejected, row.balanced) == ("tokenize", 8, 1, 1, True)


def test_registered_domain() -> None:
    assert registered_domain("https://www.news.bbc.co.uk/a?b=1") == "bbc.co.uk"
    assert registered_domain("http://a.b.example.com:8080/x") == "example.com"
    assert registered_domain("HTTPS://WWW.Example.COM./") == "example.com"
    assert registered_domain("example.org/path") == "example.org"
    assert registered_domain("http://192.168.0.1/admin") == "192.168.0.1"
    assert registered_domain("https://localhost/") is None
    assert registered_domain("not a url") is None
    assert registered_domain("http://[broken") is None


def test_domain_counter_bound() -> None:
    """Pruned counts are lower bounds within `error_bound`; heavy domains survive pruning."""
    true: Counter[str] = Counter()
    counter = DomainCounter(capacity=10)
    for i in range(2000):
        domain = f"heavy{i % 3}.com" if i % 4 == 0 else f"tail{i}.com"
        true[domain] += 1
        counter.add(domain)
    assert counter.approximate and len(counter.counts) <= 20
    for domain, n in counter.counts.items():
        assert n <= true[domain] <= n + counter.error_bound
    assert {d for d, _ in counter.top(3)} == {"heavy0.com", "heavy1.com", "heavy2.com"}
    exact = DomainCounter(capacity=10)
    exact.update([("a.com", 3), ("b.com", 1)])
    merged = DomainCounter(capacity=10)
    merged.merge(exact.to_json())
    merged.merge(exact)
    assert merged.counts == {"a.com": 6, "b.com": 2} and not merged.approximate
    listed = merged.to_json(limit=1)
    assert listed["counts"] == {"a.com": 6} and listed["distinct"] == 2 and not listed["approximate"]


def test_rerun_reuses_partials_and_recounts_changed_shards(pipeline: Pipeline, tmp_path: Path) -> None:
    config = StatsConfig(root=str(pipeline.root), output=str(tmp_path / "out"), processes=1)
    first = collect_stats(config)
    second = collect_stats(config)
    assert {s.status for s in second.run.shards} == {"skipped"}
    assert second.data == first.data
    attr = next((pipeline.root / "attributes" / "demo" / "wiki").glob("*.jsonl"))
    st = attr.stat()
    os.utime(attr, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    third = collect_stats(config)
    assert [s.shard.split("/")[0] for s in third.run.shards if s.status == "done"] == ["wiki"]
    assert third.data == first.data


def test_selected_experiments_and_errors(pipeline: Pipeline, tmp_path: Path) -> None:
    data = collect_stats(
        StatsConfig(root=str(pipeline.root), attributes=["dc"], output=str(tmp_path / "o"), processes=1)
    ).data
    assert data["experiments_read"] == ["dc"]
    assert data["total"]["language_checked"] == 0 and data["total"]["contamination"]["dc"]["documents"] == 2
    with pytest.raises(DolmaKitError, match="--attributes nope"):
        collect_stats(StatsConfig(root=str(pipeline.root), attributes=["nope"], output=str(tmp_path / "p")))
    with pytest.raises(DolmaKitError, match="no documents"):
        collect_stats(StatsConfig(root=str(tmp_path), output=str(tmp_path / "q")))


def test_misaligned_attributes_are_an_error(pipeline: Pipeline, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "corpus"
    shutil.copytree(pipeline.root / "documents", root / "documents")
    shutil.copytree(pipeline.root / "attributes" / "dc", root / "attributes" / "dc")
    wiki = next((root / "attributes" / "dc" / "wiki").glob("*.jsonl"))
    wiki.write_text("".join(wiki.read_text().splitlines(keepends=True)[:-1]))  # drop the last line
    with pytest.raises(DolmaKitError, match="no line where"):
        collect_stats(StatsConfig(root=str(root), processes=1))


def test_tokens_from_a_tokenized_folder(corpus: Path, tokenized_demo: Path, tmp_path: Path) -> None:
    manifest = json.loads((tokenized_demo / "manifest.json").read_text())
    data = collect_stats(
        StatsConfig(root=str(corpus), tokenized=str(tokenized_demo), output=str(tmp_path / "o"), processes=1)
    ).data
    assert data["tokens"]["from"] == "tokenized manifest" and data["tokens"]["total"] == manifest["tokens"]
    for source, counts in manifest["per_source"].items():
        assert data["sources"][source]["tokens"] == counts["tokens"]
    (row,) = [r for r in data["stages"] if r["stage"] == "tokenize"]
    assert (row["documents_in"], row["kept"], row["balanced"]) == (12, manifest["documents"], True)


def test_skip_bad_keeps_attributes_aligned(tmp_path: Path) -> None:
    from dolma_kit.taggers.stage import TagConfig, tag
    from tests.conftest import write_lines

    rows = [
        {"id": "a", "text": "mail me at a@b.org"},
        b"{broken",
        {"id": "c", "text": "call 555 201 3344 now"},
    ]
    write_lines(tmp_path / "documents" / "web" / "p.jsonl", rows)
    tag(
        TagConfig(documents=[str(tmp_path / "documents/*/*")], experiment="t", taggers=["pii"], skip_bad=True)
    )
    with pytest.raises(DolmaKitError, match=r"p\.jsonl:2"):
        collect_stats(StatsConfig(root=str(tmp_path), processes=1))
    web = collect_stats(StatsConfig(root=str(tmp_path), processes=1, skip_bad=True, force=True)).data[
        "sources"
    ]["web"]
    assert (web["documents"], web["rejected"], web["pii_checked"]) == (2, 1, 2)
    assert web["pii"]["email_address"] == {"spans": 1, "documents": 1}


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".parquet"])
def test_any_document_format(tmp_path: Path, suffix: str) -> None:
    from dolma_kit.taggers.stage import TagConfig, tag
    from tests.conftest import corpus_documents, write_corpus

    root = write_corpus(tmp_path, suffix)
    tag(TagConfig(documents=[str(root / "documents/*/*")], experiment="t", taggers=["pii"], processes=1))
    data = collect_stats(StatsConfig(root=str(root), processes=1)).data
    for source, docs in corpus_documents().items():
        assert data["sources"][source]["documents"] == len(docs)
        assert data["sources"][source]["bytes"] == sum(len(d.text.encode()) for d in docs)
    assert data["total"]["pii"]["email_address"]["spans"] == 3 and data["experiments_read"] == ["t"]
