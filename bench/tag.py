"""Benchmark `dolma-kit tag` against Dolma 1.2.1 on the same shards: speed, memory, and agreement.

    .venv/bin/python bench/tag.py --quick            # 2,000 documents: checks the plumbing in ~1 minute
    .venv/bin/python bench/tag.py                    # 20,000 documents, 8 shards, 2 processes (~3 minutes)
    .venv/bin/python bench/tag.py --memory-check     # also ours on a 10x corpus: peak memory growth

Both tools run as the CLIs users call (start-up included), with the same process count, over the same
explicit list of shard files, writing fresh attributes (`attributes/dolma/…`, `attributes/ours/…`). Ours
runs `gopher c4 pii char_length`, Dolma `gopher_v1 c4_v2 pii_regex_with_counts_fast_v2 char_length_v1`.

Agreement compares document-level keep/drop decisions. Ours are the `ours__gopher__pass` and `ours__c4__pass`
attributes. Dolma's taggers only emit scores, so its decisions apply the same paper thresholds (taken from
our `GopherConfig` defaults, so both sides use one set of numbers) to its `gopher_v1` scores, and for C4
keep a document when it has no `{`, no lorem ipsum and at least one line that `c4_v2` does not flag, as
docs/quality-taggers.md describes. Our default C4 also requires 5 words per line and 3 sentences, which
Dolma lacks, so C4 is compared twice: with our defaults, and like-for-like against an extra (untimed) run of
`c4:min_sentences=1,min_words_per_line=3`. Gopher is likewise compared twice: our paper-faithful `gopher`
(its differences from Dolma are documented), and like-for-like as `gopher_dolma` (Dolma's definitions, same
run), whose `pass` must match Dolma's decision and whose every attribute value must equal Dolma's as written
(Dolma rounds scores to 5 decimals in its files). Every disagreement is broken down by the rule that fires on
one side only, with example ids and both values, so a systematic difference points at its cause.
"""

from __future__ import annotations

import argparse
import functools
import glob
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _util import Measured
from corpus import CorpusSpec, ensure_corpus
from tag_agreement import DOLMA_DECIMALS, compare, read_jsonl
from tag_report import TARGET_SPEEDUP, agreement_tables, memory_table, throughput_table
from tag_runner import (
    C4_LIKE_DOLMA,
    DOLMA_TAGGERS,
    GOPHER_LIKE_DOLMA,
    OURS_TAGGERS,
    Runner,
    console,
    ensure_dolma,
)

BENCH_DIR = Path(__file__).resolve().parent


def count_docs(shards: list[str]) -> tuple[int, float]:
    """(documents, MB of text) of the input, read once so both tools are judged on the same count."""
    docs = chars = 0
    for shard in shards:
        for doc in read_jsonl(Path(shard)):
            docs += 1
            chars += len(doc["text"].encode())
    return docs, chars / 1e6


# ------------------------------------------------------------------------------------------ main


def prepare_corpus(args: argparse.Namespace, out: Path) -> tuple[list[str], str]:
    """(shard files, description): the user's shards, or the generated corpus (built once, then reused)."""
    if args.documents:
        shards = sorted(os.path.abspath(p) for pattern in args.documents for p in glob.glob(pattern))
        if not shards or any("/documents/" not in s for s in shards):
            raise SystemExit("--documents: give shards under a 'documents/' folder (Dolma's layout)")
        return shards, ", ".join(args.documents)
    spec = CorpusSpec(docs=args.docs, shards=args.shards, seed=args.seed)
    t0 = time.perf_counter()
    root, reused = ensure_corpus(spec, out, args.processes)
    console.print(f"{'reusing' if reused else f'generated in {time.perf_counter() - t0:.0f} s:'} {root}")
    shards = sorted(str(p) for p in (root / "documents").glob("*/*.jsonl.gz"))
    return shards, f"synthetic, {spec.docs:,} docs in {spec.shards} shards, seed {spec.seed}"


