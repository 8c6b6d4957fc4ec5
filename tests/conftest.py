"""Shared fixtures: the fixture corpus copied into a temp dir, in any of the supported formats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dolma_kit.documents import Document, DocumentWriter, read_documents

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = Path(__file__).parent.parent / "demo"  # the bundled demo shards double as the fixture corpus

#: a small vocabulary for random-word corpora (many repeated n-grams): the index and memorization tests
WORDS = [
    "bread",
    "river",
    "stone",
    "light",
    "tram",
    "window",
    "flour",
    "mill",
    "cake",
    "morning",
    "spring",
    "north",
    "table",
    "green",
    "cold",
    "old",
]


def corpus_documents() -> dict[str, list[Document]]:
    """The fixture corpus by source."""
    out = {}
    for path in sorted((CORPUS / "documents").glob("*/*.jsonl")):
        out[path.parent.name] = list(read_documents(str(path)))
    return out


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A copy of the fixture corpus (plain .jsonl) under tmp_path/corpus; returns the corpus root."""
    root = tmp_path / "corpus"
    shutil.copytree(CORPUS, root)
    return root


def write_corpus(root: Path, suffix: str) -> Path:
    """Write the fixture corpus under root/documents/<source>/part-0000<suffix> (e.g. `.jsonl.zst`)."""
    for source, docs in corpus_documents().items():
        with DocumentWriter(str(root / "documents" / source / f"part-0000{suffix}")) as out:
            for doc in docs:
                out.write(doc)
    return root


def write_lines(path: Path, lines: list[bytes | str | dict]) -> Path:
    """Write raw JSON Lines (dicts are serialised; bytes are written as they are, bad ones included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            if isinstance(line, str):
                line = line.encode()
            fh.write(line + b"\n")
    return path


DEMO_TOKENIZER = FIXTURES / "tokenizer" / "demo-bpe.json"  # byte-level BPE, 1,024 ids, EOS 0, PAD 1


@pytest.fixture(scope="session")
def tokenized_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo shards (3 sources) tokenized with DEMO_TOKENIZER, parts of ≤ 600 tokens; read-only, shared.

    Open it with `dolma_kit.provenance.TokenizedDir.open(path)`; copy it before writing into it.
    """
    from dolma_kit.tokenize.stage import TokenizeConfig, tokenize

    out = tmp_path_factory.mktemp("tokenized") / "demo"
    tokenize(
        TokenizeConfig(
            documents=[str(CORPUS / "documents" / "*" / "*.jsonl")],
            destination=str(out),
            tokenizer=str(DEMO_TOKENIZER),
            processes=1,
            max_tokens_per_file=600,
        )
    )
    return out
