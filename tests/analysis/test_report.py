"""report.html: self-contained, every section present, its numbers those of stats.json and the summaries."""

from __future__ import annotations

import base64
import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dolma_kit.analysis import training as training_module
from dolma_kit.analysis.report import build_report, render_report_file
from dolma_kit.analysis.report_html import SECTIONS
from dolma_kit.analysis.report_parts import num
from dolma_kit.analysis.stats import StatsConfig
from dolma_kit.errors import DolmaKitError
from tests.analysis.conftest import Pipeline, read_jsonl
from tests.conftest import write_lines

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Tables(HTMLParser):
    """Collects each section's tables as rows of cell texts, and the image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.section = ""
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.images: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.section = a["id"] or ""
        elif tag == "table":
            self.tables.setdefault(self.section, []).append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a["src"] or "")

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self.section][-1].append(self._row)
            self._row = None


def parse(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


def n(value: int) -> str:
    return f"{value:,}"


def test_every_section_and_self_contained(pipeline: Pipeline) -> None:
    html = pipeline.html()
    for key in SECTIONS:
        assert f'<section id="{key}">' in html
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["'](https?:|//)""", html), "the page must not load anything"
    assert 'class="empty"' not in html  # the fixture pipeline provides data for every section


def test_pngs_are_valid(pipeline: Pipeline) -> None:
    images = parse(pipeline.html()).images
    assert len(images) >= 8  # sources, lengths, languages, domains, duplicates, pii, stages, waterfalls
    for src in images:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")


def test_overview_numbers_match_stats_json(pipeline: Pipeline) -> None:
    stats = pipeline.stats()
    (table,) = parse(pipeline.html()).tables["overview"]
    header, *rows = table
    assert header[:3] == ["source", "documents", "rejected"]
    by_source = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    for source, s in [*stats["sources"].items(), ("total", stats["total"])]:
        row = by_source[source]
        assert (row["documents"], row["bytes"], row["words"]) == (
            n(s["documents"]),
            n(s["bytes"]),
            n(s["words"]),
        )


def test_section_numbers_match_stats_json(pipeline: Pipeline) -> None:
    stats, tables = pipeline.stats(), parse(pipeline.html()).tables
    languages = {row[0]: row for row in tables["languages"][0][1:]}
    for lang, count in stats["total"]["languages"].items():
        assert languages[lang][-2] == n(count)
    domains = {row[1]: row[2] for row in tables["domains"][0][1:]}
    assert domains == {d: n(c) for d, c in stats["total"]["domains"]["counts"].items()}
    dups = {(row[0], row[1]): row[2:4] for row in tables["duplicates"][0][1:]}
    for method, c in stats["total"]["duplicates"].items():
        assert dups[method, "total"] == [n(c["documents"]), n(c["checked"])]
    pii = {(row[0], row[1]): row[2] for row in tables["pii"][0][1:]}
    for kind, c in stats["sources"]["web"]["pii"].items():
        assert pii[kind, "web"] == n(c["spans"])
    contamination = {(row[0], row[1]): row[2] for row in tables["contamination"][0][1:]}
    assert contamination["dc", "total"] == n(stats["total"]["contamination"]["dc"]["documents"])


def test_stage_table_matches_the_summaries(pipeline: Pipeline) -> None:
    header, *rows = parse(pipeline.html()).tables["stages"][0]
    assert header == ["stage", "scope", "does", "in", "flagged", "spans", "removed", "rejected", "kept",
                      "written", "MB written", "adds up", "details"]  # fmt: skip
    got = {(r[0], r[1]): dict(zip(header, r, strict=True)) for r in rows}
    attributes = pipeline.root / "attributes"
    summaries = {
        ("tag", "demo"): attributes / "demo" / "tag_summary.json",
        ("dedup exact", "dedup_text"): attributes / "dedup_text" / "dedup_exact_summary.json",
        ("dedup minhash", "dedup_mh"): attributes / "dedup_mh" / "dedup_minhash_summary.json",
        ("decontaminate", "dc"): attributes / "dc" / "decontaminate_summary.json",
    }
    for key, path in summaries.items():
        t = json.loads(path.read_text())["total"]
        row = got[key]
        # marking stages remove nothing: all documents are passed on, what the summary counts as "removed"
        # (what mix may drop) is shown as flagged
        assert (row["does"], row["in"], row["removed"], row["rejected"], row["kept"], row["adds up"]) == (
            "marks",
            n(t["documents_in"]),
            "–",
            n(t["rejected"]),
            n(t["documents_in"] - t["rejected"]),
            "✓",
        )
        if key[0] != "tag":
            assert row["flagged"] == n(t["removed"])
    mix = json.loads((pipeline.mixed / "documents" / "mix_summary.json").read_text())["streams"][0]
    row = got["mix", "all"]
    assert [row[k] for k in ("in", "kept", "removed", "rejected")] == [
        n(mix[k]) for k in ("documents_in", "kept", "removed", "rejected")
    ]
    assert (row["does"], row["written"], row["MB written"]) == (
        "removes",
        n(mix["documents_out"]),
        num(round(mix["bytes_out"] / 1e6, 3)),
    )
    assert row["spans"] == n(sum(mix["spans_replaced"].values()))
    assert "exact duplicate: 2" in row["details"]


