"""The child processes bench/dedup.py starts (`--child ...`), and reading the corpus they share.

Each child measures one thing in a process of its own, so its wall time, CPU and peak memory are its own:
a signature-speed loop per tool, the plain datasketch loop, one datatrove MinHash stage, or our LSH alone.
The datatrove children run under the datatrove venv, which holds neither dolma-kit's dependencies nor rich,
so this module imports only the standard library at the top; each child imports its tool when it runs.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

#: corpora, work folders, logs and results of the benchmark
OUT = Path(__file__).resolve().parent / "out"


def shard_paths(corpus: Path) -> list[Path]:
    """Every document shard, sorted: the one order all readers here use."""
    return sorted((corpus / "documents").glob("*/*.jsonl.gz"))


def read_docs(corpus: Path) -> list[tuple[str, str]]:
    """(id, text) of every document, in shard order."""
    out = []
    for path in shard_paths(corpus):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            out += [(d["id"], d["text"]) for d in map(json.loads, f)]
    return out


# ------------------------------------------------------------------------------------------ children


def child_signature_speed(tool: str, corpus: Path, bands: int, rows: int, seed: int) -> dict[str, float]:
    """CPU seconds one process spends turning the corpus's texts into signatures, texts already loaded."""
    texts = [t for _, t in read_docs(corpus)]
    num_perm = bands * rows
    if tool == "ours":
        from dolma_kit.dedup.minhash import MinhashConfig, SignatureComputer

        computer = SignatureComputer(MinhashConfig(num_perm=num_perm, bands=bands, rows=rows, seed=seed))
        computer(texts[:10])  # warm the normalisation table, as a long run amortises it
        start = time.process_time()
        for lo in range(0, len(texts), 1024):
            computer(texts[lo : lo + 1024])
    elif tool == "datasketch":
        from datasketch import MinHash

        from dolma_kit.dedup.normalize import normalize_text

        normalize_text("warm")
        start = time.process_time()
        for text in texts:
            _datasketch_minhash(MinHash, normalize_text(text), num_perm, seed)
    else:
        from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

        cfg = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows, seed=seed)
        step = MinhashDedupSignature(output_folder=str(OUT / "tmp-datatrove-sig"), config=cfg)
        step.get_signature(step.get_shingles(texts[0]))  # loads spaCy
        start = time.process_time()
        for text in texts:
            shingles = step.get_shingles(text)
            if shingles.size:
                step.get_signature(shingles)
    cpu = time.process_time() - start
    return {"docs": len(texts), "cpu_s": cpu, "docs_per_cpu_s": len(texts) / cpu}


def _datasketch_minhash(minhash_cls: Any, norm: str, num_perm: int, seed: int) -> Any:
    """A datasketch MinHash over the same word 5-grams ours hashes (a text under 5 words: one shingle)."""
    words = norm.split()
    grams = [" ".join(words[i : i + 5]).encode() for i in range(max(1, len(words) - 4))]
    m = minhash_cls(num_perm=num_perm, seed=seed)
    m.update_batch(grams)
    return m


def child_datasketch(corpus: Path, out: Path, bands: int, rows: int, seed: int) -> None:
    """The plain loop a user would write with datasketch: signature, query, insert, union-find."""
    from datasketch import MinHash, MinHashLSH

    from dolma_kit.dedup.normalize import normalize_text

    docs = read_docs(corpus)
    lsh = MinHashLSH(num_perm=bands * rows, params=(bands, rows))
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for doc_id, text in docs:
        m = _datasketch_minhash(MinHash, normalize_text(text), bands * rows, seed)
        for other in lsh.query(m):
            ra, rb = find(doc_id), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        lsh.insert(doc_id, m)
    out.write_text(json.dumps({d: find(d) for d, _ in docs}))


def child_datatrove(
    stage: str, corpus: Path, work: Path, bands: int, rows: int, seed: int, procs: int
) -> None:
    """One of datatrove's four MinHash stages as its own LocalPipelineExecutor run (datatrove venv)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    cfg = MinhashConfig(
        hash_config=HashConfig(precision=64), num_buckets=bands, hashes_per_bucket=rows, n_grams=5, seed=seed
    )
    docs = str(corpus / "documents")

    def reader() -> JsonlReader:
        return JsonlReader(docs, glob_pattern="*/*.jsonl.gz", recursive=True)

    pipelines: dict[str, tuple[list[Any], int, int]] = {
        "signatures": (
            [reader(), MinhashDedupSignature(output_folder=str(work / "sigs"), config=cfg)],
            procs,
            procs,
        ),
        "buckets": (
            [
                MinhashDedupBuckets(
                    input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg
                )
            ],
            bands,
            procs,
        ),
        "cluster": (
            [
                MinhashDedupCluster(
                    input_folder=str(work / "buckets"),
                    output_folder=str(work / "remove_ids"),
                    config=cfg,
                    save_cluster_id=True,
                )
            ],
            1,
            1,
        ),
        "filter": (
            [
                reader(),
                MinhashDedupFilter(
                    input_folder=str(work / "remove_ids"),
                    exclusion_writer=JsonlWriter(str(work / "removed")),
                    load_cluster_ids=True,
                ),
                JsonlWriter(str(work / "kept")),
            ],
            procs,
            procs,
        ),
    }
    pipeline, tasks, workers = pipelines[stage]
    LocalPipelineExecutor(
        pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=str(work / "logs" / stage)
    ).run()


def child_lsh_only(sig_dir: Path, bands: int, rows: int, threshold: float, out: Path) -> None:
    """Our LSH + verification + clustering over memory-mapped signature shards, nothing else."""
    import numpy as np

    from dolma_kit.dedup.lsh import Signatures, lsh_and_cluster

    arrays = [np.load(p, mmap_mode="r") for p in sorted(sig_dir.glob("*.npy"))]
    start = time.perf_counter()
    labels, counts = lsh_and_cluster(Signatures(arrays), bands, rows, threshold)
    counts["seconds"] = time.perf_counter() - start
    counts["docs"] = len(labels)
    out.write_text(json.dumps(counts))
