"""Connected components spread over the executor: rounds of `cluster_partition` steps, one task per partition.

`cluster_components` runs, each step one `run_shards` call of `partitions` tasks (local processes, or Ray tasks
with `--executor ray`), its files under `<labels folder>/rounds-p<P>/`:

    step-000/part-<p>.npy        verified candidate pairs of documents n·p/P … n·(p+1)/P, as large-star edges
    step-<odd>/part-<p>.npy      large-star: its new edges, routed to the small-star partitions
    step-<odd>/part-<p>.npy.labels.npy   this partition's labels, written when all its nodes are settled
    step-<even>/part-<p>.npy     small-star: its new edges, routed (both ways) to the next large-star
    every part-<p>.npy.json      offsets per reading partition, and the step's counts

until a large-star finds every node settled; then one task interleaves the partitions' labels into
`labels.npy` (in chunks: it never holds all of them), writes the counts beside it, and the rounds are removed.
Every file is written atomically and every task has its `.done` marker, so a killed run re-run with the same
command redoes only the unfinished tasks of the step it stopped in; each step is a function of the one before,
so the result is the same. Another `partitions` count works in another folder (a clean restart), and gives the
same labels.

Memory: a verify task holds its range's candidate pairs (≤ bands × (window - 1) per document) and the
signatures or shingles of the pairs it verifies, in chunks; a star task holds its partition's edges (each
edge twice for a large-star) a few times over while sorting, and the labels of its n/P nodes. The exception is
a large cluster: near the end its smallest document has an edge to every member, all in that document's
partition (~50–70 bytes a member; measured in `bench/cluster_scale.py`, see docs/scale-out.md).
"""

from __future__ import annotations

import functools
import glob
import json
import math
import shutil
from typing import Any

import numpy as np

from dolma_kit import storage
from dolma_kit.dedup.cluster_partition import read_rows, star_partition, step_info, verify_partition
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import RunResult, ShardStats, ShardTask, per_task, run_shards
from dolma_kit.executor.shards import load_marker

#: one task's working-set target when choosing the partition count (`auto_partitions`)
TASK_BYTES = 512 << 20
#: measured peak of the single-task path (`bench/cluster_scale.py`): bytes per document, per candidate pair
BYTES_PER_DOCUMENT = 32
BYTES_PER_PAIR = 64
#: rows per partition in one chunk of the labels file's assembly
ASSEMBLY_ROWS = 1 << 16
#: large-star / small-star converges in O(log² n) rounds (Kiveris et al.); this many means a bug
MAX_STEPS = 400


def auto_partitions(documents: int, candidates: int) -> int:
    """Partitions when `--cluster-partitions` is not given: 1 (one task, union-find) while the single task's
    memory estimate (documents and candidate pairs, see the constants) stays under TASK_BYTES, else enough
    partitions for each to fit it: about 10 million documents with few duplicates stay one task."""
    need = documents * BYTES_PER_DOCUMENT + candidates * BYTES_PER_PAIR
    return max(1, math.ceil(need / TASK_BYTES))


def rounds_folder(labels_path: str, partitions: int) -> str:
    return storage.join(storage.parent(labels_path), f"rounds-p{partitions}")


