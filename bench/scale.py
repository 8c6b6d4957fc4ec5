"""Scale-out benchmark: docs/s of `dolma-kit tag` and `dolma-kit dedup minhash` per executor on the same cores.

    .venv/bin/python bench/scale.py            # 20,000 documents, 8 shards, 2 repeats (~10 minutes on 2 cores)
    .venv/bin/python bench/scale.py --quick    # 2,000 documents, 1 repeat: checks the plumbing

Executors, each run as the CLI users call (start-up included), over the same shards, writing fresh outputs:
- local, 1 process and local, 2 processes (the default executor);
- Ray, cold: `--executor ray -p 2`, a local 2-CPU cluster started (and stopped) by the command itself;
- Ray, warm: `--executor ray --ray-address ADDR`, joining a 2-CPU cluster that is already running (the way a
  real cluster is used; its start-up is not timed, and it is stopped before the local runs, so its idle
  processes never share the cores with them).

The Ray overhead is its wall time over the 2-process local run's, in %, and, since wall time on a shared
machine depends on what else runs, also its CPU time over the local run's (CPU seconds of the command's
process tree; for a joined cluster plus what the cluster's processes used meanwhile, children reaped included).
Repeats interleave the executors and keep each one's fastest run, since other work on a shared machine only
ever makes a run slower. Every run's outputs are hashed: the table says whether they are identical to the
local run's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from _util import Measured, _cpu_ticks, process_tree, run_measured, wait_until_idle
from corpus import CorpusSpec, ensure_corpus
from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
TAGGERS = ["gopher", "c4", "pii", "char_length"]
STAGES = ("tag", "minhash")
KINDS = ("local-1", "local-2", "ray-cold", "ray-warm")
TARGET_OVERHEAD = 15.0
EXECUTORS = (
    "local, 1 process",
    "local, 2 processes",
    "ray, cold (starts a cluster)",
    "ray, warm (joins one)",
)
# A loopback-only single-machine Ray cluster (see dolma_kit/executor_ray.py), token authentication as Ray's
# default; the drivers that join it need RAY_AUTH_MODE=token to send the token (~/.ray/auth_token).
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
HOLDER = """
import sys, ray
ray.init(num_cpus=2, include_dashboard=False, logging_level="error", object_store_memory=256 * 2**20)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""

console = Console(width=None if sys.stdout.isatty() else 150)


@dataclass
class Run:
    stage: str
    executor: str
    repeat: int
    measured: Measured
    outputs: str
    """sha256 over the output files (markers and summaries aside): equal means byte-identical outputs."""
    cluster_cpu_s: float = 0.0
    """CPU seconds a joined cluster's processes used during the run (0 for the other executors)."""

    @property
    def cpu_s(self) -> float:
        return self.measured.cpu_s + self.cluster_cpu_s


class Cluster:
    """A running 2-CPU Ray cluster held by a child process; closing its stdin shuts it down (no `ray stop`,
    which would end every Ray process on the machine)."""

    def ticks(self) -> dict[int, int]:
        """CPU ticks (user + system) of each live process of the cluster."""
        out = {}
        for pid in process_tree(self.proc.pid):
            ticks = _cpu_ticks(pid)
            if ticks is not None:
                out[pid] = ticks
        return out

    @contextmanager
    def cpu_meter(self) -> Iterator[list[float]]:
        """CPU seconds the cluster's processes use inside the block: polled every 0.1 s, so workers that start
        and end within it count (up to their last poll) though they are not the measured command's children."""
        base, last = self.ticks(), {}
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(0.1):
                last.update(self.ticks())

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        used = [0.0]
        try:
            yield used
        finally:
            stop.set()
            thread.join()
            last.update(self.ticks())
            used[0] = sum(t - base.get(pid, 0) for pid, t in last.items()) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> str:
        env = {**os.environ, **RAY_ENV}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stdout is not None
        address = self.proc.stdout.readline().strip()
        if not address:
            raise SystemExit("the Ray cluster did not start")
        return address

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


def command(stage: str, shards: list[str], out: Path, executor: str, address: str | None) -> list[str]:
    if stage == "tag":
        what = ["tag", "--documents", *shards, "--experiment", "scale", "--taggers", *TAGGERS]
    else:
        what = ["dedup", "minhash", "--documents", *shards, "--experiment", "scale_mh"]
        what += ["--work-dir", str(out / "minhash-work")]
    how = {
        EXECUTORS[0]: ["--processes", "1"],
        EXECUTORS[1]: ["--processes", "2"],
        EXECUTORS[2]: ["--executor", "ray", "--processes", "2"],
        EXECUTORS[3]: ["--executor", "ray", "--ray-address", str(address)],
    }[executor]
    return [sys.executable, "-m", "dolma_kit", *what, "--destination", str(out / stage), "--force", *how]


