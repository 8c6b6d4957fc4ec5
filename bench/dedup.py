"""Benchmark MinHash near-duplicate detection: ours vs datatrove 0.10.1 vs a plain datasketch loop.

    .venv/bin/python bench/dedup.py --quick          # 2,000 documents: checks the plumbing (~1.5 minutes)
    .venv/bin/python bench/dedup.py                  # 20,000 documents of ~2 KB, 8 shards (~10 minutes)
    .venv/bin/python bench/dedup.py --lsh-only 1000000   # our LSH + clustering alone on synthetic signatures

All three run on the same generated corpus (bench/dedup_corpus.py: planted pairs whose exact 5-gram Jaccard
spans 0.3-1.0, and hard negatives that share a long header and footer) with the same (bands, rows), each as
its own process tree so wall time, CPU seconds and peak memory are measured alike (bench/_util.py):

- ours: `dolma-kit dedup minhash` as users call it (signatures, LSH, verification, clusters, attributes);
- datatrove: its four MinHash stages, each a `LocalPipelineExecutor` run (tasks = workers = our processes;
  the buckets stage needs tasks = bands), reading with `JsonlReader`, the filter writing with `JsonlWriter`
  and cluster ids loaded into metadata; the four runs are summed (peak memory: the largest);
- datasketch: one process, `MinHash(num_perm).update_batch(shingles)`, `MinHashLSH(params=(b, r))`, query
  then insert, union-find.

Signature throughput is also measured per core the same way for all three: one process, texts already in
memory, CPU seconds from text to signature (normalisation and shingling included).

Precision and recall count document pairs put in one cluster. A predicted pair is a true duplicate when its
exact Jaccard is ≥ --threshold (planted pairs carry it; any other pair is computed from the texts). Recall
is compared with what the LSH S-curve predicts for the planted J values: 1 - (1 - J^r)^b for tools that join
every candidate, which is also ours with `--verify exact` (the default: a candidate joins iff its exact
Jaccard is ≥ threshold, so every true pair that is a candidate joins and no false one does); with
`--verify estimate`, the exact probability under independent permutations that a band agrees *and*
≥ threshold·num_perm values agree.

The script also hosts its child processes (`--child ...`): the datatrove ones run under the datatrove venv,
so this module imports only the standard library and bench/_util.py at the top.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _util import Measured, mib, run_measured

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"
#: datatrove's MinHash splits English words with a blank spaCy pipeline, and its JsonlReader needs orjson;
#: neither is in the `processing` extra. Nothing here pulls torch.
DATATROVE_INSTALL = ["datatrove[processing]==0.10.1", "spacy>=3.8", "orjson"]
TOOLS = ("ours", "datatrove", "datasketch")
TARGET_SIG_PER_CORE = 5_000
TARGET_PRECISION = 0.99
TARGET_RECALL_GAP = 0.02
TARGET_LSH_BYTES = 2 * 10**9


# ------------------------------------------------------------------------------------------ corpus reading


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


# ------------------------------------------------------------------------------------------ runners


def _checked(cmd: list[Any], log: Path) -> Measured:
    cmd = [str(c) for c in cmd]
    print(f"  $ {' '.join(cmd[:8])}{' …' if len(cmd) > 8 else ''}  (log: {log})", flush=True)
    measured = run_measured(cmd, log)
    if measured.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"command failed ({measured.returncode}): {' '.join(cmd)}\n{tail}")
    return measured


def _self(python: Path | str, *args: object) -> list[str]:
    return [str(python), str(Path(__file__).resolve()), *map(str, args)]


def ensure_datatrove(venv: Path) -> Path:
    """The python of a venv holding datatrove 0.10.1, installing it there first if it is missing."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import datatrove, spacy, xxhash, orjson"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing datatrove 0.10.1 into {venv} (one time, a few minutes)", flush=True)
    subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *DATATROVE_INSTALL], check=True)
    return python


def ours_command() -> list[str]:
    """`dolma-kit dedup minhash` when the sub-app is wired, else a one-command Typer app around it."""
    probe = [sys.executable, "-m", "dolma_kit", "dedup", "minhash", "--help"]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        return [sys.executable, "-m", "dolma_kit", "dedup", "minhash"]
    code = (
        "import typer; from dolma_kit.cli.dedup_minhash import minhash; "
        "app = typer.Typer(); app.command()(minhash); app()"
    )
    return [sys.executable, "-c", code]


