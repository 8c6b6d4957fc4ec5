"""stats and decontaminate on s3:// (documents, attributes, work files and the report), via a local moto server."""

from __future__ import annotations

import json
from pathlib import Path

from dolma_kit import storage
from dolma_kit.analysis.decontam import DecontamConfig, decontaminate
from dolma_kit.analysis.report import build_report
from dolma_kit.analysis.stats import StatsConfig
from dolma_kit.taggers.stage import TagConfig, tag
from tests.analysis.conftest import LEAK
from tests.conftest import corpus_documents, write_corpus, write_lines
from tests.test_s3 import s3_bucket  # noqa: F401  (the fixture)


def test_stats_and_decontaminate_on_s3(s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    local = write_corpus(tmp_path / "local", ".jsonl.gz")
    client = storage.s3_client()
    bucket = s3_bucket.removeprefix("s3://")
    for path in sorted(local.glob("documents/*/*.jsonl.gz")):
        client.upload_file(str(path), bucket, str(path.relative_to(local)))
    docs = f"{s3_bucket}/documents/*/*.jsonl.gz"
    tag(TagConfig(documents=[docs], experiment="demo", taggers=["pii"], processes=1))
    eval_file = write_lines(tmp_path / "eval.jsonl", [{"text": LEAK}])
    result = decontaminate(
        DecontamConfig(eval=[str(eval_file)], documents=[docs], experiment="dc", processes=1)
    )
    assert result.report["contaminated"] == 0 and result.report_paths[0].startswith("s3://")
    report = build_report(StatsConfig(root=s3_bucket, output=f"{s3_bucket}/report", processes=1))
    stats = json.loads(storage.read_text(f"{s3_bucket}/report/stats.json"))
    expected = corpus_documents()
    assert stats["experiments_read"] == ["dc", "demo"]
    for source, documents in expected.items():
        assert stats["sources"][source]["documents"] == len(documents)
        assert stats["sources"][source]["bytes"] == sum(len(d.text.encode()) for d in documents)
    assert stats["total"]["pii"]["email_address"]["spans"] == 3
    assert [r["stage"] for r in stats["stages"]] == ["tag", "decontaminate"]
    assert '<section id="stages">' in storage.read_text(report.html_path)