def test_marked_spans_come_from_the_attributes(pipeline: Pipeline) -> None:
    """PII spans and contaminated paragraphs are counted from the attribute files, per marking stage."""
    stats = pipeline.stats()
    rows = {(r["stage"], r["scope"]): r for r in stats["stages"]}
    total = stats["total"]
    assert rows["tag", "demo"]["flagged"] == total["pii_documents"] > 0
    assert rows["tag", "demo"]["spans"] == sum(c["spans"] for c in total["pii"].values())
    assert total["pii_documents"] <= sum(c["documents"] for c in total["pii"].values())
    dc = rows["decontaminate", "dc"]
    assert (dc["flagged"], dc["spans"]) == (dc["removed"], total["contamination"]["dc"]["paragraphs"])
    assert {r["action"] for r in stats["stages"]} == {"marks", "removes"}
    html_rows = {(r[0], r[1]): r for r in parse(pipeline.html()).tables["stages"][0][1:]}
    assert html_rows["tag", "demo"][4:6] == [n(total["pii_documents"]), n(rows["tag", "demo"]["spans"])]


def test_domains_per_source(pipeline: Pipeline) -> None:
    stats = pipeline.stats()
    _, *per_source = parse(pipeline.html()).tables["domains"]
    with_url = [name for name, s in stats["sources"].items() if s["with_url"]]
    assert len(per_source) == len(with_url) >= 1  # a source without URLs gets no table
    for name, (header, *rows) in zip(with_url, per_source, strict=True):
        assert header == ["domain", "docs", "share"]
        top = list(stats["sources"][name]["domains"]["counts"].items())[:8]
        assert [(r[0], r[1]) for r in rows] == [(d, n(c)) for d, c in top]


