"""Fixture corpora for mix tests: documents and hand-made attribute files, written directly (no tagging).

Writing attributes by hand keeps the tests fast and lets each one say exactly which spans a document has.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from dolma_kit.documents import JsonlWriter

Doc = dict[str, Any]


def write_source(
    root: Path,
    source: str,
    docs: list[Doc],
    attributes: dict[str, list[dict[str, list[list[float]]]]],
    *,
    shard: str = "part-0000",
) -> Path:
    """`root/documents/<source>/<shard>.jsonl.gz` plus, per experiment, its line-aligned attribute file."""
    path = root / "documents" / source / f"{shard}.jsonl.gz"
    with JsonlWriter(str(path)) as out:
        for doc in docs:
            out.write({"source": source, **doc})
    for experiment, rows in attributes.items():
        assert len(rows) == len(docs)
        attr = root / "attributes" / experiment / source / f"{shard}.jsonl.gz"
        with JsonlWriter(str(attr)) as out:
            for doc, row in zip(docs, rows, strict=True):
                out.write({"id": doc["id"], "source": source, "attributes": row})
    return path


def write_schema(root: Path, experiment: str, names: list[str]) -> None:
    """The `attributes_schema.json` tag writes (mix reads the names from it before reading data)."""
    path = root / "attributes" / experiment / "attributes_schema.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"experiment": experiment, "taggers": {"t": {"attributes": names}}}))


def write_recipe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def read_output(folder: Path) -> list[Doc]:
    """Every document under an output folder, parts in name order."""
    docs = []
    for part in sorted(folder.glob("*/*.jsonl.gz")):
        with gzip.open(part, "rt", encoding="utf-8") as fh:
            docs.extend(json.loads(line) for line in fh)
    return docs


def output_bytes(folder: Path) -> dict[str, bytes]:
    """Every file mix wrote (parts, manifests, summary) by relative path, markers aside (they hold timings)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".done") and p.name != "mix_summary.json"
    }


def whole(text: str, score: float) -> list[list[float]]:
    """A document-level attribute: one span over the whole text."""
    return [[0, len(text), score]]
