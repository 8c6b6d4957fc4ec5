"""What `decontaminate` says on screen: marked (not removed) documents, and the evaluation texts it skipped."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dolma_kit.cli import app
from tests.conftest import write_lines

PASSAGE = (
    "In 1887 the observatory recorded forty-two clear nights, more than in any year since its founding, "
    "and the director wrote that the new lens had repaid its cost."
)


def test_screen_counts_short_eval_texts_and_says_marked(tmp_path: Path) -> None:
    eval_file = write_lines(
        tmp_path / "eval.jsonl", [{"text": PASSAGE}, {"text": "Paris"}, {"text": "forty two"}]
    )
    docs = tmp_path / "corpus/documents"
    write_lines(docs / "a/p.jsonl", [{"id": "a1", "text": PASSAGE}, {"id": "a2", "text": "Paris, forty two"}])
    args = ["decontaminate", "--eval", str(eval_file), "--documents", str(docs / "a/*.jsonl")]
    result = CliRunner().invoke(
        app, [*args, "--experiment", "dc", "--ngram", "10", "-p", "1"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "2 evaluation texts skipped as shorter than --min-words 8" in out
    assert "documents in = kept + marked + rejected" in out
    assert "marked: contaminated documents" in out
    assert "file MB in" in out
