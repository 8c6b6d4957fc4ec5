"""Part (c) of bench/mix_tokenize.py: `dolma-kit mix` vs `dolma mix` on an equivalent recipe, same documents.

The recipe: drop documents that fail the Gopher rules, mask PII (email, phone, IP) with Dolma's tokens, delete
duplicate paragraphs. Each tool mixes its own attributes, made beforehand and untimed: ours by `dolma-kit tag
gopher pii` and `dolma-kit dedup exact --key paragraphs`, Dolma's by `dolma tag gopher_v1
pii_regex_with_counts_fast_v2` and `dolma dedupe` (paragraph Bloom filter). Dolma's taggers only emit scores,
so its recipe applies the paper thresholds (from our GopherConfig, via bench/tag.py's rule table) in JSONPath
filters. Only the mix commands are timed; the table also shows documents kept and bytes written, since the two
sides' taggers decide somewhat differently (bench/tag.py measures that agreement).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from _util import Measured, mib, run_measured, wait_until_idle
from corpus import CorpusSpec, ensure_corpus
from rich.console import Console
from rich.table import Table

OURS_EXP, DOLMA_EXP, OURS_DEDUP, DOLMA_DEDUP = "mixb_ours", "mixb_dolma", "mixb_dedup", "mixb_dolma_dedup"
DOLMA_PARA = "bff_duplicate_paragraph_spans"
console = Console(width=None if sys.stdout.isatty() else 150)
PII = {"email_address": "EMAIL_ADDRESS", "phone_number": "PHONE_NUMBER", "ip_address": "IP_ADDRESS"}


def run_or_fail(cmd: list[str], log: Path, wait_idle_s: float, env: dict[str, str] | None = None) -> Measured:
    if wait_idle_s > 0:
        busy = wait_until_idle(wait_idle_s)
        if busy >= 0.05:
            console.print(f"[yellow]cores still {100 * busy:.0f}% busy after waiting; running anyway[/]")
    console.print(f"[dim]$ {' '.join(cmd[:5])} …  (log: {log})[/]")
    measured = run_measured(cmd, log, env=env)
    if measured.returncode != 0:
        raise SystemExit(
            f"command failed ({measured.returncode}): {' '.join(cmd)}\n{log.read_text()[-3000:]}"
        )
    return measured


def _setup(shards: list[str], root: Path, dolma: Path, out: Path, processes: int, run: Any) -> None:
    """Attributes for both sides, made once per corpus (a marker file per step)."""
    p = str(processes)
    steps = [
        (OURS_EXP, [sys.executable, "-m", "dolma_kit", "tag", "-d", *shards, "-e", OURS_EXP, "-t", "gopher", "pii", "-p", p]),
        (DOLMA_EXP, [str(dolma), "tag", "--documents", *shards, "--experiment", DOLMA_EXP, "--taggers", "gopher_v1",
                     "pii_regex_with_counts_fast_v2", "--processes", p]),
        (OURS_DEDUP, [sys.executable, "-m", "dolma_kit", "dedup", "exact", "-d", *shards, "-e", OURS_DEDUP,
                      "--key", "paragraphs", "-p", p]),
        (DOLMA_DEDUP, [str(dolma), "dedupe", "--documents", *shards, "--dedupe.name", DOLMA_DEDUP,
                       "--dedupe.paragraphs.attribute_name", DOLMA_PARA, "--dedupe.skip_empty",
                       "--bloom_filter.file", str(out / "mix-work" / "bloom.bin"), "--no-bloom_filter.read_only",
                       "--bloom_filter.estimated_doc_count", str(50 * len(shards) * 10_000),
                       "--bloom_filter.desired_false_positive_rate", "1e-6", "--processes", p]),
    ]  # fmt: skip
    for name, cmd in steps:
        marker = root / "attributes" / f".{name}.ready"
        if not marker.exists():
            shutil.rmtree(root / "attributes" / name, ignore_errors=True)
            (out / "mix-work" / "bloom.bin").unlink(missing_ok=True)
            run(cmd, out / "logs" / f"mix-setup-{name}.log")
            marker.touch()


def _recipes(shards: list[str], work: Path, processes: int) -> tuple[Path, Path]:
    from tag_rules import gopher_rules

    from dolma_kit.taggers.gopher import GopherConfig

    ours = {
        "streams": [
            {
                "name": "synthetic",
                "documents": shards,
                "attributes": [OURS_EXP, OURS_DEDUP],
                "filter": {"exclude": [{"name": "gopher", "expr": f"{OURS_EXP}.gopher.pass == 0"}]},
                "replace": [
                    *(
                        {"attribute": f"{OURS_EXP}.pii.{k}", "replacement": f"|||{v}|||"}
                        for k, v in PII.items()
                    ),
                    {"attribute": f"{OURS_DEDUP}.exact_paragraphs.duplicate_paragraph", "replacement": ""},
                ],
                "output": {"path": str(work / "ours" / "documents"), "format": "jsonl.gz"},
            }
        ]
    }
    exclude = []
    for rule in gopher_rules(GopherConfig()):
        if rule.dolma is None:
            continue
        attr = f"@.{DOLMA_EXP}__gopher_v1__{rule.dolma}"
        for op, bound in (("<", rule.low), (">", rule.high)):
            if bound is not None:
                exclude.append(f"$.attributes[?({attr} && {attr}[0] && {attr}[0][2] {op} {bound})]")
    dolma = {
        "streams": [
            {
                "name": "synthetic",
                "documents": shards,
                "attributes": [DOLMA_EXP, DOLMA_DEDUP],
                "filter": {"exclude": exclude},
                "span_replacement": [
                    *(
                        {"span": f"$.attributes.{DOLMA_EXP}__pii_regex_with_counts_fast_v2__{v}", "min_score": 0.5,
                         "replacement": f"|||{v}|||"}
                        for v in PII.values()
                    ),
                    {"span": f"$.attributes.{DOLMA_PARA}", "min_score": 0.5, "replacement": ""},
                ],
                "output": {"path": str(work / "dolma" / "documents"), "max_size_in_bytes": 1_000_000_000},
            }
        ],
        "work_dir": {"input": str(work / "dolma-work-in"), "output": str(work / "dolma-work-out")},
        "processes": processes,
    }  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    (work / "ours.json").write_text(json.dumps(ours, indent=1))
    (work / "dolma.json").write_text(json.dumps(dolma, indent=1))
    return work / "ours.json", work / "dolma.json"


def _output_counts(folder: Path) -> tuple[int, int]:
    """Documents and UTF-8 bytes of text written (Dolma's output also carries the attributes: not counted)."""
    import gzip

    docs = size = 0
    for path in folder.rglob("*.gz"):
        with gzip.open(path, "rb") as fh:
            for line in fh:
                docs += 1
                size += len(json.loads(line)["text"].encode("utf-8"))
    return docs, size


def bench_mix(args: argparse.Namespace, out: Path, report: dict[str, Any]) -> None:
    from tag_runner import ensure_dolma

    root, _ = ensure_corpus(CorpusSpec(docs=args.docs, shards=args.shards, seed=0), out, args.processes)
    shards = sorted(str(p) for p in (root / "documents").glob("*/*.jsonl.gz"))
    dolma = ensure_dolma(args.dolma_venv.resolve())
    run = lambda cmd, log: run_or_fail(cmd, log, 0.0)  # noqa: E731 - setup is untimed
    console.rule("mix: attributes for both sides (untimed, once per corpus)")
    _setup(shards, root, dolma, out, args.processes, run)
    work = out / "mix-work" / root.name
    ours_recipe, dolma_config = _recipes(shards, work, args.processes)
    rows: dict[str, Measured] = {}
    for i in range(args.repeat):
        console.rule(f"mix run {i + 1}/{args.repeat}")
        for name, folder, cmd in (
            ("Dolma 1.2.1 dolma mix", work / "dolma", [str(dolma), "-c", str(dolma_config), "mix"]),
            ("dolma-kit mix", work / "ours",
             [sys.executable, "-m", "dolma_kit", "mix", str(ours_recipe), "-p", str(args.processes), "--force"]),
        ):  # fmt: skip
            shutil.rmtree(folder, ignore_errors=True)
            for extra in ("dolma-work-in", "dolma-work-out"):
                shutil.rmtree(work / extra, ignore_errors=True)
            m = run_or_fail(cmd, out / "logs" / f"mix-{folder.name}.log", args.wait_idle)
            if name not in rows or m.wall_s < rows[name].wall_s:
                rows[name] = m
    docs_in = sum(1 for s in shards for _ in _lines(s))
    table = Table(
        title=f"(c) mix: {docs_in:,} documents, Gopher + PII masks + duplicate paragraphs, {args.processes} processes"
    )
    for col in (
        "run",
        "wall s",
        "docs/s",
        "vs Dolma",
        "CPU s",
        "peak PSS",
        "docs out",
        "MB text out",
        "other CPU s",
    ):
        table.add_column(col, justify="left" if col == "run" else "right")
    dolma_wall = rows["Dolma 1.2.1 dolma mix"].wall_s
    results = {}
    for name, m in rows.items():
        docs_out, size = _output_counts(work / ("dolma" if name.startswith("Dolma") else "ours"))
        results[name] = {**m.__dict__, "docs_out": docs_out, "bytes_out": size}
        table.add_row(
            name, f"{m.wall_s:,.1f}", f"{docs_in / m.wall_s:,.0f}", f"{dolma_wall / m.wall_s:.2f}×",
            f"{m.cpu_s:,.1f}", mib(m.peak_pss), f"{docs_out:,}", f"{size / 1e6:,.1f}", f"{m.other_cpu_s:,.1f}",
        )  # fmt: skip
    table.caption = "wall includes start-up; docs out differ by as much as the two sides' taggers disagree"
    console.print(table)
    report["mix"] = {
        "docs_in": docs_in,
        "rows": results,
        "speedup": dolma_wall / rows["dolma-kit mix"].wall_s,
    }


def _lines(path: str) -> Any:
    import gzip

    with gzip.open(path, "rb") as fh:
        yield from fh
