"""Distributed clustering against union-find on random graphs: rounds, CPU seconds, peak memory per task.

    .venv/bin/python bench/cluster_scale.py                       # 1M and 10M edges, 1 / 4 / 16 partitions
    .venv/bin/python bench/cluster_scale.py --edges 200000 --partitions 1 3

A graph of E uniformly random edges over E nodes (mean degree 2: a giant component holding ~80% of the nodes,
with long paths, plus many small ones: harder than MinHash's mostly tiny clusters) is written once as 4 sorted
pair files, as the LSH bands are. Each configuration then runs in a fresh process:

- partitions 1: what `dedup minhash`'s single cluster task does without verification (`unique_pairs` over
  all pair files, then `connected_components`);
- partitions P > 1: `cluster_components` with the local executor and one process, so its tasks run one after
  another in that process and its peak RSS is the largest task's (the driver holds only offsets and counts).

CPU s is that process's user + system time; peak RSS its VmHWM; "above start" is its peak RSS minus its RSS after imports, i.e. what
the work itself needed. Every configuration's labels are checked equal to union-find's, byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FILES = 4


def status(field: str) -> int:
    """Bytes of a /proc/self/status field: VmRSS (now) or VmHWM (this process's peak). Not `ru_maxrss`: Linux
    carries it across exec, so a child started from a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def make_graph(folder: Path, edges: int, shape: str, seed: int = 0) -> tuple[int, int, list[str]]:
    """(nodes, edges made, pair files) of a `random` graph (E edges over E nodes) or one of `clusters` (dedup-like:
    nodes in random groups of geometric size, mean ~3.3, each group a chain in random order, E edges)."""
    import numpy as np

    from dolma_kit.dedup.cluster_partition import save_pairs

    rng = np.random.default_rng(seed)
    if shape == "random":
        nodes, all_edges = edges, rng.integers(0, edges, (edges, 2), dtype=np.int64)
    else:
        nodes = int(edges / 0.7)
        group = np.repeat(np.arange(nodes), rng.geometric(0.3, nodes))[:nodes]  # sorted group ids
        perm = rng.permutation(nodes)
        same = group[1:] == group[:-1]
        all_edges = np.stack([perm[:-1][same], perm[1:][same]], axis=1)
    paths = []
    for i, part in enumerate(np.array_split(all_edges, FILES)):
        paths.append(str(folder / f"band-{i:03d}.npy"))
        save_pairs(paths[-1], part)
    return nodes, len(all_edges), paths


def child(spec: dict) -> dict:
    """One configuration, in this (fresh) process."""
    import numpy as np

    from dolma_kit.dedup.arrays import load_npy
    from dolma_kit.dedup.cluster_distributed import cluster_components
    from dolma_kit.dedup.lsh import connected_components, unique_pairs
    from dolma_kit.executor import ShardTask

    start_rss = status("VmRSS")
    n, paths, parts, out = spec["nodes"], spec["paths"], spec["partitions"], Path(spec["out"])
    t0 = time.process_time()
    rounds = 0
    if parts == 1:
        labels = connected_components(n, unique_pairs([load_npy(p, mmap=False) for p in paths], n))
        np.save(out / "labels.npy", labels)
    else:
        task = ShardTask(key="labels.npy", input=str(out), output=str(out / "labels.npy"))
        result = cluster_components(n=n, pair_paths=paths, output=task, partitions=parts, verify=None,
                                    reason="dup", options={"processes": 1, "force": True})  # fmt: skip
        rounds = int(result.title.split(", ")[1].split()[0])
    cpu = time.process_time() - t0
    peak = status("VmHWM")
    digest = hashlib.sha1((out / "labels.npy").read_bytes()).hexdigest()
    return {
        "cpu_s": cpu,
        "peak_rss": peak,
        "above_start": peak - start_rss,
        "rounds": rounds,
        "digest": digest,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--edges", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--partitions", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--shapes", nargs="+", default=["clusters", "random"], choices=["clusters", "random"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    rows = []
    for shape, edges in [(s, e) for s in args.shapes for e in args.edges]:
        work = Path(tempfile.mkdtemp(prefix="cluster-scale-"))
        try:
            nodes, made, paths = make_graph(work, edges, shape)
            reference = None
            for parts in args.partitions:
                out = work / f"p{parts}"
                out.mkdir()
                spec = {"nodes": nodes, "paths": paths, "partitions": parts, "out": str(out)}
                proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], check=True,
                                      capture_output=True, text=True, cwd=ROOT)  # fmt: skip
                got = json.loads(proc.stdout.strip().splitlines()[-1])
                reference = reference or got["digest"]
                rows.append(
                    {
                        "shape": shape,
                        "nodes": nodes,
                        "edges": made,
                        "partitions": parts,
                        **got,
                        "same": got["digest"] == reference,
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
                shutil.rmtree(out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    base = {(r["shape"], r["nodes"]): r for r in rows if r["partitions"] == min(args.partitions)}
    print(
        "| graph | nodes | edges | partitions | rounds | CPU s | vs union-find | peak RSS MB | above start MB | labels |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ratio = r["cpu_s"] / max(base[r["shape"], r["nodes"]]["cpu_s"], 1e-9)
        rounds = r["rounds"] or "(union-find)"
        print(f"| {r['shape']} | {r['nodes']:,} | {r['edges']:,} | {r['partitions']} | {rounds} | {r['cpu_s']:.1f} | "
              f"{ratio:.1f}× | {r['peak_rss'] / 2**20:,.0f} | {r['above_start'] / 2**20:,.0f} | "
              f"{'same' if r['same'] else 'DIFFERENT'} |")  # fmt: skip


if __name__ == "__main__":
    main()
