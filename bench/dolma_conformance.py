"""Does dolma-kit reproduce Dolma 1.2.1? Taggers, mixer, dedupe and tokens on the same real text.

    .venv/bin/python bench/dolma_conformance.py                 # 1,454 documents (a few minutes)
    .venv/bin/python bench/dolma_conformance.py --docs 300      # a quick look
    .venv/bin/python bench/dolma_conformance.py --parts taggers mix

One corpus of text neither tool wrote (`dolma_peer.real_corpus`: Debian documentation, licences, man pages
in many languages, and web-like pages with PII, boilerplate and duplicates) goes to each part, a module
`bench/dolma_<part>.py` with `compare(corpus, dolma, work) -> list[dict]`: it runs Dolma's command and ours on
the corpus and returns rows `stage, what, equal, total, example` (one example of a difference, "" when
none), optionally `ours_cpu_s` and `dolma_cpu_s` (CPU seconds over each process tree). This driver prints
them in one table, the share of exactly equal values, documents or tokens per attribute and stage, and saves
the rows as JSON. A part whose file does not exist yet shows as "missing"; a part that fails shows its error;
neither stops the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dolma_peer import BENCH_DIR, DOLMA_VENV, ensure_dolma, real_corpus
from rich.table import Table
from tag_runner import console

PARTS = ("taggers", "mix", "dedup", "tokens")


def run_part(part: str, corpus: Path, dolma: Path, work: Path) -> list[dict[str, Any]]:
    """The rows of one part; a "missing" or "error" row when its module is absent or raises."""
    if not (BENCH_DIR / f"dolma_{part}.py").is_file():
        return [
            {"stage": part, "what": "missing", "equal": 0, "total": 0, "example": f"no bench/dolma_{part}.py"}
        ]
    try:
        module = importlib.import_module(f"dolma_{part}")
        work.mkdir(parents=True, exist_ok=True)
        rows = list(module.compare(corpus, dolma, work))
    except Exception as exc:  # a broken part is reported, the other parts still run
        last = traceback.format_exc().strip().splitlines()[-3:]
        return [
            {
                "stage": part,
                "what": "error",
                "equal": 0,
                "total": 0,
                "example": f"{exc!r}; {' / '.join(last)}",
            }
        ]
    for row in rows:
        row.setdefault("stage", part)
    return rows


def table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="Dolma 1.2.1 vs dolma-kit on the same real text: exactly equal values")
    for col, justify in [("stage", "left"), ("what", "left"), ("equal", "right"), ("total", "right")]:
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    t.add_column("share", justify="right")
    t.add_column("CPU s ours / Dolma", justify="right")
    t.add_column("example of a difference", overflow="fold", max_width=70)
    for row in rows:
        equal, total = int(row.get("equal", 0)), int(row.get("total", 0))
        if row["what"] in {"missing", "error"}:
            share = f"[yellow]{row['what']}[/]"
        elif total == 0:
            share = "—"
        else:
            pct = 100 * equal / total
            share = f"[{'green' if equal == total else 'red'}]{pct:.2f}%[/]"
        cpu = ""
        if row.get("ours_cpu_s") is not None and row.get("dolma_cpu_s") is not None:
            ours, theirs = float(row["ours_cpu_s"]), float(row["dolma_cpu_s"])
            cpu = f"{ours:.1f} / {theirs:.1f} ({theirs / max(ours, 1e-9):.1f}×)"
        t.add_row(
            row["stage"], row["what"], f"{equal:,}", f"{total:,}", share, cpu, str(row.get("example", ""))
        )
    return t


def part_main(compare: Any, part: str, description: str) -> None:
    """`python bench/dolma_<part>.py` alone: its own real-text corpus, the part's rows, this table, rows.json."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--docs", type=int, default=1454, help="documents in the real-text corpus")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out" / f"dolma-{part}")
    args = p.parse_args()
    corpus = real_corpus(args.out / f"corpus-{args.docs}-{args.seed}", docs=args.docs, seed=args.seed)
    rows = compare(corpus, ensure_dolma(), args.out / "work")
    console.print(table(rows))
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")


def main() -> None:
    args = parse_args()
    started = datetime.now(timezone.utc)
    out = args.out.resolve()
    t0 = time.perf_counter()
    corpus = real_corpus(out / f"corpus-{args.docs}-{args.seed}", docs=args.docs, seed=args.seed)
    console.print(
        f"corpus: {corpus} ({args.docs:,} documents, seed {args.seed}; {time.perf_counter() - t0:.0f} s)"
    )
    dolma = ensure_dolma(args.dolma_venv.resolve())
    rows: list[dict[str, Any]] = []
    for part in args.parts:
        console.rule(part)
        rows += run_part(part, corpus, dolma, out / "work" / part)
    console.print(table(rows))
    path = out / "results" / f"conformance-{started.strftime('%Y%m%dT%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "docs": args.docs,
        "seed": args.seed,
        "rows": rows,
    }
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    console.print(f"[dim]saved {path}[/]")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--docs", type=int, default=1454, help="documents in the real-text corpus (default 1,454)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run")
    p.add_argument(
        "--out", type=Path, default=BENCH_DIR / "out" / "conformance", help="corpus, work folders, results"
    )
    p.add_argument("--dolma-venv", type=Path, default=DOLMA_VENV, help="venv holding Dolma 1.2.1")
    return p.parse_args()


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    main()
