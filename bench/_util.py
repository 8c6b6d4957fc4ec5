"""Run a command and measure it as a whole process tree: wall time, CPU seconds, peak summed memory.

Both tools fan out into worker processes, so the parent's own numbers say little. CPU time is exact: the
measuring process becomes the subreaper of the command's tree (Linux `PR_SET_CHILD_SUBREAPER`), so processes
that outlive their parent (our worker forkserver and the workers it forks) are reparented here and reaped
after the command, and `RUSAGE_CHILDREN` then holds every descendant's CPU. (Before, `wait4` on the command
missed orphans, and the /proc poll lost what they spent after its last sample: ~0.15 CPU-s of a 2-process
run.) The poll of each live process's utime+stime stays as a floor. Memory is sampled from /proc every `interval` seconds: the peak of the *sum* over the tree of RSS
(what the brief asks for; it counts pages shared by forked workers once per process) and of PSS (shared
pages split between the processes that map them, so the sum is the tree's real footprint). No psutil: the
project venv does not ship it, and /proc gives all of this directly.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    """What one measured command cost; memory in bytes."""

    returncode: int
    wall_s: float
    cpu_s: float
    peak_rss: int
    peak_pss: int
    peak_procs: int
    other_cpu_s: float
    """CPU seconds other processes on the machine used meanwhile: > 0 means the timing shared the cores."""


def _children_map() -> dict[int, list[int]]:
    """parent pid -> child pids, from one scan of /proc (not every kernel has /proc/<pid>/task/*/children)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: fields resume after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children = _children_map()
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def machine_busy_s() -> float:
    """CPU seconds all processes have used since boot (user, nice, system, irq, softirq), from /proc/stat."""
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / _TICKS


def wait_until_idle(max_wait_s: float, *, threshold: float = 0.05, window_s: float = 3.0) -> float:
    """Wait (at most `max_wait_s`) until the machine's cores are busy less than `threshold` of a window.

    On a shared machine other people's jobs inflate wall times; waiting for a quiet moment is cheaper than
    rerunning. Returns the busy fraction of the last window (0-1 of all cores).
    """
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + max_wait_s
    while True:
        before = machine_busy_s()
        time.sleep(window_s)
        busy = (machine_busy_s() - before) / (window_s * cores)
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def _cpu_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)


def _rss_pss(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes; (0, 0) if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            rss = int(f.read().split()[1]) * _PAGE
        pss = 0
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1]) * 1024
                    break
        return rss, pss
    except (OSError, IndexError, ValueError):
        return 0, 0


def run_measured(
    cmd: list[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    interval: float = 0.1,
) -> Measured:
    """Run `cmd` (stdout and stderr to `log`) until it exits, sampling its process tree every `interval` s."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peak_rss = peak_pss = peak_procs = 0
    last_ticks: dict[int, int] = {}
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    ours_before = set(_children_map().get(os.getpid(), ()))
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = machine_busy_s()
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                wall = time.perf_counter() - start
                break
            tree = process_tree(proc.pid)
            rss = pss = 0
            for p in tree:
                r, s = _rss_pss(p)
                rss += r
                pss += s
                ticks = _cpu_ticks(p)
                if ticks is not None:
                    last_ticks[p] = ticks
            peak_rss, peak_pss, peak_procs = (
                max(peak_rss, rss),
                max(peak_pss, pss),
                max(peak_procs, len(tree)),
            )
            time.sleep(interval)
    proc.returncode = os.waitstatus_to_exitcode(
        status
    )  # reaped by wait4: tell Popen so it does not wait again
    reap_orphans(ours_before)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    exact = after.ru_utime + after.ru_stime - usage_before.ru_utime - usage_before.ru_stime
    cpu = max(exact, usage.ru_utime + usage.ru_stime, sum(last_ticks.values()) / _TICKS)
    others = max(0.0, machine_busy_s() - busy_before - cpu)  # includes this poller's own small share
    return Measured(proc.returncode, wall, cpu, peak_rss, peak_pss, peak_procs, others)


def reap_orphans(keep: set[int], timeout_s: float = 60.0) -> None:
    """Wait for the command's orphans (reparented to this subreaper), not for children this process had before
    it (a Ray cluster a benchmark holds): they end with the command (a forkserver exits with its driver)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        orphans = set(_children_map().get(os.getpid(), ())) - keep
        if not orphans:
            return
        for pid in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"
