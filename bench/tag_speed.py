"""Tag CPU on real text: dolma-kit now, dolma-kit at an earlier tree, and Dolma 1.2.1, side by side in one run.

    .venv/bin/python bench/tag_speed.py --before bench/out/tag-before     # a copy of an earlier dolma_kit/
    .venv/bin/python bench/tag_speed.py --before bench/out/tag-before --per-tagger
    .venv/bin/python bench/tag_speed.py --before bench/out/tag-before --set quality

`--before DIR` is a folder holding an earlier `dolma_kit/` package (for instance `git archive <commit>
dolma_kit | tar -x -C DIR`); it runs first on PYTHONPATH, so the same venv times both trees. The three
commands run on the five taggers a Dolma v1.5-style recipe uses (`bench/dolma_taggers.py`: the same specs,
shards, layout and `--processes 2`; `--set quality`: `gopher c4 pii char_length` against Dolma's four), in
turn within each run, so a slow spell of a shared machine hits all of them alike; the table shows the median
of `--runs` runs of CPU seconds over each process tree (start-up included) and the ratios. `--per-tagger`
adds one run per tagger alone (ours and Dolma's; one run each, not a median), which names where the
remaining time goes. After the runs, the last run's attribute files of Dolma and of dolma-kit now are
compared value by value (`dolma_taggers.compare_attributes`): a speed-up must leave every value equal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

from _util import Measured, run_measured
from dolma_peer import BENCH_DIR, ensure_dolma, real_corpus
from dolma_taggers import LANG_TIMED, _layout, _model_module, compare_attributes, dolma_specs, ours_specs
from rich.table import Table
from tag_runner import DOLMA_TAGGERS, OURS_TAGGERS, console

PROCESSES = 2


def _ours(shards: list[str], exp: str, specs: list[str], work: Path, tree: Path | None) -> Measured:
    cmd = [sys.executable, "-m", "dolma_kit", "tag", "--documents", *shards, "--experiment", exp]
    cmd += ["--taggers", *specs, "--processes", str(PROCESSES), "--force"]
    env, cwd = dict(os.environ), Path.cwd()
    if tree is not None:  # `-m` puts the working folder first on sys.path: run from inside the tree too
        cwd = tree.resolve()
        env["PYTHONPATH"] = os.pathsep.join([str(cwd), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    log = (work / f"{exp}.log").resolve()
    return _checked(run_measured(cmd, log, env=env, cwd=cwd), log)


def _dolma(dolma: Path, shards: list[str], exp: str, taggers: list[str], work: Path) -> Measured:
    cmd = [str(dolma), "tag", "--documents", *shards, "--experiment", exp, "--taggers", *taggers]
    cmd += ["--tagger_modules", str(_model_module(work)), "--processes", str(PROCESSES), "--ignore_existing"]
    return _checked(run_measured(cmd, work / f"{exp}.log"), work / f"{exp}.log")


def _checked(measured: Measured, log: Path) -> Measured:
    if measured.returncode != 0:
        raise SystemExit(f"tag failed ({measured.returncode}), see {log}:\n{log.read_text()[-2000:]}")
    return measured


def main() -> None:
    args = parse_args()
    corpus = real_corpus(args.out / f"corpus-{args.docs}-{args.seed}", docs=args.docs, seed=args.seed)
    dolma = ensure_dolma()
    work = (args.out / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    shards = _layout(corpus, work)
    if args.set == "quality":  # docs/benchmarks.md's tag row: our paper taggers, as bench/tag.py runs them
        ours, theirs = list(OURS_TAGGERS), list(DOLMA_TAGGERS)
    else:
        ours, theirs = ours_specs(dolma, LANG_TIMED, True), dolma_specs(LANG_TIMED, True)
    sides = ["Dolma 1.2.1", *(["dolma-kit before"] if args.before else []), "dolma-kit now"]
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    for i in range(args.runs):
        console.rule(f"run {i + 1}/{args.runs}")
        for side in sides:
            if side == "Dolma 1.2.1":
                m = _dolma(dolma, shards, "dolma", theirs, work)
            else:
                tree = args.before if side == "dolma-kit before" else None
                m = _ours(shards, "before" if tree else "ours", ours, work, tree)
            cpu[side].append(m.cpu_s)
            console.print(
                f"{side}: {m.cpu_s:.1f} CPU s, {m.wall_s:.1f} s wall (others busy {m.other_cpu_s:.1f})"
            )
    median = {side: statistics.median(v) for side, v in cpu.items()}
    t = Table(title=f"tag, {len(ours)} taggers, {args.docs:,} real documents, {PROCESSES} processes")
    for col in ("side", "CPU s (median)", "runs", "Dolma ÷ this"):
        t.add_column(col, justify="left" if col == "side" else "right")
    for side in sides:
        ratio = median["Dolma 1.2.1"] / max(median[side], 1e-9)
        t.add_row(side, f"{median[side]:.2f}", " ".join(f"{c:.1f}" for c in cpu[side]), f"{ratio:.2f}×")
    console.print(t)
    # the last run of each side left its attributes: every Dolma attribute value must be equal (the twins)
    equal = compare_attributes(work, shards, "dolma", "ours") if args.set == "dolma" else []
    for row in equal:
        style = "green" if row["equal"] == row["total"] else "red"
        if row["equal"] != row["total"] or row["what"].startswith("documents"):
            console.print(
                f"[{style}]{row['what']}: {row['equal']:,} of {row['total']:,} equal[/] {row['example']}"
            )
    per_tagger = _per_tagger(dolma, shards, ours, theirs, work, args.before) if args.per_tagger else []
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = BENCH_DIR / "out" / "results" / f"tag-speed-{args.set}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "set": args.set,
        "taggers": {"ours": ours, "dolma": theirs},
        "docs": args.docs,
        "seed": args.seed,
        "cpu_s": cpu,
        "median": median,
        "per_tagger": per_tagger,
        "equal": equal,
    }
    path.write_text(json.dumps(report, indent=1) + "\n")
    console.print(f"[dim]saved {path}[/]")


def _per_tagger(
    dolma: Path, shards: list[str], ours: list[str], theirs: list[str], work: Path, before: Path | None
) -> list[dict[str, float | str]]:
    """One run of each tagger alone on every side (start-up included in each)."""
    rows: list[dict[str, float | str]] = []
    t = Table(title="each tagger alone, CPU s (one run; start-up included)")
    for col in ("tagger", "Dolma", *(["before"] if before else []), "now", "Dolma ÷ now"):
        t.add_column(col, justify="left" if col == "tagger" else "right")
    for spec, name in zip(ours, theirs, strict=True):
        row: dict[str, float | str] = {
            "tagger": name,
            "dolma": _dolma(dolma, shards, "one_d", [name], work).cpu_s,
        }
        if before:
            row["before"] = _ours(shards, "one_b", [spec], work, before).cpu_s
        row["now"] = _ours(shards, "one_o", [spec], work, None).cpu_s
        rows.append(row)
        cells = [f"{float(row[k]):.1f}" for k in ("dolma", *(["before"] if before else []), "now")]
        t.add_row(name, *cells, f"{float(row['dolma']) / max(float(row['now']), 1e-9):.1f}×")
    console.print(t)
    return rows


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--docs", type=int, default=1454, help="documents in the real-text corpus (default 1,454)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=int, default=3, help="runs of each side; the median is shown (default 3)")
    p.add_argument(
        "--before", type=Path, help="a folder holding an earlier dolma_kit/ to time beside this one"
    )
    p.add_argument("--per-tagger", action="store_true", help="also one run of each tagger alone, every side")
    p.add_argument(
        "--set",
        choices=["dolma", "quality"],
        default="dolma",
        help="dolma: the five Dolma-named twins of a v1.5 recipe (default); quality: `gopher c4 pii "
        "char_length` vs Dolma's four, as bench/tag.py runs them",
    )
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "tag-speed")
    return p.parse_args()


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    main()
