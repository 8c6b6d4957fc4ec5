"""The report's quality-rule breakdown (which Gopher / C4 rule failed) and MinHash cluster sections.

A dozen hand-written documents, each failing known rules, are tagged with `gopher` (under a non-default
`min_words`, so the test sees the recorded thresholds used) and `c4`, and deduplicated with MinHash; `stats`
runs once over them. Its counts are checked against a direct computation from the attribute rows.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dolma_kit import attributes
from dolma_kit.analysis.report import render_report_file
from dolma_kit.analysis.report_quality import GOPHER_FAMILIES, render_quality
from dolma_kit.analysis.stats import StatsConfig, collect_stats
from dolma_kit.cli import app
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.gopher import MEASURES, GopherConfig, failed_rules
from tests.analysis.conftest import invoke
from tests.conftest import write_lines

PROSE = (
    "The river town kept its market open through the winter, and the bakers sold bread to travellers. "
    "Every morning the ferry crossed to the northern bank with letters, tools and a few sleepy passengers. "
    "Children walked to the school beside the mill, where an old teacher told them stories of the floods. "
    "In spring the fields turned green again, and the farmers argued about the price of seed at the inn. "
    "Nobody remembers who built the stone bridge, but everyone agrees that it has outlived three kings."
)
WORDS = PROSE.split()
STOP = {"the", "be", "to", "of", "and", "that", "have", "with"}
DOCUMENTS = {
    "web": {
        "good": PROSE,  # passes everything
        "short": " ".join(WORDS[:45]) + ".",  # 45 words: passes min_words=40, would fail the default 50
        "curly": PROSE + " The recipe {sugar} was lost.",  # C4 has_curly_brace only
        "lorem": PROSE + " Lorem ipsum dolor sit amet, the printers wrote.",  # C4 has_lorem_ipsum only
        "hashes": PROSE + " " + " ".join(["#tag"] * 20),  # Gopher symbols and repeated n-grams
        "near": PROSE.replace("winter", "summer"),  # a near duplicate of `good`
    },
    "forum": {
        "tiny": "The cat sat on the mat. It was happy. Then it left the room.",  # word_count + stop words
        "nostop": " ".join(w for w in WORDS if w.lower().strip(".,") not in STOP),  # required_word_count only
        "lists": "\n".join(f"- item {w} and more" for w in WORDS[:60]),  # bullets, repetition; C4 drops all
        "empty": "",
        "copy": PROSE,  # an exact copy of `good`, first in (source, shard, line) order: the kept one
    },
}
GOPHER = GopherConfig(min_words=40)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("quality") / "corpus"
    for source, docs in DOCUMENTS.items():
        rows = [{"id": i, "text": t, "source": source} for i, t in docs.items()]
        write_lines(root / "documents" / source / "part-0000.jsonl", rows)
    docs = str(root / "documents" / "*" / "*.jsonl")
    invoke(["tag", "-d", docs, "-e", "q", "--taggers", "gopher:min_words=40", "c4", "-p", "1"])
    invoke(["dedup", "minhash", "-d", docs, "-e", "mh", "-p", "1"])
    invoke(["stats", str(root), "-o", str(root / "report"), "-p", "1"])
    return root


def stats(root: Path) -> dict:
    return json.loads((root / "report" / "stats.json").read_text())


def attribute_rows(root: Path, exp: str) -> dict[str, list[dict]]:
    out = {}
    for path in sorted((root / "attributes" / exp).glob("*/*.jsonl")):
        out[path.parent.name] = [json.loads(line) for line in path.read_text().splitlines()]
    return out


def direct_gopher(root: Path) -> dict[str, Counter[str]]:
    """Per source: documents failing each rule and failing only it, straight from the rows."""
    out = {}
    for source, rows in attribute_rows(root, "q").items():
        c: Counter[str] = Counter()
        for row in rows:
            measures = {m: row["attributes"][f"q__gopher__{m}"][0][2] for m in MEASURES}
            failed = failed_rules(measures, GOPHER)
            c["checked"] += 1
            c["failed"] += bool(failed)
            for rule in failed:
                c[f"fail:{rule}"] += 1
            if len(failed) == 1:
                c[f"only:{failed[0]}"] += 1
            for family, members in GOPHER_FAMILIES.items():
                hits = [r for r in failed if r in members]
                c[f"fail:{family}"] += bool(hits)
                c[f"only:{family}"] += bool(hits) and len(hits) == len(failed)
        out[source] = +c
    return out


def test_gopher_counts_per_rule_equal_a_direct_computation(corpus: Path) -> None:
    data = stats(corpus)
    expected = direct_gopher(corpus)
    for source, counts in expected.items():
        assert data["sources"][source]["quality"]["q/gopher"] == dict(counts), source
    total = data["total"]["quality"]["q/gopher"]
    assert total["checked"] == 11 and total["failed"] == sum(c["failed"] for c in expected.values())
    # the thresholds are the experiment's: 45 words pass min_words=40 (the default 50 would fail them)
    assert data["quality"]["q/gopher"]["thresholds"]["word_count"] == "40–100,000 words"
    assert data["quality"]["q/gopher"]["thresholds_from"] == "attributes_schema.json"
    assert "pass_disagrees" not in total


def test_the_families_group_the_repetition_rules() -> None:
    fam = GOPHER_FAMILIES
    assert fam["family:duplicate_5_to_10grams"] == tuple(
        f"fraction_of_characters_in_duplicate_{n}grams" for n in range(5, 11)
    )
    assert fam["family:most_common_2_to_4grams"] == tuple(
        f"fraction_of_characters_in_most_common_{n}grams" for n in range(2, 5)
    )
    assert fam["family:repeated_lines_or_paragraphs"] == (
        "fraction_of_duplicate_lines",
        "fraction_of_duplicate_paragraphs",
        "fraction_of_characters_in_duplicate_lines",
        "fraction_of_characters_in_duplicate_paragraphs",
    )


def test_only_this_rule_names_the_documents_a_relaxed_threshold_keeps(corpus: Path) -> None:
    forum = stats(corpus)["sources"]["forum"]["quality"]["q/gopher"]
    assert forum["only:required_word_count"] == 1  # `nostop`
    assert forum["fail:required_word_count"] == 3  # `nostop`, `tiny`, `empty`
    assert "only:word_count" not in forum  # `tiny` and `empty` fail other rules too
    web = stats(corpus)["sources"]["web"]["quality"]["q/gopher"]
    assert web["failed"] == 1 and "only:symbol_to_word_ratio" not in web  # `hashes`, with the n-gram rules
    assert web["fail:family:duplicate_5_to_10grams"] == 1


def test_c4_flags_and_line_reasons(corpus: Path) -> None:
    data = stats(corpus)
    web, forum = (data["sources"][s]["quality"]["q/c4"] for s in ("web", "forum"))
    assert web["only:has_curly_brace"] == web["fail:has_curly_brace"] == 1
    assert web["only:has_lorem_ipsum"] == 1
    # `lists`: every line lacks terminal punctuation, so nothing is kept and too few sentences remain; `empty`
    # has no line to keep
    assert forum["fail:no_kept_lines"] == forum["fail:too_few_sentences"] == 2
    assert "only:no_kept_lines" not in forum
    assert forum["lines:line_no_terminal_punct"] == 60 and forum["line_docs:line_no_terminal_punct"] == 1
    for source, rows in attribute_rows(corpus, "q").items():
        counts = data["sources"][source]["quality"]["q/c4"]
        assert counts["failed"] == sum(r["attributes"]["q__c4__pass"][0][2] == 0 for r in rows)
        spans = sum(len(r["attributes"].get("q__c4__line_too_few_words", [])) for r in rows)
        assert counts.get("lines:line_too_few_words", 0) == spans
    assert data["quality"]["q/c4"]["rules"] == [
        "no_kept_lines",
        "too_few_sentences",
        "has_lorem_ipsum",
        "has_curly_brace",
    ]  # fmt: skip  (no bad-words list)


def test_the_page_has_the_rule_rows_and_rebuilds_from_stats_json(corpus: Path) -> None:
    html = (corpus / "report" / "report.html").read_text()
    assert '<section id="quality">' in html and "<code>required_word_count</code>" in html
    assert "40–100,000 words" in html and "<code>has_curly_brace</code>" in html
    assert "q/gopher" in html and "only this rule" in html
    rebuilt = corpus / "report" / "rebuilt.html"
    render_report_file(str(corpus / "report" / "stats.json"), str(rebuilt))
    assert rebuilt.read_text() == html
    assert "Run `dolma-kit tag --taggers gopher c4`" in render_quality({"sources": {}, "total": {}})


def test_minhash_section_shows_example_clusters(corpus: Path) -> None:
    data = stats(corpus)
    block = data["minhash_clusters"]["mh"]
    report = json.loads((corpus / "attributes" / "mh" / "dedup_minhash_report.json").read_text())
    assert block["examples"] == report["examples"] and block["cluster_size_histogram"]
    (example,) = block["examples"]  # `good` and its copy, near copy and the pages that extend it
    members = {m["id"]: m for m in example["members"]}
    assert example["size"] == 6 and len(members) == 5  # the report JSON keeps five members a cluster
    assert {"good", "copy"} <= set(members) and members["copy"]["kept"] and not members["good"]["kept"]
    html = (corpus / "report" / "report.html").read_text()
    section = html.split('<section id="minhash_clusters">')[1].split("</section>")[0]
    assert "<h3>mh</h3>" in section and section.count("kept</span>") == 1
    assert "6 documents, 5 shown" in section and section.count("<td>duplicate</td>") == 4
    assert "forum/part-0000.jsonl:5" in section  # `copy`: shard and line
    assert PROSE[:60] in section


def test_long_lines_read_off_their_bytes_give_the_same_counts(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines over `SCAN_BYTES` come as span summaries, not parsed spans: the rules read both alike."""
    monkeypatch.setattr(attributes, "SCAN_BYTES", 0)
    out = collect_stats(StatsConfig(root=str(corpus), output=str(tmp_path / "r"), processes=1)).data
    assert out["total"]["quality"] == stats(corpus)["total"]["quality"]
    assert out["sources"]["forum"]["quality"] == stats(corpus)["sources"]["forum"]["quality"]