def test_training_section_matches_metrics_jsonl(pipeline: Pipeline) -> None:
    records = read_jsonl(pipeline.run / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    training = pipeline.stats()["training"]
    assert [r["loss"] for r in training["train"]] == [r["loss"] for r in train]
    assert training["eval"] == [
        {k: r[k] for k in ("step", "eval_loss", "eval_ppl", "eval_by_source")} for r in evals
    ]
    assert training["tokens_by_source"] is None  # no data order in this hand-written run
    key, per_source, evaluations = parse(pipeline.html()).tables["training"]
    numbers = {row[0]: row[1] for row in key[1:]}
    assert numbers["first logged train loss"] == num(train[0]["loss"])
    assert numbers["last train loss"] == num(train[-1]["loss"])
    assert numbers["tokens seen"] == n(train[-1]["tokens_seen"])
    assert numbers["learning rate (last)"] == num(train[-1]["lr"])
    assert numbers["tokens / s (median of logged steps)"] == num(
        statistics.median(r["tokens_per_s"] for r in train)
    )
    assert numbers["held-out loss (last evaluation)"] == num(evals[-1]["eval_loss"])
    assert numbers["held-out perplexity"] == num(evals[-1]["eval_ppl"])
    header, *rows = per_source
    by_source = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    for source in ("web", "wiki", "forum"):
        newest = next(
            r["loss_by_source"][source] for r in reversed(train) if r["loss_by_source"][source] is not None
        )
        assert by_source[source]["train loss (last)"] == num(newest)
        held_out = evals[-1]["eval_by_source"].get(source)
        if held_out:
            assert [by_source[source][k] for k in ("held-out loss", "held-out ppl", "held-out tokens")] == [
                num(held_out["loss"]),
                num(held_out["ppl"]),
                n(held_out["tokens"]),
            ]
    assert by_source["wiki"]["train loss (last)"] == "5.75"  # step 3 had no wiki token: step 2's value
    header, *rows = evaluations
    assert header == ["step", "held-out loss", "perplexity", "web loss", "wiki loss"]
    assert rows == [[n(e["step"]), num(e["eval_loss"]), num(e["eval_ppl"]),
                     *(num(e["eval_by_source"][s]["loss"]) for s in ("web", "wiki"))] for e in evals]  # fmt: skip
    train_row = next(r for r in parse(pipeline.html()).tables["stages"][0] if r[0] == "train")
    assert f"{train[-1]['step']:,} steps, {train[-1]['tokens_seen']:,} tokens" in train_row[-1]


def test_training_records_are_thinned_evenly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training_module, "MAX_TRAIN_RECORDS", 5)
    rows = [{"kind": "train", "step": s, "loss": 10 - s / 10, "tokens_seen": s * 8} for s in range(1, 22)]
    write_lines(tmp_path / "metrics.jsonl", rows)
    run = training_module.read_run(str(tmp_path))
    assert run["thinned"] and run["train_records"] == 21
    assert [r["step"] for r in run["train"]] == [1, 6, 11, 16, 21]  # first and last kept, evenly between
    assert run["settings"] == {}  # no config.yaml: the section still renders
    with pytest.raises(DolmaKitError, match=r"no metrics\.jsonl"):
        training_module.read_run(str(tmp_path / "missing"))


def test_corpus_without_attributes_says_what_to_run(tmp_path: Path, corpus: Path) -> None:
    report = build_report(StatsConfig(root=str(corpus), processes=1))
    assert report.html_path == str(corpus / "report" / "report.html")
    html = Path(report.html_path).read_text()
    for hint in (
        "dolma-kit tag --taggers ft_lang_id",
        "dolma-kit dedup exact",
        "dolma-kit tag --taggers pii",
        "dolma-kit decontaminate",
        "No stage summaries",
        "dolma-kit stats --run RUN",
    ):
        assert hint in html
    assert parse(html).tables["overview"][0][-1][1] == n(12)
    rebuilt = tmp_path / "again.html"
    render_report_file(report.stats_path, str(rebuilt))
    assert rebuilt.read_text() == html  # the page is a function of stats.json alone


def test_a_version_1_stats_json_still_renders(tmp_path: Path, pipeline: Pipeline) -> None:
    """stats.json written before marking stages had flags (version 1): `render_report_file` still reads it."""
    old = pipeline.stats()
    for row in old["stages"]:
        for key in ("action", "flagged", "flagged_what", "spans", "spans_what", "passed_on", "written"):
            row.pop(key)
    del old["tokenizer"], old["training"]
    (tmp_path / "stats.json").write_text(json.dumps(old))
    render_report_file(str(tmp_path / "stats.json"), str(tmp_path / "report.html"))
    rows = {(r[0], r[1]): r for r in parse((tmp_path / "report.html").read_text()).tables["stages"][0][1:]}
    assert rows["dedup exact", "dedup_text"][2:7] == ["marks", "17", "2", "", "–"]


def test_a_source_without_held_out_tokens_renders_as_a_gap(tmp_path: Path) -> None:
    """The trainer writes `loss: null` for a source with no held-out tokens (every source is reported): the
    training section draws a gap and an empty cell there, it does not fail on None."""
    from dolma_kit.analysis import report_training

    rows = [
        {"kind": "train", "step": s, "loss": 5.0 - s / 10, "lr": 1e-3, "tokens_seen": s * 8} for s in (1, 2)
    ]
    rows += [
        {
            "kind": "eval",
            "step": s,
            "eval_loss": 4.0,
            "eval_ppl": 54.6,
            "eval_by_source": {"web": {"loss": 4.0, "ppl": 54.6}, "code": {"loss": None, "ppl": None}},
        }
        for s in (1, 2)
    ]
    write_lines(tmp_path / "metrics.jsonl", rows)
    run = training_module.read_run(str(tmp_path))
    html = report_training.training({"training": run, "tokens": {}})
    assert "code loss" in html and "None" not in html
