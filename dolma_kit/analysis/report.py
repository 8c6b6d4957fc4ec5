"""`build_report`: count a corpus and write `stats.json` and `report.html`; the one call a pipeline's report
stage (and `dolma-kit stats`) makes.

Counting is `stats.collect_stats`; rendering is `report_html.render`. Both files are written atomically, and
`report.html` can be rebuilt from `stats.json` alone (`render_report_file`), e.g. after editing the template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dolma_kit import storage
from dolma_kit.analysis.report_html import render
from dolma_kit.analysis.stats import STATS_NAME, CorpusStats, StatsConfig, collect_stats

REPORT_NAME = "report.html"


@dataclass(slots=True)
class Report:
    """Where the report went, and the counts it shows."""

    stats_path: str
    html_path: str
    stats: CorpusStats

    @property
    def data(self) -> dict[str, Any]:
        return self.stats.data


def build_report(
    config: StatsConfig, *, trained_tokens: dict[str, int] | None = None, **run_options: Any
) -> Report:
    """Count `config.root` and write `<out>/stats.json` and `<out>/report.html`. `trained_tokens`: tokens trained
    per source of `config.run` (see `training`), from a caller that may import the trainer."""
    stats = collect_stats(config, trained_tokens=trained_tokens, **run_options)
    stats_path = storage.join(config.out, STATS_NAME)
    html_path = storage.join(config.out, REPORT_NAME)
    storage.write_text(stats_path, json.dumps(stats.data, indent=2, ensure_ascii=False) + "\n")
    storage.write_text(html_path, render(stats.data))
    return Report(stats_path=stats_path, html_path=html_path, stats=stats)


def render_report_file(stats_path: str, html_path: str) -> None:
    """Rebuild report.html from an existing stats.json (no counting)."""
    storage.write_text(html_path, render(json.loads(storage.read_text(stats_path))))