def test_a_written_pass_that_disagrees_with_the_recorded_thresholds_is_flagged(
    corpus: Path, tmp_path: Path
) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(corpus / "documents", root / "documents")
    shutil.copytree(corpus / "attributes" / "q", root / "attributes" / "q")
    schema = root / "attributes" / "q" / "attributes_schema.json"
    data = json.loads(schema.read_text())
    data["taggers"]["gopher"]["config"]["min_required_words"] = 0  # not what `pass` was computed under
    schema.write_text(json.dumps(data))
    out = collect_stats(StatsConfig(root=str(root), output=str(tmp_path / "r"), processes=1)).data
    # `nostop` failed on stop words alone: under the schema's thresholds no rule fails, yet `pass` is 0
    assert out["total"]["quality"]["q/gopher"]["pass_disagrees"] == 1
    assert "disagrees with these thresholds" in render_quality(out)


def test_a_schema_that_is_not_json_names_the_file(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(corpus / "documents", root / "documents")
    (root / "attributes" / "q").mkdir(parents=True)
    (root / "attributes" / "q" / "attributes_schema.json").write_text("{not json")
    with pytest.raises(DolmaKitError, match=r"q/attributes_schema\.json: not an attributes schema"):
        collect_stats(StatsConfig(root=str(root), output=str(tmp_path / "r"), processes=1))


def test_a_malformed_gopher_span_is_a_bad_record_with_file_and_line(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    shutil.copytree(corpus / "documents", root / "documents")
    rows = attribute_rows(corpus, "q")["web"]
    rows[1]["attributes"]["q__gopher__pass"] = [[0, 5]]  # no score
    write_lines(root / "attributes" / "q" / "web" / "part-0000.jsonl", rows)
    shutil.copy(corpus / "attributes" / "q" / "attributes_schema.json", root / "attributes" / "q")
    with pytest.raises(DolmaKitError, match=r"web/part-0000\.jsonl:2"):
        collect_stats(StatsConfig(root=str(root), output=str(tmp_path / "r"), processes=1, attributes=["q"]))


def test_show_names_the_rules_one_document_fails(corpus: Path) -> None:
    """`dolma-kit show` says why `pass` is 0 for one document, under the recorded `min_words=40`: `short` (45
    words) passes Gopher although the default 50-word minimum would fail it."""
    from dolma_kit.analysis.show import show_document

    def failed(doc_id: str) -> dict[str, list[str]]:
        (occ,) = show_document(doc_id, root=str(corpus))["occurrences"]
        (exp,) = [e for e in occ["experiments"] if e["experiment"] == "q"]
        return exp["quality_rules_failed"]

    assert failed("nostop")["gopher"] == ["required_word_count"]
    assert failed("short")["gopher"] == []
    assert failed("curly")["c4"] == ["has_curly_brace"]
    result = CliRunner().invoke(app, ["show", "nostop", "--root", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "gopher fails required_word_count" in result.output
