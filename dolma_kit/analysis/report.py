"""`build_report`: count a corpus and write `stats.json` and `report.html`; the one call a pipeline's report
stage (and `dolma-kit stats`) makes.

Counting is `stats.collect_stats`; rendering is `report_html.render`. Both files are written atomically, and
`report.html` can be rebuilt from `stats.json` alone (`render_report_file`), e.g. after editing the template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from dolma_kit import storage
from dolma_kit.analysis.report_examples import mix_examples
from dolma_kit.analysis.report_html import render
from dolma_kit.analysis.report_repeats import repeated_spans
from dolma_kit.analysis.stages import find_summaries
from dolma_kit.analysis.stats import STATS_NAME, CorpusStats, StatsConfig, collect_stats
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import summary_table
from dolma_kit.stages import Context, Outcome, Stage

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
    repeats = repeated_spans(config.tokenized)
    if repeats is not None:
        stats.data["repeated_spans"] = repeats
    # mix's examples of what each rule removed, beside the mix summaries the counting found
    examples = mix_examples(find_summaries(config.root, config.stage_summaries))
    if examples is not None:
        stats.data["mix_examples"] = examples
    stats_path = storage.join(config.out, STATS_NAME)
    html_path = storage.join(config.out, REPORT_NAME)
    storage.write_text(stats_path, json.dumps(stats.data, indent=2, ensure_ascii=False) + "\n")
    storage.write_text(html_path, render(stats.data))
    return Report(stats_path=stats_path, html_path=html_path, stats=stats)


def render_report_file(stats_path: str, html_path: str) -> None:
    """Rebuild report.html from an existing stats.json (no counting)."""
    storage.write_text(html_path, render(json.loads(storage.read_text(stats_path))))


# --------------------------------------------------------------------------------------------- stage


def trained_source_tokens(run_dir: str) -> dict[str, int] | None:
    """Tokens trained per source in a run's logged steps (`dolma-kit trace --sources`), for the report; None when
    the trainer or the run's data cannot be read (the report then says so). Imports `train.trace` (numpy only,
    no torch): the one arrow from the data side to the trainer, taken only when a report shows a run."""
    try:
        from train.trace import RunTrace

        lines = storage.read_text(storage.join(run_dir, "metrics.jsonl")).splitlines()
        steps = [r["step"] for r in map(json.loads, filter(None, lines)) if r.get("kind") == "train"]
        return RunTrace(run_dir).source_tokens(max(steps)) if steps else None
    except (ImportError, OSError, ValueError, KeyError, DolmaKitError):
        return None


def report_stage(config: StatsConfig) -> Report:
    """`dolma-kit stats`: the report, with the run's tokens per source when it shows a run."""
    trained = trained_source_tokens(config.run) if config.run else None
    return build_report(config, trained_tokens=trained)


def _render(config: StatsConfig, report: Report) -> list[Any]:
    total = report.data["total"]
    return [
        summary_table(report.stats.run),
        Text(
            f"{total['documents']:,} documents, {total['bytes']:,} bytes in {len(report.data['sources'])} sources"
            f" ({report.data['shards']} shards)\nstats:  {report.stats_path}\nreport: {report.html_path}"
        ),
    ]


def _outcome(config: StatsConfig, report: Report) -> Outcome:
    stages = report.data.get("stages", [])
    extra = {
        "html": report.html_path,
        "stats": report.stats_path,
        "documents": report.data["total"]["documents"],
        "stage_rows": len(stages),
        "unbalanced_rows": sum(not r.get("balanced", True) for r in stages),
    }
    return Outcome(None, extra)


def _defaults(context: Context) -> dict[str, Any]:
    """In a pipeline: the corpus is the work directory, and the report shows the last earlier train stage's
    run (recognised by its options, which are the trainer's sections)."""
    out: dict[str, Any] = {"root": context.work_dir}
    runs = [
        o["trainer"]["run_dir"]
        for o in context.earlier.values()
        if isinstance(o.get("trainer"), dict) and "run_dir" in o["trainer"] and "model" in o
    ]
    if runs:
        out["run"] = runs[-1]
    return out


STAGE = Stage(
    name="stats",
    config=StatsConfig,
    run=report_stage,
    outcome=_outcome,
    render=_render,
    proofs=lambda config: [storage.join(config.out, STATS_NAME), storage.join(config.out, REPORT_NAME)],
    defaults=_defaults,
    note=lambda extra, counts: str(extra.get("html", "")),
)
