"""Fixtures for the index tests: the demo's tokens with an index built in a private copy, and a brute-force
counter to check every answer against. The test modules that need the infini-gram engine skip when it is not
installed (`importorskip` at their top); test_no_engine.py runs either way."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from ..conftest import DEMO_TOKENIZER, WORDS

ENGINE_MISSING = "the index needs the infini-gram engine (pip install 'dolma-kit[index]')"


def brute_count(parts: list[np.ndarray], query: list[int]) -> int:
    """Occurrences of `query` in the token parts, by comparing every window (numpy)."""
    n = len(query)
    total = 0
    for tokens in parts:
        if len(tokens) >= n:
            windows = np.lib.stride_tricks.sliding_window_view(np.asarray(tokens), n)
            total += int((windows == np.asarray(query, dtype=windows.dtype)).all(axis=1).sum())
    return total


def brute_positions(parts: list[np.ndarray], query: list[int]) -> list[tuple[int, int]]:
    """(part number, offset) of every occurrence."""
    n = len(query)
    out = []
    for p, tokens in enumerate(parts):
        if len(tokens) >= n:
            windows = np.lib.stride_tricks.sliding_window_view(np.asarray(tokens), n)
            hits = np.flatnonzero((windows == np.asarray(query, dtype=windows.dtype)).all(axis=1))
            out += [(p, int(h)) for h in hits]
    return out


@pytest.fixture
def demo_tokens(tokenized_demo: Path, tmp_path: Path) -> Path:
    """A private copy of the demo's tokens (the index is written inside the folder)."""
    out = tmp_path / "tokens"
    shutil.copytree(tokenized_demo, out)
    return out


@pytest.fixture
def indexed_demo(demo_tokens: Path) -> Path:
    from dolma_kit.index.build import IndexConfig, build_index

    build_index(IndexConfig(tokens=str(demo_tokens), processes=2))
    return demo_tokens


def write_words_corpus(root: Path, *, docs: int, words: int, seed: int = 7) -> Path:
    """Two sources of random-word documents (many repeated n-grams), as JSON Lines under root/documents."""
    rng = random.Random(seed)
    for source in ("alpha", "beta"):
        lines = [
            json.dumps(
                {"id": f"{source}-{i}", "source": source, "text": " ".join(rng.choices(WORDS, k=words))}
            )
            for i in range(docs)
        ]
        (root / "documents" / source).mkdir(parents=True)
        (root / "documents" / source / "part-0000.jsonl").write_text("\n".join(lines) + "\n")
    return root


def tokenize_corpus(root: Path, **options: object) -> Path:
    from dolma_kit.tokenize.stage import TokenizeConfig, tokenize

    out = root / "tokenized"
    tokenize(
        TokenizeConfig(
            documents=[str(root / "documents" / "*" / "*.jsonl")],
            destination=str(out),
            tokenizer=str(DEMO_TOKENIZER),
            processes=1,
            **options,
        )
    )
    return out
