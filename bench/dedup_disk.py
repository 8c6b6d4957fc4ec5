"""Dedup intermediate disk after a successful run, against the gzipped input (issue 17: target ≤ 1×).

    .venv/bin/python bench/dedup_disk.py                # the 1,454-document real-text corpus of dolma_peer
    .venv/bin/python bench/dedup_disk.py --docs 5000

Runs `dolma-kit dedup minhash`, `dedup exact --key paragraphs` and `--key text` twice each on the same real
text (Debian docs, licences, man pages, web-like pages; `dolma_peer.real_corpus`): with `--keep-work`
(everything stays: what every run left before) and by default (MinHash's signatures, shingle sets and
candidates, exact dedup's hash and resolve files, removed once the attributes are written), and prints each
work dir's size by kind of file next to the gzipped input's.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from dolma_peer import BENCH_DIR, real_corpus

STAGES = {
    "minhash": ["dedup", "minhash"],
    "exact paragraphs": ["dedup", "exact", "--key", "paragraphs"],
    "exact text": ["dedup", "exact", "--key", "text"],
}


def _kind(path: Path) -> str:
    if "exact" in path.parts:
        return (
            "hash records"
            if "hash" in path.parts
            else "resolved"
            if "resolve" in path.parts
            else "plan, counts"
        )
    for suffix in (".sig.npy", ".shingles.npy", ".offsets.npy"):
        if path.name.endswith(suffix):
            return suffix.removesuffix(".npy").lstrip(".")
    if path.name.startswith("band-") and path.name.endswith(".npy"):
        return "candidate pairs"
    return "labels and the rest"


def work_sizes(work: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for path in work.rglob("*"):
        if path.is_file():
            out[_kind(path)] = out.get(_kind(path), 0) + path.stat().st_size
    return out


def run(corpus: Path, stage: str, experiment: str, *extra: str) -> dict[str, int]:
    shutil.rmtree(corpus / "attributes" / experiment, ignore_errors=True)
    cmd = [sys.executable, "-m", "dolma_kit", *STAGES[stage], "-d", f"{corpus}/documents/*/*.jsonl.gz"]
    cmd += ["-e", experiment, "-p", "2", *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return work_sizes(corpus / "attributes" / experiment / "_work")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=1454)
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "dedup-disk")
    args = p.parse_args()
    corpus = real_corpus(args.out / f"corpus-{args.docs}", docs=args.docs)
    gz = sum(f.stat().st_size for f in (corpus / "documents").rglob("*.jsonl.gz"))
    print(f"{args.docs:,} documents of real text, gzipped input {gz / 1e6:.2f} MB")
    for stage in STAGES:
        experiment = stage.replace(" ", "_")
        kept = run(corpus, stage, f"{experiment}_keep", "--keep-work")
        cleaned = run(corpus, stage, f"{experiment}_clean")
        print(f"\n{'dedup ' + stage:<22} {'--keep-work MB':>15} {'default MB':>11}")
        for kind in sorted(set(kept) | set(cleaned)):
            print(f"{kind:<22} {kept.get(kind, 0) / 1e6:>15.2f} {cleaned.get(kind, 0) / 1e6:>11.2f}")
        total_k, total_c = sum(kept.values()), sum(cleaned.values())
        print(f"{'total':<22} {total_k / 1e6:>15.2f} {total_c / 1e6:>11.2f}")
        print(f"{'× gzipped input':<22} {total_k / gz:>15.2f} {total_c / gz:>11.3f}")


if __name__ == "__main__":
    main()
