"""The publish step of `tokenize`: chunks → numbered parts, global source codes, the id index, manifest.json.

Runs in one process after every shard is done, and is idempotent: a chunk file still under `_work/` is moved
to its part name; one already moved is left alone, but only if the previous publish gave that part to the
same chunk (`_work/publish_plan.json`), so a changed input list cannot silently mix parts of two runs.
`manifest.json` is written last; readers (provenance.TokenizedDir) treat a folder without it as incomplete.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import ShardTask
from dolma_kit.provenance import FORMAT, ID_INDEX_FILES, MANIFEST_NAME, PART_FILES
from dolma_kit.tokenize.id_index import build_id_index
from dolma_kit.tokenize.parts import LOCAL_SOURCES, MOVED_SUFFIXES

_PART_FILE = re.compile(r"^part-(\d+)\.")


def part_name(n: int) -> str:
    return f"part-{n:05d}"


def _save(path: str, array: np.ndarray) -> None:
    with storage.atomic_write(path) as fh:
        np.save(fh, array)


def _plan(destination: str, tasks: list[ShardTask]) -> tuple[list[dict[str, Any]], list[str]]:
    """One entry per chunk in input-path order: its part name, work prefix, input file, counts, sources."""
    plan, sources = [], set()
    for task in sorted(tasks, key=lambda t: t.input):
        summary = json.loads(storage.read_text(task.output))
        prefix = task.output.removesuffix(".chunks.json")
        sources.update(summary["sources"])
        for k, chunk in enumerate(summary["chunks"]):
            plan.append(
                {
                    "part": part_name(len(plan)),
                    "chunk": f"{prefix}.c{k}",
                    "src": summary["src"],
                    "local_sources": summary["sources"],
                    **chunk,
                }
            )
    if len(sources) > np.iinfo(np.int16).max:
        raise DolmaKitError(f"{len(sources):,} sources: the index stores source codes as int16 (≤ 32,767)")
    return plan, sorted(sources)


def _publish_part(
    destination: str, entry: dict[str, Any], codes: dict[str, int], before: dict[str, str]
) -> None:
    final = storage.join(destination, entry["part"])
    chunk = entry["chunk"]
    for suffix in (*MOVED_SUFFIXES, LOCAL_SOURCES):
        if os.path.exists(chunk + suffix):
            continue
        if before.get(entry["part"]) != chunk or not os.path.exists(
            final + (".sources.npy" if suffix == LOCAL_SOURCES else suffix)
        ):
            raise DolmaKitError(
                f"{chunk}{suffix} is missing and {final} was not published from it: the inputs changed "
                "since an earlier run; pass --force to redo the tokenization"
            )
    for suffix in MOVED_SUFFIXES:
        if os.path.exists(chunk + suffix):
            os.replace(chunk + suffix, final + suffix)
    local = chunk + LOCAL_SOURCES
    if os.path.exists(local):
        mapping = np.array([codes[s] for s in entry["local_sources"]], dtype=np.int16)
        local_codes = np.load(local)
        _save(final + ".sources.npy", mapping[local_codes] if len(local_codes) else local_codes)
        os.remove(local)


def _remove_stale_parts(destination: str, count: int) -> None:
    """Parts numbered past this run's last (an earlier run over more input) would be read as data."""
    for entry in os.scandir(destination):
        m = _PART_FILE.match(entry.name)
        if m and int(m.group(1)) >= count:
            os.remove(entry.path)


def publish(
    destination: str,
    tasks: list[ShardTask],
    settings: dict[str, Any],
    vocab_size: int,
    counts: dict[str, int],
) -> dict[str, Any]:
    """Number, move and index the chunks; write and return the manifest."""
    plan, sources = _plan(destination, tasks)
    codes = {s: i for i, s in enumerate(sources)}
    plan_path = storage.join(destination, "_work", "publish_plan.json")
    before = json.loads(storage.read_text(plan_path)) if os.path.exists(plan_path) else {}
    storage.write_text(plan_path, json.dumps({e["part"]: e["chunk"] for e in plan}, indent=1) + "\n")
    for entry in plan:
        _publish_part(destination, entry, codes, before)
    _remove_stale_parts(destination, len(plan))
    # sorted by an external merge in tokenize.id_index: memory bounded by id_index.MEMORY_BYTES, not documents
    repeated = build_id_index(destination, [e["part"] for e in plan])
    per_source = {s: {"documents": 0, "tokens": 0} for s in sources}
    for entry in plan:
        for source, (docs, toks) in entry["per_source"].items():
            per_source[source]["documents"] += docs
            per_source[source]["tokens"] += toks
    manifest = {
        "format": FORMAT,
        "tokenizer": {
            "name": Path(settings["tokenizer"]).name,
            "spec": settings["tokenizer"],
            "sha256": settings["tokenizer_sha256"],
        },
        "eos_id": settings["eos_id"],
        "pad_id": settings["pad_id"],
        "vocab_size": vocab_size,
        "dtype": settings["dtype"],
        "seed": settings["seed"],
        "max_tokens_per_file": settings["max_tokens_per_file"],
        "shuffle_window": settings["shuffle_window"],
        "shuffle_window_tokens": settings["shuffle_window_tokens"],
        **{
            k: settings[k]
            for k in ("strip", "encode_special_tokens", "bos_id", "post_processor", "unique_ids")
        },
        "documents": sum(e["documents"] for e in plan),
        "tokens": sum(e["tokens"] for e in plan),
        "input_documents": counts["documents_in"],
        "empty_documents_skipped": counts["empty_skipped"],
        "rejected_documents": counts["rejected"],
        "sources": sources,
        "per_source": per_source,
        "repeated_ids": {sources[code]: n for code, n in sorted(repeated.items())},
        "parts": [
            {"name": e["part"], "src": e["src"], "documents": e["documents"], "tokens": e["tokens"]}
            for e in plan
        ],
        "files": {"part": PART_FILES, "id_index": ID_INDEX_FILES},
    }
    storage.write_text(
        storage.join(destination, MANIFEST_NAME), json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    )
    return manifest