def run_ours(
    corpus: Path, work: Path, bands: int, rows: int, seed: int, procs: int, logs: Path, verify: str
) -> tuple[list[Measured], dict[str, str]]:
    """The CLI from scratch (previous attributes and work files deleted), one measured process tree."""
    shutil.rmtree(corpus / "attributes" / "ours", ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    cmd = [*ours_command(), "--documents", f"{corpus}/documents/*/*.jsonl.gz", "--experiment", "ours"]
    cmd += ["--ngram", "5", "--num-perm", str(bands * rows), "--bands", str(bands), "--rows", str(rows)]
    cmd += ["--seed", str(seed), "--processes", str(procs), "--work-dir", str(work), "--verify", verify]
    measured = _checked(cmd, logs / "ours.log")
    return [measured], ours_clusters(corpus, "ours")


def ours_step_seconds(log: Path) -> dict[str, float]:
    """Seconds per step as the CLI prints them (`minhash signatures: 8 tasks (…), 9.0 s`)."""
    found = re.findall(r"^minhash (\w+): .*?([\d,.]+) s$", log.read_text(errors="replace"), re.M)
    return {step: float(sec.replace(",", "")) for step, sec in found}


def ours_clusters(corpus: Path, experiment: str) -> dict[str, str]:
    """Cluster label per document from the attributes (documents without a cluster id are alone)."""
    labels = {}
    for path in sorted((corpus / "attributes" / experiment).glob("*/*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for rec in map(json.loads, f):
                attrs = rec.get("attributes", {})
                cid = attrs.get(f"{experiment}__minhash__cluster_id")
                size = attrs.get(f"{experiment}__minhash__cluster_size")
                alone = not cid or (size and size[0][2] <= 1)
                labels[rec["id"]] = rec["id"] if alone else f"c{cid[0][2]}"
    return labels


def run_datatrove(
    python: Path, corpus: Path, work: Path, bands: int, rows: int, seed: int, procs: int, logs: Path
) -> tuple[list[Measured], dict[str, str]]:
    """The four stages, one measured process tree each; cluster ids read back from the kept + removed docs."""
    shutil.rmtree(work, ignore_errors=True)
    stages = []
    for stage in ("signatures", "buckets", "cluster", "filter"):
        cmd = _self(python, "--child", f"datatrove-{stage}", "--corpus", corpus, "--work", work)
        cmd += ["--bands", bands, "--rows", rows, "--seed", seed, "--processes", procs]
        stages.append(_checked(cmd, logs / f"datatrove-{stage}.log"))
    labels = {}
    for path in sorted(work.glob("kept/*.jsonl.gz")) + sorted(work.glob("removed/*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for rec in map(json.loads, f):
                cid = rec.get("metadata", {}).get("minhash_cluster_id", -1)
                labels[rec["id"]] = rec["id"] if cid == -1 else f"c{cid}"
    return stages, labels


def run_datasketch(
    corpus: Path, work: Path, bands: int, rows: int, seed: int, logs: Path
) -> tuple[list[Measured], dict[str, str]]:
    """The datasketch loop in a child process, so its memory is measured on its own."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "clusters.json"
    cmd = _self(sys.executable, "--child", "datasketch", "--corpus", corpus, "--work", out)
    cmd += ["--bands", bands, "--rows", rows, "--seed", seed]
    measured = _checked(cmd, logs / "datasketch.log")
    return [measured], json.loads(out.read_text())


def signature_speed(
    tool: str, python: Path | str, corpus: Path, bands: int, rows: int, seed: int, logs: Path
) -> dict[str, float]:
    """`child_signature_speed` in a fresh process of the tool's own interpreter."""
    out = OUT / "results" / f"sigspeed-{tool}.json"
    cmd = _self(python, "--child", f"sigspeed-{tool}", "--corpus", corpus, "--work", out)
    cmd += ["--bands", bands, "--rows", rows, "--seed", seed]
    _checked(cmd, logs / f"sigspeed-{tool}.log")
    return json.loads(out.read_text())


# ------------------------------------------------------------------------------------------ report


def _sum(stages: list[Measured]) -> dict[str, float]:
    return {
        "wall_s": sum(m.wall_s for m in stages),
        "cpu_s": sum(m.cpu_s for m in stages),
        "peak_rss": max(m.peak_rss for m in stages),
        "peak_pss": max(m.peak_pss for m in stages),
    }


def print_report(result: dict[str, Any]) -> None:
    from dedup_corpus import p_candidate_and_verified, s_curve
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    b, r, t = result["bands"], result["rows"], result["threshold"]
    curve = Table(
        title=f"S-curve for bands {b} × rows {r} = {b * r} permutations; (1/b)^(1/r) = {(1 / b) ** (1 / r):.3f}"
    )
    curve.add_column("Jaccard")
    curve.add_column("P(candidate)", justify="right")
    curve.add_column(f"P(candidate and estimate ≥ {t:g})", justify="right")
    for j in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9):
        curve.add_row(f"{j:.2f}", f"{s_curve(j, b, r):.3f}", f"{p_candidate_and_verified(j, b, r, t):.3f}")
    console.print(curve)

    docs = result["docs"]
    table = Table(
        title=f"MinHash dedup: {docs:,} documents, {result['processes']} processes, true pairs: J ≥ {t:g}"
    )
    for col in ("tool", "wall s", "docs/s", "CPU s", "peak RSS Σ", "peak PSS Σ", "sig docs/CPU-s"):
        table.add_column(col, justify="left" if col == "tool" else "right")
    for col in ("precision", "recall", "S-curve recall", "FP pairs (S-curve)", "hard-neg merges", "pairs"):
        table.add_column(col, justify="right")
    for tool, row in result["tools"].items():
        sig = row.get("signature", {}).get("docs_per_cpu_s")
        table.add_row(
            tool,
            f"{row['wall_s']:.1f}",
            f"{docs / row['wall_s']:,.0f}",
            f"{row['cpu_s']:.1f}",
            mib(row["peak_rss"]),
            mib(row["peak_pss"]),
            f"{sig:,.0f}" if sig else "-",
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['expected_recall']:.4f}",
            f"{len(row['false_positive_j'])} ({row['expected_false_positives']:.0f})",
            str(row["hard_negative_merges"]),
            f"{row['predicted_pairs']:,}",
        )
    console.print(table)
    tools = result["tools"]
    if "ours" in tools:
        for peer in ("datatrove", "datasketch"):
            if peer in tools:
                ratio = tools[peer]["wall_s"] / tools["ours"]["wall_s"]
                sig_o = tools["ours"].get("signature", {}).get("docs_per_cpu_s")
                sig_p = tools[peer].get("signature", {}).get("docs_per_cpu_s")
                sig = f", signatures per core {sig_o / sig_p:.1f}×" if sig_o and sig_p else ""
                console.print(f"ours vs {peer}: docs/s {ratio:.1f}×{sig}")
    if "ours" in tools:
        console.print(targets_table(result))
    loads = ", ".join(f"{tool} {row['load_1min_after']:.1f}" for tool, row in tools.items())
    console.print(
        f"1-minute load average after each tool (others' work shares the cores when > processes): {loads}"
    )
    for tool, row in tools.items():
        if row.get("steps_s"):
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in row["steps_s"].items())
            console.print(f"{tool} steps: {steps}")
        fp = row["false_positive_j"]
        if fp:
            console.print(
                f"{tool}: {len(fp)} false-positive pairs, J from {fp[0]:.3f} to {fp[-1]:.3f} (median {fp[len(fp) // 2]:.3f})"
            )


def targets_table(result: dict[str, Any]) -> Any:
    """Ours against the issue's targets, one line each."""
    from rich.table import Table

    ours = result["tools"]["ours"]
    sig = ours["signature"]["docs_per_cpu_s"]
    gap = ours["recall"] - ours["expected_recall"]
    rows = [
        (f"signatures ≥ {TARGET_SIG_PER_CORE:,} docs/s per core", f"{sig:,.0f}", sig >= TARGET_SIG_PER_CORE),
        (
            f"precision ≥ {TARGET_PRECISION}",
            f"{ours['precision']:.4f}",
            ours["precision"] >= TARGET_PRECISION,
        ),
        ("no hard-negative merges", str(ours["hard_negative_merges"]), ours["hard_negative_merges"] == 0),
        (
            f"recall within {TARGET_RECALL_GAP * 100:g} points of the S-curve",
            f"{ours['recall']:.4f} vs {ours['expected_recall']:.4f}",
            abs(gap) <= TARGET_RECALL_GAP,
        ),
    ]
    table = Table(title="ours against the targets")
    for col in ("target", "measured", "verdict"):
        table.add_column(col)
    for name, value, ok in rows:
        table.add_row(name, value, "[green]met[/]" if ok else "[red]missed[/]")
    return table


def lsh_only(n: int, bands: int, rows: int, threshold: float, logs: Path) -> dict[str, Any]:
    """Our LSH + clustering on `n` synthetic signatures (10% planted near-copies), peak memory measured."""
    import numpy as np

    sig_dir = OUT / f"lsh-signatures-{n}-{bands * rows}"
    if not (sig_dir / "done").exists():
        shutil.rmtree(sig_dir, ignore_errors=True)
        sig_dir.mkdir(parents=True)
        rng = np.random.default_rng(0)
        per = 100_000
        for k, lo in enumerate(range(0, n, per)):
            m = min(per, n - lo)
            sig = rng.integers(0, 2**32 - 1, size=(m, bands * rows), dtype=np.uint32)
            copies = rng.choice(m, size=m // 10, replace=False)
            src = rng.integers(0, m, size=len(copies))
            keep = rng.random((len(copies), bands * rows)) < 0.85  # estimated J ≈ 0.85 to the source
            sig[copies] = np.where(keep, sig[src], sig[copies])
            np.save(sig_dir / f"part-{k:04d}.npy", sig)
        (sig_dir / "done").touch()
    out = logs / "lsh-only.json"
    cmd = _self(sys.executable, "--child", "lsh-only", "--corpus", sig_dir, "--work", out)
    cmd += ["--bands", bands, "--rows", rows, "--threshold", threshold]
    m = _checked(cmd, logs / "lsh-only.log")
    counts = json.loads(out.read_text())
    return {
        "n": n,
        "wall_s": m.wall_s,
        "cpu_s": m.cpu_s,
        "peak_rss": m.peak_rss,
        "peak_pss": m.peak_pss,
        **counts,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 documents, 200 hard negatives")
    p.add_argument("--docs", type=int, default=20_000)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--bands", type=int, default=14)
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--threshold", type=float, default=0.7)
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    p.add_argument("--verify", choices=("exact", "estimate"), default="exact", help="ours: `--verify` mode")
    p.add_argument("--lsh-only", type=int, nargs="?", const=1_000_000, default=None, metavar="N")
    p.add_argument("--datatrove-venv", type=Path, default=OUT / "datatrove-venv")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    b, r, seed = args.bands, args.rows, args.seed
    if args.child:
        if args.child.startswith("datatrove-"):
            child_datatrove(
                args.child.removeprefix("datatrove-"), args.corpus, args.work, b, r, seed, args.processes
            )
        elif args.child.startswith("sigspeed-"):
            res = child_signature_speed(args.child.removeprefix("sigspeed-"), args.corpus, b, r, seed)
            args.work.write_text(json.dumps(res))
        elif args.child == "datasketch":
            child_datasketch(args.corpus, args.work, b, r, seed)
        elif args.child == "lsh-only":
            child_lsh_only(args.corpus, b, r, args.threshold, args.work)
        return

    logs = OUT / "logs" / "dedup"
    logs.mkdir(parents=True, exist_ok=True)
    (OUT / "results").mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    result: dict[str, Any] = {"date": stamp, "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    result |= {"bands": b, "rows": r, "threshold": args.threshold, "processes": args.processes}
    if args.lsh_only:
        res = lsh_only(args.lsh_only, b, r, args.threshold, logs)
        result["lsh_only"] = res
        ok = "meets" if res["peak_rss"] <= TARGET_LSH_BYTES else "MISSES"
        print(
            f"LSH + clustering on {res['n']:,} signatures: {res['wall_s']:.1f} s wall, {res['cpu_s']:.1f} CPU s, "
            f"peak RSS {mib(res['peak_rss'])}, PSS {mib(res['peak_pss'])} ({ok} the 2 GB target); "
            f"candidates {res['candidates']:,}, verified {res['verified']:,}, clusters {res['clusters']:,}"
        )
        (OUT / "results" / f"dedup-lsh-{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
        return

    from dedup_corpus import DedupCorpusSpec, ensure_dedup_corpus, p_candidate_and_verified, s_curve, score

    spec = (
        DedupCorpusSpec(docs=2_000, shards=4, hard_negatives=200)
        if args.quick
        else DedupCorpusSpec(docs=args.docs, shards=args.shards)
    )
    t0 = time.perf_counter()
    corpus, reused = ensure_dedup_corpus(spec, OUT, args.processes)
    print(f"corpus {corpus} ({'reused' if reused else f'generated in {time.perf_counter() - t0:.0f} s'})")
    truth = json.loads((corpus / "truth.json").read_text())
    texts = dict(read_docs(corpus))
    result["docs"] = len(texts)
    result["mean_chars"] = sum(map(len, texts.values())) / len(texts)
    true_j = [p["jaccard"] for p in truth["pairs"] if p["jaccard"] >= args.threshold]
    hn = truth["hard_negative_groups"]
    print(
        f"{len(texts):,} docs (mean {result['mean_chars']:,.0f} chars), {len(truth['pairs']):,} planted pairs "
        f"({len(true_j):,} with J ≥ {args.threshold:g}), {sum(len(g['ids']) for g in hn):,} hard negatives in "
        f"{len(hn)} groups (pairwise J ≤ {max(g['max_jaccard'] for g in hn):.3f})"
    )
    s_expected = sum(s_curve(j, b, r) for j in true_j) / len(true_j)
    v_expected = sum(p_candidate_and_verified(j, b, r, args.threshold) for j in true_j) / len(true_j)
    # planted pairs below the threshold that the S-curve (or verification) still lets through, on average
    false_j = [p["jaccard"] for p in truth["pairs"] if p["jaccard"] < args.threshold]
    s_fp = sum(s_curve(j, b, r) for j in false_j)
    v_fp = sum(p_candidate_and_verified(j, b, r, args.threshold) for j in false_j)

    result["tools"] = {}
    for tool in args.tools:
        print(f"[{tool}]", flush=True)
        work = OUT / "dedup-work" / tool
        if tool == "ours":
            stages, labels = run_ours(corpus, work, b, r, seed, args.processes, logs, args.verify)
            python: Path | str = sys.executable
        elif tool == "datatrove":
            python = ensure_datatrove(args.datatrove_venv)
            stages, labels = run_datatrove(python, corpus, work, b, r, seed, args.processes, logs)
        else:
            python = sys.executable
            stages, labels = run_datasketch(corpus, work, b, r, seed, logs)
        row: dict[str, Any] = _sum(stages)
        row["load_1min_after"] = os.getloadavg()[0]  # above --processes: other work shared the cores
        row["stages"] = [m.__dict__ for m in stages]
        row |= score(labels, truth, args.threshold, texts)
        estimate = tool == "ours" and args.verify == "estimate"
        row["expected_recall"] = v_expected if estimate else s_expected
        row["expected_false_positives"] = v_fp if estimate else (0.0 if tool == "ours" else s_fp)
        row["signature"] = signature_speed(tool, python, corpus, b, r, seed, logs)
        if tool == "ours":
            row["steps_s"] = ours_step_seconds(logs / "ours.log")
        elif tool == "datatrove":
            names = ("signatures", "buckets", "cluster", "filter")
            row["steps_s"] = {n: m.wall_s for n, m in zip(names, stages, strict=True)}
        result["tools"][tool] = row
    result["expected_recall_s_curve"] = s_expected
    result["expected_recall_verified"] = v_expected
    result["verify"] = args.verify
    print_report(result)
    path = OUT / "results" / f"dedup-{stamp}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
