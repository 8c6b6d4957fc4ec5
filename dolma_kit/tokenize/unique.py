"""`--unique-ids`: a document whose id was already seen in its source is a bad record.

Ids must be unique within a source (the provenance index finds a document by (id, source)). Without the option
tokenize only counts repeats (`manifest.repeated_ids`). With it, a first pass reads every input's ids (in
parallel, resumable like any shard step, under `_work/ids/`), and the occurrences are ordered by (sorted input
path, line): the first of an (id, source) pair is kept, every later one is a repeat. Strict, the first repeat
is an error naming its file:line and the first occurrence's; with `--skip-bad`, each repeat is rejected by the
shard step (counted, written to `rejects/` with the first occurrence named), so in = kept + removed + rejected
still holds and the output holds each (id, source) once.

(id, source) pairs are compared by 128-bit xxh3 hashes (two uint64 columns), so memory is 28 bytes a document
whatever the ids' length; a false repeat needs a 128-bit collision.
"""

from __future__ import annotations

import functools
import io
import json
from typing import Any

import numpy as np
import xxhash

from dolma_kit import storage
from dolma_kit.documents import DocumentReader
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.executor import ExecutorConfig, ShardStats, ShardTask, run_shards

SUFFIX = ".ids.npz"


def _pair_hash(source: str, doc_id: str) -> tuple[int, int]:
    digest = xxhash.xxh3_128_intdigest(source.encode("utf-8") + b"\0" + doc_id.encode("utf-8"))
    return digest >> 64, digest & 0xFFFFFFFFFFFFFFFF


def read_ids(skip_bad: bool, task: ShardTask, stats: ShardStats) -> None:
    """One input's (id, source) hashes and lines, blank documents left out (tokenize removes them)."""
    hi, lo, lines = [], [], []
    reader = DocumentReader(task.input, on_bad=(lambda exc: None) if skip_bad else None)
    for doc in reader:
        if doc.text and not doc.text.isspace():
            h, low = _pair_hash(doc.source, doc.id)
            hi.append(h)
            lo.append(low)
            lines.append(doc.line)
        stats.keep()
        stats.progress_bytes(reader.bytes_read)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        hi=np.array(hi, dtype=np.uint64),
        lo=np.array(lo, dtype=np.uint64),
        lines=np.array(lines, dtype=np.int64),
    )
    with storage.atomic_write(task.output) as fh:
        fh.write(buffer.getvalue())


def repeats_path(tokenize_output: str) -> str:
    """Where the shard step finds the lines of its input to reject (beside its `chunks.json`)."""
    return tokenize_output.removesuffix(".chunks.json") + ".repeats.json"


def find_repeats(
    tasks: list[ShardTask],
    *,
    skip_bad: bool,
    processes: int,
    force: bool,
    executor: ExecutorConfig,
) -> int:
    """Read every input's ids, then write each task's `repeats.json` ({line: first "path:line"}) or, strict,
    raise at the first repeat. Returns how many repeats there are."""
    id_tasks = [
        ShardTask(
            key="ids/" + t.key.removesuffix(".chunks.json") + SUFFIX,
            input=t.input,
            output=t.output.removesuffix(t.key) + "ids/" + t.key.removesuffix(".chunks.json") + SUFFIX,
            size=t.size,
        )
        for t in tasks
    ]
    run_shards(
        functools.partial(read_ids, skip_bad),
        id_tasks,
        title="tokenize: ids",
        processes=processes,
        force=force,
        executor=executor,
    )
    order = sorted(range(len(tasks)), key=lambda i: tasks[i].input)
    loaded = []
    for i in order:
        with np.load(id_tasks[i].output) as data:
            loaded.append((data["hi"], data["lo"], data["lines"]))
    hi = np.concatenate([x[0] for x in loaded]) if loaded else np.zeros(0, np.uint64)
    lo = np.concatenate([x[1] for x in loaded]) if loaded else np.zeros(0, np.uint64)
    lines = np.concatenate([x[2] for x in loaded]) if loaded else np.zeros(0, np.int64)
    owner = np.repeat(np.arange(len(order)), [len(x[2]) for x in loaded])
    position = np.arange(len(lines))  # reading order: (sorted input, line)
    by_pair = np.lexsort((position, lo, hi))
    same = (hi[by_pair][1:] == hi[by_pair][:-1]) & (lo[by_pair][1:] == lo[by_pair][:-1])
    repeats: dict[int, dict[str, str]] = {i: {} for i in range(len(tasks))}
    first = by_pair[0] if len(by_pair) else 0
    found: list[tuple[int, int, int]] = []  # (position of the repeat, repeat, first occurrence)
    for k in range(1, len(by_pair)):
        if not same[k - 1]:
            first = by_pair[k]
            continue
        found.append((int(by_pair[k]), int(by_pair[k]), int(first)))
    if found and not skip_bad:
        _, j, f = min(found)
        where = f"{tasks[order[owner[f]]].input}:{lines[f]}"
        raise BadRecordError(
            tasks[order[owner[j]]].input,
            int(lines[j]),
            f"id repeated within its source (--unique-ids; first at {where})",
        )
    for _, j, f in found:
        task_index = order[int(owner[j])]
        where = f"{tasks[order[int(owner[f])]].input}:{lines[f]}"
        repeats[task_index][str(int(lines[j]))] = where
    for i, task in enumerate(tasks):
        storage.write_text(repeats_path(task.output), json.dumps(repeats[i], sort_keys=True) + "\n")
    return len(found)


def load_repeats(tokenize_output: str) -> dict[int, str]:
    """The shard step's lines to reject: {line: where the id first occurred}."""
    path = repeats_path(tokenize_output)
    if not storage.exists(path):
        raise DolmaKitError(f"{path} is missing: re-run tokenize with --unique-ids --force")
    data: dict[str, Any] = json.loads(storage.read_text(path))
    return {int(line): where for line, where in data.items()}