def digest(roots: list[Path]) -> str:
    h = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.endswith((".done", "_summary.json", "_report.json")):
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def measure(stage: str, executor: str, repeat: int, shards: list[str], out: Path, cluster: Cluster | None = None,
            address: str | None = None) -> Run:  # fmt: skip
    wait_until_idle(20)
    env = {**os.environ, **RAY_ENV, "RAY_AUTH_MODE": "token"} if "ray" in executor else None
    log = out / "logs" / f"{stage}-{EXECUTORS.index(executor)}-{repeat}.log"
    with cluster.cpu_meter() if cluster else nullcontext([0.0]) as cluster_cpu:
        m = run_measured(command(stage, shards, out, executor, address), log, env=env)
    if m.returncode != 0:
        raise SystemExit(f"{stage} on {executor} failed; see {log}:\n{log.read_text()[-3000:]}")
    outputs = digest([out / stage] + ([out / "minhash-work"] if stage == "minhash" else []))
    console.print(
        f"{stage:7} {executor:32} repeat {repeat}: {m.wall_s:6.1f} s (other CPU {m.other_cpu_s:.1f} s)"
    )
    return Run(stage, executor, repeat, m, outputs, cluster_cpu[0])


def table(runs: list[Run], docs: int) -> tuple[Table, dict[str, dict[str, float]]]:
    best: dict[tuple[str, str], Run] = {}
    for r in runs:
        key = (r.stage, r.executor)
        if key not in best or r.measured.wall_s < best[key].measured.wall_s:
            best[key] = r
    t = Table(title=f"docs/s per executor on the same 2 cores, {docs:,} documents (best of the repeats)")
    cols = (
        "stage",
        "executor",
        "wall s",
        "docs/s",
        "wall vs local 2 p",
        "CPU s",
        "CPU vs local 2 p",
        "other CPU s",
    )
    for col in (*cols, "identical"):
        t.add_column(col, justify="left" if col in ("stage", "executor") else "right")
    overheads: dict[str, dict[str, float]] = {}
    for stage in sorted({r.stage for r in runs}, key=STAGES.index):
        ref = best[(stage, EXECUTORS[1])]
        for executor in (e for e in EXECUTORS if (stage, e) in best):
            r = best[(stage, executor)]
            m = r.measured
            over = 100 * (m.wall_s / ref.measured.wall_s - 1)
            cpu_over = 100 * (r.cpu_s / ref.cpu_s - 1)
            if "ray" in executor:
                overheads.setdefault(stage, {})[executor] = round(over, 1)
                overheads[stage][executor + ", CPU"] = round(cpu_over, 1)
            t.add_row(
                stage,
                executor,
                f"{m.wall_s:,.1f}",
                f"{docs / m.wall_s:,.0f}",
                "" if executor == EXECUTORS[1] else f"{over:+.1f}%",
                f"{r.cpu_s:,.1f}",
                "" if executor == EXECUTORS[1] else f"{cpu_over:+.1f}%",
                f"{max(0.0, m.other_cpu_s - r.cluster_cpu_s):,.1f}",
                "yes" if r.outputs == ref.outputs else "NO",
            )
    return t, overheads


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=20_000, help="documents (default 20,000)")
    p.add_argument("--shards", type=int, default=8, help="shards (default 8)")
    p.add_argument("--repeats", type=int, default=2, help="runs per executor; the fastest counts (default 2)")
    p.add_argument("--quick", action="store_true", help="2,000 documents, 1 repeat")
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages (default: both)")
    p.add_argument(
        "--executors", nargs="+", choices=KINDS, default=list(KINDS), help="executors (local-2 always runs)"
    )
    args = p.parse_args()
    if args.quick:
        args.docs, args.repeats = 2_000, 1
    out = BENCH_DIR / "out"
    spec = CorpusSpec(docs=args.docs, shards=args.shards)
    root, _ = ensure_corpus(spec, out, 2)
    shards = sorted(str(s) for s in (root / "documents").glob("*/*.jsonl.gz"))
    work = out / f"scale-{args.docs}d"
    started = datetime.now(timezone.utc)
    runs: list[Run] = []
    for repeat in range(args.repeats):
        chosen = {EXECUTORS[KINDS.index(k)] for k in args.executors} | {EXECUTORS[1]}
        for executor in (e for e in EXECUTORS[:3] if e in chosen):
            for stage in args.stages:
                runs.append(measure(stage, executor, repeat, shards, work))
        if EXECUTORS[3] not in chosen:
            continue
        cluster = Cluster()
        with cluster as address:
            time.sleep(2)  # let the cluster's own start-up settle before timing
            for stage in args.stages:
                runs.append(measure(stage, EXECUTORS[3], repeat, shards, work, cluster, address))
    result, overheads = table(runs, args.docs)
    console.print(result)
    console.print(
        "CPU s: the command's process tree, plus for a joined cluster what its processes used meanwhile. "
        "other CPU s: what the rest of the machine used meanwhile (> 0: the timing shared the cores; a run "
        "with much of it is slower than it would be alone)."
    )
    for executor, over in overheads.get("tag", {}).items():
        if not executor.endswith(", CPU"):
            cpu = overheads["tag"][executor + ", CPU"]
            verdict = "met" if over <= TARGET_OVERHEAD else "NOT met"
            console.print(f"Ray overhead on tag, {executor}: wall {over:+.1f}%, CPU {cpu:+.1f}% "
                          f"(target: wall ≤ {TARGET_OVERHEAD:g}%: {verdict})")  # fmt: skip
    path = out / "results" / f"scale-{started.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "started": started.isoformat(),
        "docs": args.docs,
        "shards": args.shards,
        "cores": os.cpu_count(),
        "overhead_percent": overheads,
        "runs": [asdict(r) | {"cpu_s_total": r.cpu_s} for r in runs],
    }
    path.write_text(json.dumps(report, indent=1) + "\n")
    console.print(f"saved {path}")


if __name__ == "__main__":
    main()
