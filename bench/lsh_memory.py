"""Peak memory of one LSH band task, whole and in hash partitions (issue 17: ≤ 1 GB per task at any size).

    .venv/bin/python bench/lsh_memory.py                          # 4M documents, P = 1 / 4 / 16
    .venv/bin/python bench/lsh_memory.py --docs 500000 --partitions 1 2

Synthetic signatures (`lsh.synthetic_signatures`: 10% planted near duplicates, 112 permutations, 9 bands of
12 rows) are written once as 16 signature shards, as `dedup minhash` writes them. Then, each in a fresh
process:

- P = 1: `band_shard` for band 0, what the LSH step runs per band by default;
- P > 1: the keys pass for every shard (`key_shard`), then `partition_shard` for each partition of band 0,
  one after another in that process, so its peak is the largest task's.

Peaks are VmHWM minus RSS before the work (what it needed): the keys pass's (it scales with a shard's documents
× bands, not with the corpus), then, reset through /proc/self/clear_refs, the largest band task's, also per
corpus document. CPU s covers band 0 only (P = 1) or the keys pass for all bands plus band 0's P tasks.
The candidate pairs of band 0 are checked equal across P (sorted union of the partition files).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARDS = 16
BANDS, ROWS = 9, 12

CHILD = r"""
import json, sys, time, hashlib
from pathlib import Path
import numpy as np
from dolma_kit.dedup import lsh_partition as lp
from dolma_kit.dedup.minhash import MinhashConfig
from dolma_kit.executor import ShardStats, ShardTask

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

root, parts, bands, rows = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mh = MinhashConfig(num_perm=bands * rows, bands=bands, rows=rows)
sig_paths = sorted(str(p) for p in (root / "sigs").glob("*.npy"))
out = root / f"p{parts}"
out.mkdir(exist_ok=True)
start = status("VmRSS")
t = time.process_time()
keys_peak = 0
if parts == 1:
    task = ShardTask(key="band-000.npy", input=str(root), output=str(out / "band-000.npy"))
    lp.band_shard(task, ShardStats(shard=task.key), band=0, minhash=mh, sig_paths=sig_paths)
    outputs = [task.output]
else:
    rows_per = [np.load(p, mmap_mode="r").shape[0] for p in sig_paths]
    firsts = np.concatenate(([0], np.cumsum(rows_per)))
    keys = []
    for i, p in enumerate(sig_paths):
        task = ShardTask(key=f"k{i}.npy", input=p, output=str(out / f"keys-{i}.npy"))
        lp.key_shard(task, ShardStats(shard=task.key), minhash=mh, first=int(firsts[i]), partitions=parts)
        keys.append(task.output)
    keys_peak = status("VmHWM") - start
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM: what follows is the band tasks' own peak
    start = status("VmRSS")
    outputs = []
    for j in range(parts):
        task = ShardTask(key=f"b0p{j}.npy", input=str(root), output=str(out / f"band-000-part-{j:04d}.npy"))
        lp.partition_shard(task, ShardStats(shard=task.key), slot=j, minhash=mh, key_paths=keys)
        outputs.append(task.output)
cpu = time.process_time() - t
pairs = np.concatenate([np.load(p) for p in outputs])
pairs = np.unique(pairs, axis=0) if len(pairs) else pairs
print(json.dumps({"peak_above_start": status("VmHWM") - start, "keys_peak": keys_peak, "cpu_s": cpu, "pairs": int(len(pairs)),
                  "digest": hashlib.sha256(pairs.tobytes()).hexdigest()[:16]}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=4_000_000)
    p.add_argument("--partitions", type=int, nargs="+", default=[1, 4, 16])
    args = p.parse_args()
    import numpy as np

    from dolma_kit.dedup.lsh import synthetic_signatures

    with tempfile.TemporaryDirectory(prefix="lsh-memory-") as tmp:
        root = Path(tmp)
        (root / "sigs").mkdir()
        per = -(-args.docs // SHARDS)
        for s in range(SHARDS):
            n = min(per, args.docs - s * per)
            sig, _ = synthetic_signatures(n, BANDS * ROWS, seed=s)
            np.save(root / "sigs" / f"shard-{s:03d}.npy", sig)
            del sig
        print(f"{args.docs:,} documents, {SHARDS} signature shards, {BANDS} bands × {ROWS} rows")
        print(f"{'P':>4} {'band task peak MiB':>19} {'bytes/doc':>10} {'keys pass peak MiB':>19} {'CPU s':>7} "
              f"{'pairs':>9}  equal")  # fmt: skip
        first = None
        for parts in args.partitions:
            cmd = [sys.executable, "-c", CHILD, str(root), str(parts), str(BANDS), str(ROWS)]
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout)
            first = first or out["digest"]
            peak = out["peak_above_start"]
            keys = f"{out['keys_peak'] / 2**20:,.0f}" if parts > 1 else "-"
            print(f"{parts:>4} {peak / 2**20:>19,.0f} {peak / args.docs:>10.1f} {keys:>19} {out['cpu_s']:>7.1f} "
                  f"{out['pairs']:>9,}  {'yes' if out['digest'] == first else 'NO'}")  # fmt: skip


if __name__ == "__main__":
    main()
