"""`decontaminate --index TOKENS`: exact corpus counts of the evaluation n-grams, beside the hashed matching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.index.build import IndexConfig, build_index
from dolma_kit.index.store import TokenIndex

from .conftest import ENGINE_MISSING, brute_count, tokenize_corpus, write_words_corpus

pytest.importorskip("infini_gram", reason=ENGINE_MISSING)


def test_the_report_counts_evaluation_ngrams_in_the_index(tmp_path: Path) -> None:
    root = write_words_corpus(tmp_path / "corpus", docs=20, words=40)
    tokens = tokenize_corpus(root)
    build_index(IndexConfig(tokens=str(tokens), processes=1))
    leaked = json.loads((root / "documents" / "alpha" / "part-0000.jsonl").read_text().splitlines()[3])[
        "text"
    ]
    unseen = " ".join(f"zq{i}" for i in range(20))
    evals = tmp_path / "eval.jsonl"
    evals.write_text(
        json.dumps({"text": " ".join(leaked.split()[5:25])}) + "\n" + json.dumps({"text": unseen}) + "\n"
    )
    result = CliRunner().invoke(
        app,
        ["decontaminate", "--eval", str(evals), "-d", str(root / "documents" / "*" / "*.jsonl"), "-e", "dc",
         "--ngram", "8", "--index", str(tokens), "-p", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((root / "attributes" / "dc" / "decontamination_report.json").read_text())
    (counted,) = report["index_counts"]["files"]
    assert counted["texts"] == 2 and counted["ngrams"] == 2 * 13
    assert counted["texts_with_ngrams_in_corpus"] == 1 and counted["top"][0]["text"] == 1
    index = TokenIndex.open(tokens)
    parts = [np.asarray(index.tokenized.tokens(i)) for i in range(len(index.tokenized.parts))]
    words = leaked.split()[5:25]
    expected = [brute_count(parts, index.encode(" " + " ".join(words[i : i + 8]))) for i in range(13)]
    assert counted["ngrams_in_corpus"] == sum(c > 0 for c in expected) > 0
    assert counted["top"][0]["max_count"] == max(expected)
    assert "occur verbatim in" in " ".join(result.output.split())
