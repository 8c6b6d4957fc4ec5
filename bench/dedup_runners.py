"""Running each tool as users would, measured as its own process tree, and reading back its clusters.

Ours runs as the `dolma-kit dedup minhash` CLI, datatrove as four stage processes and datasketch as one
loop, each through bench/dedup.py's `--child` entry where it needs one (bench/dedup_children.py), so the
three are measured alike (bench/_util.py). Every runner returns the cluster label of each document, which is
all that scoring needs. Like the children, this module imports only the standard library and bench/_util.py
at the top: bench/dedup.py imports it also when it runs as a datatrove child.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from _util import Measured, run_measured
from dedup_children import OUT

#: datatrove's MinHash splits English words with a blank spaCy pipeline, and its JsonlReader needs orjson;
#: neither is in the `processing` extra. Nothing here pulls torch.
DATATROVE_INSTALL = ["datatrove[processing]==0.10.1", "spacy>=3.8", "orjson"]
#: the script whose `--child` entry runs the children (bench/dedup_children.py)
DEDUP_SCRIPT = Path(__file__).resolve().with_name("dedup.py")


def _checked(cmd: list[Any], log: Path) -> Measured:
    cmd = [str(c) for c in cmd]
    print(f"  $ {' '.join(cmd[:8])}{' …' if len(cmd) > 8 else ''}  (log: {log})", flush=True)
    measured = run_measured(cmd, log)
    if measured.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"command failed ({measured.returncode}): {' '.join(cmd)}\n{tail}")
    return measured


def _self(python: Path | str, *args: object) -> list[str]:
    return [str(python), str(DEDUP_SCRIPT), *map(str, args)]


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
