"""The id index build (tokenize's publish step): CPU seconds and peak RSS at 1 M, 10 M and 50 M documents.

Synthetic parts of 200,000 documents (about a 2^28-token part of web text), the id hashes a bijective mix of
the document number (distinct, uniformly spread, like xxh3 of distinct ids), written as tokenize writes them.
Each build runs in a fresh process that reports its own CPU time (`time.process_time`) and peak RSS
(VmHWM: Python and numpy included, ~33 MB). `external` is `tokenize.id_index.build_id_index` at its
default budget (or `--memory-mb`); `in-memory` is the build it replaced (one stable argsort over all
hashes), run where it fits (`--in-memory-max`, default 10 M). The external index is checked equal, byte for
byte, to the in-memory one wherever both ran.

    .venv/bin/python bench/id_index.py            # 1M 10M 50M (~2 GB of disk under bench/out/id-index)
    .venv/bin/python bench/id_index.py --sizes 1000000 --memory-mb 16
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

PART_DOCS = 200_000


def mixed(index: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64, so distinct document numbers give distinct hashes."""
    with np.errstate(over="ignore"):
        z = index.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def make_parts(folder: Path, documents: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k, start in enumerate(range(0, documents, PART_DOCS)):
        name = f"part-{k:05d}"
        np.save(folder / f"{name}.id_hashes.npy", mixed(np.arange(start, min(start + PART_DOCS, documents))))
        names.append(name)
    return names


def in_memory(destination: str, parts: list[str]) -> None:
    """The build before tokenize.id_index (publish.build_id_index up to this change), index files only."""
    hashes = [np.load(f"{destination}/{p}.id_hashes.npy") for p in parts]
    counts = [len(h) for h in hashes]
    all_hashes = np.concatenate(hashes)
    part_ids = np.repeat(np.arange(len(parts), dtype=np.uint32), counts)
    doc_ids = np.concatenate([np.arange(c, dtype=np.uint32) for c in counts])
    order = np.argsort(all_hashes, kind="stable")
    for key, values in (("hashes", all_hashes), ("parts", part_ids), ("docs", doc_ids)):
        np.save(f"{destination}/id_index.{key}.npy", values[order])


def peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM, not ru_maxrss, which Linux carries over from the parent
    across the exec (a child of a big parent would report the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(method: str, folder: str, memory_mb: float | None) -> None:
    """One build in this process; prints {cpu_s, wall_s, peak_rss} as JSON."""
    from dolma_kit.tokenize import id_index

    parts = sorted(p.name.removesuffix(".id_hashes.npy") for p in Path(folder).glob("part-*.id_hashes.npy"))
    cpu, wall = time.process_time(), time.perf_counter()
    if method == "external":
        budget = int(memory_mb * 2**20) if memory_mb else id_index.MEMORY_BYTES
        id_index.build_id_index(folder, parts, memory_bytes=budget)
    else:
        in_memory(folder, parts)
    result = {
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
        "peak_rss": peak_rss(),
    }
    print(json.dumps(result))


def measure(method: str, folder: Path, memory_mb: float | None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", method, str(folder)]
    if memory_mb:
        cmd += ["--memory-mb", str(memory_mb)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def index_bytes(folder: Path) -> dict[str, bytes]:
    return {key: (folder / f"id_index.{key}.npy").read_bytes() for key in ("hashes", "parts", "docs")}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 50_000_000])
    parser.add_argument("--memory-mb", type=float, help="the external build's budget (default: its own)")
    parser.add_argument(
        "--in-memory-max", type=int, default=10_000_000, help="largest size for the old build"
    )
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.memory_mb)
        return
    rows = []
    for size in args.sizes:
        folder = OUT / "id-index" / f"docs-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        make_parts(folder, size)
        row = {"documents": size, "external": measure("external", folder, args.memory_mb)}
        if size <= args.in_memory_max:
            external = index_bytes(folder)
            row["in_memory"] = measure("in-memory", folder, None)
            row["identical"] = index_bytes(folder) == external
            del external
        rows.append(row)
        shutil.rmtree(folder)
    print(
        f"{'documents':>12} | {'build':<9} | {'CPU s':>7} | {'CPU s / M docs':>14} | {'peak RSS MB':>11} | same bytes"
    )
    for row in rows:
        for method in ("external", "in_memory"):
            if method in row:
                m = row[method]
                same = {True: "yes", False: "NO"}.get(row.get("identical"), "")  # type: ignore[arg-type]
                print(
                    f"{row['documents']:>12,} | {method:<9} | {m['cpu_s']:>7.1f} | "
                    f"{m['cpu_s'] / row['documents'] * 1e6:>14.2f} | {m['peak_rss'] / 2**20:>11.0f} | {same}"
                )
    results = OUT / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "id_index.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
