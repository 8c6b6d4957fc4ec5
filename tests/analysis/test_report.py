"""report.html: self-contained, every section present, its numbers those of stats.json and the summaries."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

from dolma_kit.analysis.report import build_report, render_report_file
from dolma_kit.analysis.report_html import SECTIONS
from dolma_kit.analysis.stats import StatsConfig
from tests.analysis.conftest import Pipeline

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
    (table,) = parse(pipeline.html()).tables["stages"]
    header, *rows = table
    assert header[:7] == [
        "stage",
        "scope",
        "in",
        "kept",
        "removed",
        "rejected",
        "in = kept + removed + rejected",
    ]
    got = {(r[0], r[1]): r for r in rows}
    summaries = {
        ("tag", "demo"): pipeline.root / "attributes" / "demo" / "tag_summary.json",
        ("dedup exact", "dedup_text"): pipeline.root
        / "attributes"
        / "dedup_text"
        / "dedup_exact_summary.json",
        ("dedup minhash", "dedup_mh"): pipeline.root
        / "attributes"
        / "dedup_mh"
        / "dedup_minhash_summary.json",
        ("decontaminate", "dc"): pipeline.root / "attributes" / "dc" / "decontaminate_summary.json",
    }
    for key, path in summaries.items():
        t = json.loads(path.read_text())["total"]
        assert got[key][2:7] == [n(t["documents_in"]), n(t["kept"]), n(t["removed"]), n(t["rejected"]), "✓"]
    mix = json.loads((pipeline.mixed / "documents" / "mix_summary.json").read_text())["streams"][0]
    assert got["mix", "all"][2:6] == [n(mix[k]) for k in ("documents_in", "kept", "removed", "rejected")]
    assert "exact duplicate: 2" in got["mix", "all"][7]


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
    ):
        assert hint in html
    assert parse(html).tables["overview"][0][-1][1] == n(12)
    rebuilt = tmp_path / "again.html"
    render_report_file(report.stats_path, str(rebuilt))
    assert rebuilt.read_text() == html  # the page is a function of stats.json alone