def _git_commit() -> str:
    """The checked-out commit (with `+dirty` for local changes), so a figure can be traced to the code."""
    try:
        run = functools.partial(subprocess.run, capture_output=True, text=True, cwd=BENCH_DIR, check=True)
        commit = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--", "../dolma_kit"]).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    args = parse_args()
    started = datetime.now(timezone.utc)
    out = args.out.resolve()
    shards, corpus_name = prepare_corpus(args, out)
    docs, text_mb = count_docs(shards)
    report: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "corpus": corpus_name,
        "docs": docs,
        "text_mb": text_mb,
        "processes": args.processes,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "dolma_kit_commit": _git_commit(),
    }
    dolma = ensure_dolma(args.dolma_venv.resolve())
    runner = Runner(args.processes, out / "logs", args.wait_idle)

    dolma_runs: list[Measured] = []
    ours_runs: list[Measured] = []
    for i in range(args.repeat):  # alternate the tools, so a slow spell of a noisy VM hits both alike
        console.rule(f"run {i + 1}/{args.repeat}, Dolma 1.2.1: {' '.join(DOLMA_TAGGERS)}")
        dolma_runs.append(runner.dolma(dolma, shards, "dolma"))
        console.rule(f"run {i + 1}/{args.repeat}, dolma-kit: {' '.join(OURS_TAGGERS)}")
        ours_runs.append(runner.ours(shards, "ours", OURS_TAGGERS))
    report["walls"] = {"dolma": [m.wall_s for m in dolma_runs], "ours": [m.wall_s for m in ours_runs]}
    m_dolma = min(dolma_runs, key=lambda m: m.wall_s)
    m_ours = min(ours_runs, key=lambda m: m.wall_s)
    speedup, cpu_speedup = m_dolma.wall_s / m_ours.wall_s, m_dolma.cpu_s / m_ours.cpu_s
    rows = [("Dolma 1.2.1 (4 taggers)", m_dolma), ("dolma-kit (4 taggers)", m_ours)]
    if args.per_tagger or speedup < TARGET_SPEEDUP:  # which of ours to speed up
        rows += [(f"dolma-kit {t} alone", runner.ours(shards, f"ours_{t}", [t])) for t in OURS_TAGGERS]
    report.update(runs={name: asdict(m) for name, m in rows}, speedup=speedup, cpu_speedup=cpu_speedup)

    runner.ours(shards, "ours_like", [C4_LIKE_DOLMA, GOPHER_LIKE_DOLMA])  # untimed: agreement only
    results, values = compare(shards, "dolma", "ours", "ours_like")
    report["gopher_values"] = {**asdict(values), "mismatches": dict(values.mismatches)}
    report["agreement"] = [
        {
            **{k: v for k, v in asdict(a).items() if k != "diffs"},
            "percent": a.percent,
            "diffs": {f"{r} | {s}": n for (r, s), n in a.diffs.items()},
        }
        for a in results
    ]

    memory: list[tuple[int, Measured]] = []
    if args.memory_check:
        if args.documents:
            raise SystemExit("--memory-check needs the generated corpus (leave out --documents)")
        big = CorpusSpec(docs=args.docs * 10, shards=args.shards, seed=args.seed)
        console.rule(f"memory check: {big.docs:,} documents in {big.shards} shards")
        big_root, _ = ensure_corpus(big, out, args.processes)
        big_shards = sorted(str(p) for p in (big_root / "documents").glob("*/*.jsonl.gz"))
        memory = [(docs, m_ours), (big.docs, runner.ours(big_shards, "ours", OURS_TAGGERS))]
        report["memory"] = {str(n): asdict(m) for n, m in memory}

    console.rule("results")
    console.print(f"{report['date']}; dolma-kit {report['dolma_kit_commit']}; {report['machine']}")
    console.print(f"$ {report['command']}\ncorpus: {corpus_name}; {args.processes} processes")
    console.print(throughput_table(rows, docs, text_mb))
    if args.repeat > 1:
        walls = "; ".join(f"{k}: {', '.join(f'{w:.1f}' for w in v)}" for k, v in report["walls"].items())
        console.print(f"best of {args.repeat} runs shown; all wall times (s): {walls}")
    style = "green" if speedup >= TARGET_SPEEDUP else "red"
    console.print(
        f"speed: dolma-kit / Dolma = [{style}]{speedup:.2f}×[/] docs/s (target ≥ {TARGET_SPEEDUP:g}×); "
        f"CPU seconds: {cpu_speedup:.2f}× fewer"
    )
    if any(m.other_cpu_s > 0.1 * m.cpu_s for _, m in rows + memory):
        console.print(
            "[yellow]other processes used the cores during some runs: those timings are inflated[/]"
        )
    for table in agreement_tables(results):
        console.print(table)
    style = "green" if values.equal == values.docs else "red"
    console.print(
        f"Gopher values: [{style}]{values.equal:,} of {values.docs:,}[/] documents have every Dolma "
        f"`gopher_v1` attribute equal to ours `{GOPHER_LIKE_DOLMA}` (same names, {values.values:,} values, "
        f"ours rounded to {DOLMA_DECIMALS} decimals as Dolma writes them)"
        + (
            f"; differing: {dict(values.mismatches.most_common(5))}, e.g. {values.examples}"
            if values.mismatches
            else ""
        )
    )
    if any(a.inconsistent for a in results):
        counts = {a.name: a.inconsistent for a in results}
        console.print(f"[red]our `pass` disagrees with our own measures (tagger bug?): {counts}[/]")
    if memory:
        table, report["memory_growth_percent"] = memory_table(memory)
        console.print(table)

    path = out / "results" / f"tag-{started.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    console.print(f"[dim]saved {path}[/]")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--docs", type=int, default=20_000, help="documents in the generated corpus (default 20,000)"
    )
    p.add_argument("--shards", type=int, default=8, help="shards of the generated corpus (default 8)")
    p.add_argument("--processes", type=int, default=2, help="processes for both tools (default 2)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--quick", action="store_true", help="2,000 documents: checks the plumbing")
    p.add_argument("--documents", nargs="+", metavar="GLOB", help="take these shards instead of generating")
    p.add_argument(
        "--out", type=Path, default=BENCH_DIR / "out", help="corpora, logs, results (default bench/out)"
    )
    p.add_argument(
        "--dolma-venv",
        type=Path,
        default=BENCH_DIR / "out" / "dolma-venv",
        help="venv holding Dolma 1.2.1; created with pip when missing (default bench/out/dolma-venv)",
    )
    p.add_argument(
        "--memory-check", action="store_true", help="also run ours on a 10x corpus; print peak growth"
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="run both tools N times (alternating); report the best"
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="S",
        help="before each timed run, wait up to S seconds for the other processes to leave the cores idle",
    )
    p.add_argument("--per-tagger", action="store_true", help="also time each of our taggers alone")
    args = p.parse_args()
    if args.quick:
        args.docs = 2_000
    return args


if __name__ == "__main__":
    main()
