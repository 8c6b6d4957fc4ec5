"""How bench/tag.py runs both tools: Dolma 1.2.1's venv, the tagger lists, fresh outputs, measured runs.

Both sides must run the same way (same shards, same process count, no resumed outputs) for the timings to
compare, so one `Runner` starts either CLI; the tagger lists and like-for-like configurations live here
because the runs, the comparison and the report all name them. bench/mix_bench.py and bench/mix_tokenize.py
reuse `ensure_dolma` for their own Dolma side.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from _util import Measured, run_measured, wait_until_idle
from rich.console import Console

OURS_TAGGERS = ["gopher", "c4", "pii", "char_length"]
DOLMA_TAGGERS = ["gopher_v1", "c4_v2", "pii_regex_with_counts_fast_v2", "char_length_v1"]
C4_LIKE_DOLMA = "c4:min_sentences=1,min_words_per_line=3"
GOPHER_LIKE_DOLMA = "gopher_dolma"
DOLMA_INSTALL = ["dolma==1.2.1", "boto3==1.28.17", "numpy<2"]

#: wide tables even when piped to a file (rich falls back to 80 columns there)
console = Console(width=None if sys.stdout.isatty() else 150)


def ensure_dolma(venv: Path) -> Path:
    """The `dolma` executable of `venv`, installing Dolma 1.2.1 there first if it is missing.

    The boto3 pin keeps pip from backtracking for minutes; Dolma 1.2.1 breaks under numpy 2 (DESIGN §4).
    """
    exe = venv / "bin" / "dolma"
    if exe.exists():
        return exe
    console.print(f"[bold]installing Dolma 1.2.1 into {venv}[/] (one time, a few minutes)")
    subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *DOLMA_INSTALL], check=True)
    return exe


def attribute_path(shard: str, experiment: str) -> Path:
    """Where both tools write a shard's attributes: the last `documents/` becomes `attributes/<experiment>/`.

    Both mirror the path below it because the bench passes explicit files (Dolma drops the source folder
    when given a `documents/*/*` glob: it mirrors only the part below the glob's fixed prefix).
    """
    head, _, rel = shard.rpartition("/documents/")
    return Path(f"{head}/attributes/{experiment}/{rel}")


def fresh(shards: list[str], experiment: str) -> None:
    """Delete an experiment's previous attributes, so every run computes everything (no resume, no skip)."""
    for head in {s.rpartition("/documents/")[0] for s in shards}:
        shutil.rmtree(f"{head}/attributes/{experiment}", ignore_errors=True)


@dataclass(frozen=True)
class Runner:
    """Runs either tool the same way: same shards, same process count, fresh output, measured as a tree."""

    processes: int
    logs: Path
    wait_idle_s: float = 0.0
    """Before each run, wait up to this long for other processes to leave the cores idle (shared machines)."""

    def ours(self, shards: list[str], experiment: str, taggers: list[str]) -> Measured:
        fresh(shards, experiment)
        cmd = [sys.executable, "-m", "dolma_kit", "tag", "--documents", *shards, "--experiment", experiment]
        cmd += ["--taggers", *taggers, "--processes", str(self.processes), "--force"]
        return self._run(cmd, self.logs / f"{experiment}.log")

    def dolma(self, exe: Path, shards: list[str], experiment: str) -> Measured:
        fresh(shards, experiment)
        cmd = [str(exe), "tag", "--documents", *shards, "--experiment", experiment]
        cmd += ["--taggers", *DOLMA_TAGGERS, "--processes", str(self.processes), "--ignore_existing"]
        return self._run(cmd, self.logs / f"{experiment}.log")

    def _run(self, cmd: list[str], log: Path) -> Measured:
        if self.wait_idle_s > 0:
            busy = wait_until_idle(self.wait_idle_s)
            if busy >= 0.05:
                console.print(f"[yellow]cores still {100 * busy:.0f}% busy after waiting; running anyway[/]")
        console.print(f"[dim]$ {' '.join(cmd[:6])} …  (log: {log})[/]")
        measured = run_measured(cmd, log)
        if measured.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"command failed ({measured.returncode}): {' '.join(cmd)}\n{tail}")
        return measured
