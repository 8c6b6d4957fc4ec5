"""The fixed cost of a command: CPU seconds over its whole process tree on a corpus too small to matter.

    .venv/bin/python bench/startup.py                  # every command, workers forked (now) and spawned (before)
    .venv/bin/python bench/startup.py --runs 5 --only "dedup exact (text)"
    .venv/bin/python bench/startup.py --pipeline       # peak memory per stage of `dolma-kit run` (demo)

Issue target: ≤ 1.5 CPU-s for a stage command such as `dolma-kit dedup exact` on 200 documents. The corpus is
200 documents of real text the project did not write (Debian's documentation files under /usr/share/doc of
at most 8 KB, one file a document: ~0.5 MB), in 4 shards. Every command runs with its default `--processes` (all cores) as a user runs it, `--force`
so each run does the same work; CPU seconds come from `bench/_util.py:run_measured` (exact: this process is the
subreaper of the command's tree, so orphaned workers are reaped and counted too). Each row is the lowest of `--runs` runs (CPU seconds are
inflated, never deflated, by other work on the machine). `before` starts workers the old way
(DOLMA_KIT_WORKER_START=spawn: a fresh interpreter per worker per pass); `now` forks them from one forkserver.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _util import run_measured

ROOT = Path(__file__).resolve().parent.parent
TARGET_CPU_S = 1.5
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def make_corpus(root: Path, docs: int = 200, shards: int = 4) -> None:
    """`docs` Debian documentation files as documents, round-robin over `shards` shards of two sources."""
    texts: list[tuple[str, str]] = []
    for path in sorted(Path("/usr/share/doc").rglob("*")):
        if len(texts) == docs:
            break
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 8_000:
            continue
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
            continue
        if text.strip():
            texts.append((str(path), text))
    if len(texts) < docs:
        raise SystemExit(f"only {len(texts)} readable text files under /usr/share/doc")
    for shard in range(shards):
        out = root / "documents" / ("debian" if shard % 2 else "doc") / f"part-{shard:04d}.jsonl.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(out, "wt") as fh:
            for name, text in texts[shard::shards]:
                url = f"https://packages.debian.org/{Path(name).parent.name}"
                fh.write(json.dumps({"id": name, "text": text, "metadata": {"url": url}}) + "\n")
    (root / "eval.jsonl").write_text(json.dumps({"text": texts[0][1][:400]}) + "\n")


def commands(root: Path) -> dict[str, list[str]]:
    docs = f"{root}/documents/*/*.jsonl.gz"
    cli = [PYTHON, "-m", "dolma_kit"]
    return {
        "dolma-kit --help": [*cli, "--help"],
        "tag --help": [*cli, "tag", "--help"],
        "tag (char_length)": [*cli, "tag", "-d", docs, "-e", "t", "-t", "char_length", "--force"],
        "dedup exact (text)": [*cli, "dedup", "exact", "-d", docs, "-e", "x", "--key", "text", "--force"],
        "dedup exact (paragraphs)": [
            *cli,
            "dedup",
            "exact",
            "-d",
            docs,
            "-e",
            "p",
            "--key",
            "paragraphs",
            "--force",
        ],
        "dedup minhash": [*cli, "dedup", "minhash", "-d", docs, "-e", "m", "--force"],
        "decontaminate": [
            *cli,
            "decontaminate",
            "--eval",
            str(root / "eval.jsonl"),
            "-d",
            docs,
            "-e",
            "k",
            "--force",
        ],
        "stats": [*cli, "stats", str(root), "--force"],
        "tokenize (gpt2)": [
            *cli,
            "tokenize",
            "-d",
            docs,
            "--destination",
            str(root / "tokens"),
            "--tokenizer",
            "gpt2",
            "--force",
        ],
    }


def measure(cmd: list[str], log: Path, start: str, runs: int) -> tuple[float, float, int]:
    """(lowest CPU-s, its wall s, exit code) over `runs` runs with workers started by `start`."""
    env = {**os.environ, "DOLMA_KIT_WORKER_START": start}
    best: tuple[float, float, int] | None = None
    for _ in range(runs):
        m = run_measured(cmd, log, env=env, cwd=ROOT)
        if m.returncode != 0:
            return m.cpu_s, m.wall_s, m.returncode
        if best is None or m.cpu_s < best[0]:
            best = (m.cpu_s, m.wall_s, 0)
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=3, help="Runs per command and start method (the lowest counts)."
    )
    parser.add_argument("--only", nargs="*", help="Commands to run (names as printed).")
    parser.add_argument(
        "--pipeline", action="store_true", help="Instead: peak memory per stage of `dolma-kit run`."
    )
    parser.add_argument("--docs", type=int, default=1000, help="--pipeline: the demo corpus's documents.")
    options = parser.parse_args()
    results_dir = ROOT / "bench" / "out" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    if options.pipeline:
        print(
            f"`dolma-kit run pipelines/demo.yaml` ({options.docs:,} documents, 10 training steps): peak RSS MB"
        )
        print(
            "while each stage ran: the whole process tree, and the pipeline's own process; before: every stage in"
        )
        print("the pipeline's process, now: a child process per stage")
        print(f"{'stage':<18} {'tree before':>11} {'tree now':>9} {'own before':>11} {'own now':>8}")
        memory = pipeline_memory(options.docs, 10)
        for stage, p in memory.items():
            print(f"{stage:<18} {p.get('before', 0):>11,} {p.get('now', 0):>9,} {p.get('before_own', 0):>11,}"
                  f" {p.get('now_own', 0):>8,}")  # fmt: skip
        out = results_dir / "startup_pipeline.json"
        out.write_text(json.dumps({"docs": options.docs, "peak_rss_mb": memory}, indent=2) + "\n")
        print(f"saved {out.relative_to(ROOT)}")
        return
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        root = Path(tmp)
        make_corpus(root)
        print(
            f"200 Debian documentation files in 4 shards; {os.cpu_count()} cores; lowest of {options.runs} runs"
        )
        print(
            f"{'command':<26} {'before CPU-s':>12} {'now CPU-s':>10} {'now wall s':>11}  target ≤ {TARGET_CPU_S}"
        )
        for name, cmd in commands(root).items():
            if options.only and name not in options.only:
                continue
            log = root / "logs" / f"{name.replace(' ', '_')}.log"
            before = measure(cmd, log, "spawn", options.runs)
            now = measure(cmd, log, "forkserver", options.runs)
            failed = before[2] or now[2]
            mark = "FAILED" if failed else ("ok" if now[0] <= TARGET_CPU_S else "over")
            print(f"{name:<26} {before[0]:>12.2f} {now[0]:>10.2f} {now[1]:>11.2f}  {mark}", flush=True)
            results[name] = {"before_cpu_s": round(before[0], 3), "now_cpu_s": round(now[0], 3),
                             "now_wall_s": round(now[1], 3), "exit": failed}  # fmt: skip
    out = results_dir / "startup.json"
    out.write_text(
        json.dumps({"cores": os.cpu_count(), "runs": options.runs, "commands": results}, indent=2) + "\n"
    )
    print(f"saved {out.relative_to(ROOT)}")


def pipeline_memory(docs: int, steps: int) -> dict[str, dict[str, float]]:
    """Peak RSS of `dolma-kit run pipelines/demo.yaml`'s process tree while each stage ran (the stage running
    is the one whose `_pipeline/<name>.running` marker exists), every stage in the pipeline's process (before)
    and each in a child of its own (now)."""
    from _util import _rss_pss, process_tree

    out: dict[str, dict[str, float]] = {}
    for label, flag in (("before", "1"), ("now", "0")):
        with tempfile.TemporaryDirectory(prefix="pipeline-memory-") as tmp:
            work = Path(tmp) / "work"
            cmd = [PYTHON, "-m", "dolma_kit", "run", "pipelines/demo.yaml", f"--work_dir={work}",
                   f"--corpus.docs={docs}", f"--train.trainer.max_steps={steps}"]  # fmt: skip
            env = {**os.environ, "DOLMA_KIT_STAGES_IN_PROCESS": flag}
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            peaks: dict[str, float] = {}
            while proc.poll() is None:
                running = (
                    sorted((work / "_pipeline").glob("*.running")) if (work / "_pipeline").exists() else []
                )
                if running:
                    rss = sum(_rss_pss(pid)[0] for pid in process_tree(proc.pid)) / 2**20
                    own = _rss_pss(proc.pid)[0] / 2**20
                    stage = running[0].name.removesuffix(".running")
                    peaks[stage] = max(peaks.get(stage, 0.0), rss)
                    peaks[stage + " (own)"] = max(peaks.get(stage + " (own)", 0.0), own)
                time.sleep(0.05)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
        for stage, peak in peaks.items():
            name, _, own = stage.partition(" (own)")
            out.setdefault(name, {})[label + ("_own" if stage.endswith(" (own)") else "")] = round(peak)
    return out


if __name__ == "__main__":
    main()