def cluster_components(*, n: int, pair_paths: list[str], output: ShardTask, partitions: int, verify: Any,
                       reason: str, options: dict[str, Any]) -> RunResult:  # fmt: skip
    """Labels of `n` documents (smallest index per component) from sorted pair files, written to
    `output.output` with its `.counts.json`; `verify` (pairs → bool mask, picklable) decides which pairs join.
    `options`: `run_shards`' (processes, force, executor, console). Returns every task's stats."""
    title = "minhash cluster"
    if not options.get("force") and (done := load_marker(output)) is not None:
        remove_rounds(output.output)  # a run killed while removing them leaves some
        return RunResult(title, [done])
    root = rounds_folder(output.output, partitions)
    ran: list[ShardStats] = []

    def step(k: int, label: str, source: str, make: Any) -> list[str]:
        tasks = [
            ShardTask(key=f"step-{k:03d}/part-{p:04d}.npy", input=source,
                      output=storage.join(root, f"step-{k:03d}", f"part-{p:04d}.npy"))
            for p in range(partitions)
        ]  # fmt: skip
        fns = {t.key: make(p) for p, t in enumerate(tasks)}
        result = run_shards(per_task(fns), tasks, title=f"{title} {label}", **options)
        ran.extend(result.shards)
        return [t.output for t in tasks]

    outputs = step(0, "verify", pair_paths[0] if pair_paths else root, lambda p: functools.partial(
        verify_partition, pair_paths=pair_paths, n=n, partitions=partitions, part=p, verify=verify))  # fmt: skip
    pairs = [step_info(o) for o in outputs]

    def star(k: int, kind: str, sources: list[str]) -> list[str]:
        if k > MAX_STEPS:
            raise DolmaKitError(
                f"{root}: clustering did not converge in {MAX_STEPS} steps (a bug; report it)"
            )
        return step(k, f"round {(k + 1) // 2} {kind}-star", storage.parent(sources[0]), lambda p: functools.partial(
            star_partition, step=kind, sources=sources, n=n, partitions=partitions, part=p))  # fmt: skip

    k = 1
    outputs = star(k, "large", outputs)
    infos = [step_info(o) for o in outputs]
    while sum(i["unsettled"] for i in infos):
        outputs = star(k + 2, "large", star(k + 1, "small", outputs))
        infos = [step_info(o) for o in outputs]
        k += 2
    candidates = sum(i["candidates"] for i in pairs)
    verified = sum(i["verified"] for i in pairs)
    counts = {"candidates": candidates, "verified": verified, "rejected": candidates - verified,
              "clusters": sum(i["centres"] for i in infos), "duplicates": sum(i["leaves"] for i in infos)}  # fmt: skip
    fn = functools.partial(assemble_labels, label_paths=[o + ".labels.npy" for o in outputs], n=n,
                           partitions=partitions, counts=counts, reason=reason)  # fmt: skip
    result = run_shards(fn, [output], title=f"{title} labels", **{**options, "processes": 1})
    ran.extend(result.shards)
    remove_rounds(output.output)
    return RunResult(f"{title} ({partitions} partitions, {(k + 1) // 2} rounds)", ran)


def assemble_labels(task: ShardTask, stats: ShardStats, *, label_paths: list[str], n: int, partitions: int,
                    counts: dict[str, int], reason: str) -> None:  # fmt: skip
    """The partitions' labels (partition p holds documents p, p + P, …) interleaved into one int64 [n] .npy,
    the same bytes `np.save` writes for the single task's array; counts beside it (written first)."""
    storage.write_text(task.output + ".counts.json", json.dumps(counts) + "\n")
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.int64)),
        "fortran_order": False,
        "shape": (n,),
    }
    with storage.atomic_write(task.output) as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        step = ASSEMBLY_ROWS * partitions
        for start in range(0, n, step):
            chunk = np.empty(min(step, n - start), dtype=np.int64)
            lo = start // partitions
            for p, path in enumerate(label_paths):
                rows = read_rows(path, lo, lo + ASSEMBLY_ROWS)
                chunk[p::partitions] = rows[: len(chunk[p::partitions])]
            fh.write(chunk.tobytes())
    removed = counts["duplicates"]
    stats.documents_in, stats.kept, stats.removed = n, n - removed, removed
    if removed:
        stats.removed_by[reason] = removed


def remove_rounds(labels_path: str) -> None:
    """Remove every `rounds-p*` folder beside the labels: nothing reads them once the labels are done (on an
    object store markers go first, so nothing stays marked done without its file)."""
    pattern = storage.join(storage.parent(labels_path), "rounds-p*")
    if not storage.is_remote(pattern):
        for folder in glob.glob(storage.local_path(pattern)):
            shutil.rmtree(folder, ignore_errors=True)
        return
    try:
        found = [f.path for f in storage.expand([storage.join(pattern, "**")])]
    except DolmaKitError:
        return  # nothing left
    for path in sorted(found, key=lambda p: not p.endswith(".done")):
        storage.remove(path)
