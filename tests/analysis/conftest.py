"""A small corpus run through tag → dedup exact → dedup minhash → decontaminate → mix, then `stats`, once
(with a hand-written training run's metrics.jsonl for the training section).

The demo shards plus planted material: exact copies of two web pages (dedup finds them), two documents that
leak an evaluation passage with case and punctuation changed (decontaminate finds them), and URLs on a
multi-label suffix (`.co.uk`). Every stage runs through the CLI, in-process (`-p 1`), as a user would.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app
from tests.conftest import CORPUS, write_lines

LEAK = (
    "The committee agreed that the northern bridge would close for repairs in April, and that ferries "
    "would run every twenty minutes until the new deck was finished and inspected."
)
"""An evaluation passage (28 words); planted with changed case and punctuation."""
SHORT_EVAL = "Which river flows through the old town of Tallinn"  # 9 words: one gram of all its words
EVAL_ROWS = [{"text": LEAK, "task": "qa"}, {"text": SHORT_EVAL}, {"text": "too short"}]

PLANTED_WEB = [
    {"id": "web-copy-1", "copy_of": "web-0001", "url": "https://millstone-bakery.example/about?utm_source=x"},
    {"id": "web-copy-2", "copy_of": "web-0003", "url": "https://www.stadtbibliothek.example/news"},
    {
        "id": "web-leak-1",
        "text": "Local news in brief.\n"
        + LEAK.upper().replace(",", "").replace(".", "!")
        + "\nMore next week.",
        "url": "https://news.harbour.co.uk/brief/12",
    },
    {
        "id": "web-clean-1",
        "text": "The committee met on Tuesday and agreed on nothing at all, as usual, after a long debate.",
        "url": "https://sport.harbour.co.uk/results",
    },
]
FORUM_LEAK = {
    "id": "forum-leak-1",
    "text": "Quiz night question for you all:\n\nwhich RIVER flows through the old town of Tallinn?\n\nAnswers below.",
}


METRICS = [
    {"kind": "train", "step": 1, "examples_seen": 4, "tokens_seen": 64, "loss": 7.25, "lr": 0.0005,
     "loss_by_source": {"web": 7.5, "wiki": 7.0, "forum": None}, "grad_norm": 2.5, "tokens_per_s": 1000.0,
     "mfu": None, "step_time": 0.064},
    {"kind": "train", "step": 2, "examples_seen": 8, "tokens_seen": 128, "loss": 6.125, "lr": 0.001,
     "loss_by_source": {"web": 6.5, "wiki": 5.75, "forum": 6.0}, "grad_norm": 1.5, "tokens_per_s": 3000.0,
     "mfu": None, "step_time": 0.021},
    {"kind": "eval", "step": 2, "examples_seen": 8, "eval_loss": 6.5, "eval_ppl": 665.1416330443618,
     "eval_by_source": {"web": {"loss": 6.25, "ppl": 518.0128, "tokens": 48},
                        "wiki": {"loss": 6.75, "ppl": 854.0588, "tokens": 16}}},
    {"kind": "train", "step": 3, "examples_seen": 12, "tokens_seen": 192, "loss": 5.5, "lr": 0.00075,
     "loss_by_source": {"web": 5.25, "wiki": None, "forum": 5.875}, "grad_norm": 1.25, "tokens_per_s": 2000.0,
     "mfu": None, "step_time": 0.032},
]  # fmt: skip
"""A training run's metrics.jsonl as the trainer writes it (docs/train.md); the report reads it as JSON."""


def write_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    write_lines(folder / "metrics.jsonl", METRICS)
    (folder / "config.yaml").write_text(
        "model: {d_model: 64, n_layers: 2, n_heads: 4, vocab_size: 1024}\n"
        "data: {paths: [tokens], seq_len: 16}\n"
        "trainer: {max_steps: 3, global_batch: 4}\n"
        "optim: {lr: 0.001, warmup_steps: 2}\n"
    )
    return folder


def planted_documents(demo_web: dict[str, dict]) -> dict[str, list[dict]]:
    web = []
    for row in PLANTED_WEB:
        text = demo_web[row["copy_of"]]["text"] if "copy_of" in row else row["text"]
        web.append({"id": row["id"], "text": text, "source": "web", "metadata": {"url": row["url"]}})
    return {"web": web, "forum": [{**FORUM_LEAK, "source": "forum", "metadata": {}}]}


@dataclass
class Pipeline:
    root: Path
    eval_file: Path
    mixed: Path
    out: Path
    run: Path

    def stats(self) -> dict:
        return json.loads((self.out / "stats.json").read_text())

    def html(self) -> str:
        return (self.out / "report.html").read_text()


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("analysis") / "corpus"
    shutil.copytree(CORPUS / "documents", root / "documents")
    demo_web = {d["id"]: d for d in read_jsonl(root / "documents" / "web" / "part-0000.jsonl")}
    for source, docs in planted_documents(demo_web).items():
        write_lines(root / "documents" / source / "part-0001.jsonl", docs)
    eval_file = write_lines(root.parent / "eval" / "bench.jsonl", EVAL_ROWS)
    docs = str(root / "documents" / "*" / "*.jsonl")
    invoke(["tag", "--documents", docs, "-e", "demo", "--taggers", "ft_lang_id", "pii", "-p", "1"])
    invoke(["dedup", "exact", "--documents", docs, "-e", "dedup_text", "--key", "text", "-p", "1"])
    invoke(["dedup", "minhash", "--documents", docs, "-e", "dedup_mh", "-p", "1"])
    invoke(["decontaminate", "--eval", str(eval_file), "--documents", docs, "-e", "dc", "-p", "1"])
    mixed = root.parent / "mixed"
    recipe = root.parent / "recipe.yaml"
    recipe.write_text(
        f"""
streams:
  - name: all
    documents: [{docs}]
    attributes: [demo, dedup_text, dc]
    filter:
      exclude:
        - {{name: exact duplicate, expr: dedup_text.exact_text.duplicate == 1}}
        - {{name: contaminated, expr: dc.decontam.contaminated == 1}}
    replace:
      - {{attribute: pii.email_address, replacement: "|||EMAIL_ADDRESS|||"}}
    output:
      path: {mixed}/documents
"""
    )
    invoke(["mix", str(recipe), "-p", "1"])
    out = root.parent / "report"
    run = write_run(root.parent / "run")
    args = ["--stage-summaries", str(mixed / "documents"), "--run", str(run), "-o", str(out), "-p", "1"]
    invoke(["stats", str(root), *args])
    return Pipeline(root=root, eval_file=eval_file, mixed=mixed, out=out, run=run)
