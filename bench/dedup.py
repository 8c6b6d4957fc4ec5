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
so this module and the helpers it imports at the top (bench/dedup_children.py, dedup_runners.py,
dedup_report.py) import only the standard library and bench/_util.py there; bench/dedup_corpus.py, which
needs dolma-kit, is imported inside the functions that use it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _util import Measured, mib
from dedup_children import (
    OUT,
    child_datasketch,
    child_datatrove,
    child_lsh_only,
    child_signature_speed,
    read_docs,
)
from dedup_report import TARGET_LSH_BYTES, print_report
from dedup_runners import (
    ensure_datatrove,
    lsh_only,
    ours_step_seconds,
    run_datasketch,
    run_datatrove,
    run_ours,
    signature_speed,
)

TOOLS = ("ours", "datatrove", "datasketch")


def _sum(stages: list[Measured]) -> dict[str, float]:
    return {
        "wall_s": sum(m.wall_s for m in stages),
        "cpu_s": sum(m.cpu_s for m in stages),
        "peak_rss": max(m.peak_rss for m in stages),
        "peak_pss": max(m.peak_pss for m in stages),
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
