"""The scale curve: every data stage at three corpus sizes, per-document CPU, memory and disk (issue 17).

    .venv/bin/python bench/scale_curve.py --quick                   # 5k / 20k / 80k documents
    .venv/bin/python bench/scale_curve.py --sizes 50000,100000,200000
    .venv/bin/python bench/scale_curve.py                           # 100k / 400k / 1.6M (hours on 2 cores)

A stage that is linear costs the same per document at every size, so its cost at a billion documents is a
multiplication; one that is not (a resolve step that holds all keys, a window counted in documents) shows
up as CPU or memory per document that grows with the size. For each size the script runs, as users run
them (`python -m dolma_kit …`, start-up included), over the same shards: tag (the demo's taggers), dedup
exact text, dedup exact paragraphs, dedup minhash, mix (one stream: duplicates, language, Gopher and C4
out, PII masked, repeated paragraphs cut), tokenize (GPT-2), and with `--decontaminate` decontaminate.

The corpus is bench/corpus.py's generator (English-like pages of ~4 KB and planted faults, a document
from its own seeded RNG), plus copies planted here: 5% exact copies and 5% near copies (one line changed
or dropped) of earlier documents, so the dedup stages have work that grows with the corpus as real
crawls do. It is written once, streamed shard by shard (fixed documents per shard, so a larger corpus
has more shards, not bigger ones, as a real corpus does), for the largest size; a smaller size is the
first shards of it, hard-linked into its own root, so no document is generated or stored twice.

Per stage and size: CPU seconds of the command's process tree per 1,000 corpus documents (CPU, not wall:
the machine may be shared), peak PSS summed over the tree and the largest single process's peak PSS, and
the disk the stage leaves (after its own cleanup) per gzipped input byte. The verdict calls a stage linear
when its CPU per document at the largest size is within ±10% of that at the smallest; the marginal CPU
(the slope of a least-squares line through the sizes) and the fixed part (its intercept, mostly
start-up) are printed too, since at small sizes start-up alone can break the ±10%. JSON goes to
bench/out/results/scale_curve-<sizes>.json.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import platform
import random
import shutil
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from _util import Measured, _rss_pss, process_tree, run_measured
from corpus import make_document
from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SIZES = (100_000, 400_000, 1_600_000)
QUICK_SIZES = (5_000, 20_000, 80_000)
LINEAR_TOLERANCE = 0.10
MEMORY_TARGET = 2**30
TAGGERS = ["ft_lang_id", "gopher", "c4", "pii"]
SOURCE = "synthetic"
EXACT_COPY, NEAR_COPY = 0.05, 0.05
EVAL_DOCS = 40
#: bump when scale_document changes: the cached master corpus is named after it
CORPUS_VERSION = 1
console = Console(width=None if sys.stdout.isatty() else 160)


# ------------------------------------------------------------------------------------------ corpus


def scale_document(seed: int, index: int) -> dict[str, object]:
    """Document `index`: bench/corpus.py's, or (10%) an exact or near copy of an earlier one's text."""
    doc = make_document(seed, index, SOURCE)
    rng = random.Random(f"{seed}:copy:{index}")
    roll = rng.random()
    if index > 0 and roll < EXACT_COPY + NEAR_COPY:
        original = rng.randrange(index)
        text = str(scale_document(seed, original)["text"])  # a copy of a copy, now and then, as on the web
        meta = dict(doc["metadata"])  # type: ignore[arg-type]
        if roll < EXACT_COPY:
            meta["planted"] = "exact_copy"
        else:
            lines = text.split("\n")
            i = rng.randrange(len(lines))
            if len(lines) > 2 and rng.random() < 0.5:
                del lines[i]
            else:
                lines[i] += " (updated)"
            text = "\n".join(lines)
            meta["planted"] = "near_copy"
        meta["copy_of"] = f"{SOURCE}-{original:09d}"
        doc = {**doc, "text": text, "metadata": meta}
    return doc


def _write_shard(path: Path, seed: int, first: int, count: int) -> None:
    """One shard through a temp name (no partial shard survives a kill), gzip without a timestamp."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
        for i in range(first, first + count):
            gz.write((json.dumps(scale_document(seed, i), ensure_ascii=False) + "\n").encode())
    tmp.rename(path)


def ensure_master(folder: Path, shards: int, shard_docs: int, seed: int, processes: int) -> list[Path]:
    """The first `shards` shards of the master corpus under `folder`, writing only the missing ones."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{k:05d}.jsonl.gz" for k in range(shards)]
    missing = [(k, p) for k, p in enumerate(paths) if not p.exists()]
    if missing:
        console.print(f"writing {len(missing)} shards of {shard_docs:,} documents to {folder}")
        with ProcessPoolExecutor(max_workers=max(1, processes)) as pool:
            jobs = [pool.submit(_write_shard, p, seed, k * shard_docs, shard_docs) for k, p in missing]
            for job in jobs:
                job.result()
    return paths


def link_size(root: Path, master: list[Path]) -> Path:
    """A fresh root for one size whose documents are hard links to master shards (no bytes copied)."""
    shutil.rmtree(root, ignore_errors=True)
    docs = root / "documents" / SOURCE
    docs.mkdir(parents=True)
    for path in master:
        os.link(path, docs / path.name)
    return root


def write_eval(path: Path, seed: int, docs: int) -> None:
    """A held-out set for decontaminate: paragraphs of a few corpus documents, so some leaks are found."""
    rng = random.Random(f"{seed}:eval")
    with path.open("w") as fh:
        for k in range(EVAL_DOCS):
            text = str(scale_document(seed, rng.randrange(docs))["text"])
            fh.write(json.dumps({"id": f"eval-{k}", "text": text.split("\n")[0]}) + "\n")


MIX_RECIPE = """\
aliases:
  lid: demo.ft_lang_id
  dup: dedup_text.exact_text
  near: dedup_minhash.minhash
  para: dedup_para.exact_paragraphs
output:
  path: {root}/mixed/documents
  max_bytes: 100_000_000
streams:
  - name: {source}
    documents: ["{root}/documents/{source}/*.jsonl.gz"]
    attributes: [demo, dedup_text, dedup_minhash, dedup_para]
    filter:
      exclude:
        - {{name: exact duplicate, expr: dup.duplicate}}
        - {{name: near duplicate, expr: near.duplicate}}
        - {{name: not English, expr: lid.en < 0.5 or not exists(lid.en)}}
        - {{name: gopher, expr: gopher.pass == 0}}
        - {{name: c4, expr: c4.pass == 0}}
    replace:
      - {{attribute: pii.email_address, replacement: "|||EMAIL_ADDRESS|||"}}
      - {{attribute: pii.phone_number, replacement: "|||PHONE_NUMBER|||"}}
      - {{attribute: pii.ip_address, replacement: "|||IP_ADDRESS|||"}}
      - {{attribute: para.duplicate_paragraph, replacement: ""}}
"""


def stage_commands(root: Path, processes: int, decontaminate: bool) -> dict[str, list[str]]:
    """Every data stage's command line for the corpus under `root`, in pipeline order."""
    docs = [str(root / "documents" / "*" / "*.jsonl.gz")]
    p = ["-p", str(processes)]
    cmds = {
        "tag": ["tag", "-d", *docs, "-e", "demo", "-t", *TAGGERS, *p],
        "dedup_text": ["dedup", "exact", "-d", *docs, "-e", "dedup_text", "--key", "text", *p],
        "dedup_para": ["dedup", "exact", "-d", *docs, "-e", "dedup_para", "--key", "paragraphs", *p],
        "dedup_minhash": ["dedup", "minhash", "-d", *docs, "-e", "dedup_minhash", "--threshold", "0.7", *p],
    }
    if decontaminate:
        cmds["decontaminate"] = ["decontaminate", "-d", *docs, "-e", "decontam"]
        cmds["decontaminate"] += ["--eval", str(root / "eval.jsonl"), *p]
    cmds["mix"] = ["mix", str(root / "mix.yaml"), *p]
    mixed = str(root / "mixed" / "documents" / "*" / "*.jsonl.gz")
    cmds["tokenize"] = ["tokenize", "-d", mixed, "--destination", str(root / "tokens"), "--tokenizer", "gpt2"]
    return {name: [sys.executable, "-m", "dolma_kit", *cmd] for name, cmd in cmds.items()}


# ------------------------------------------------------------------------------------------ measuring


def tree_bytes(root: Path) -> tuple[int, int]:
    """(bytes of every file under `root` except the documents, bytes of those under a `_work` folder)."""
    total = work = 0
    for dirpath, _dirs, files in os.walk(root):
        rel = Path(dirpath).relative_to(root).parts
        if rel[:1] == ("documents",):
            continue
        size = sum(os.lstat(os.path.join(dirpath, f)).st_size for f in files)
        total += size
        work += size if any(part.startswith("_work") for part in rel) else 0
    return total, work


class ProcessPeak:
    """The largest PSS any single descendant of this script reached while the context was open.

    `run_measured` gives the sum over the tree; the per-process figure is what bounds a task's memory on a
    machine with more cores (the target is ≤ 1 GB a process at any size).
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            for pid in process_tree(me):
                if pid != me:
                    self.peak = max(self.peak, _rss_pss(pid)[1])

    def __enter__(self) -> ProcessPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class StageRun:
    """One stage at one size."""

    stage: str
    docs: int
    measured: Measured
    peak_pss_process: int
    disk_bytes: int
    """Bytes the stage left under the size's root (its output and any intermediate files it kept)."""
    work_bytes: int
    """Of which under a `_work` folder: intermediates that outlived the run."""
    input_bytes: int
    """Gzipped bytes of the corpus shards of this size (the denominator of every stage's disk figure)."""

    @property
    def cpu_per_kdoc(self) -> float:
        return 1000 * self.measured.cpu_s / self.docs


def run_stage(name: str, cmd: list[str], root: Path, docs: int, input_bytes: int, log: Path) -> StageRun:
    before, work_before = tree_bytes(root)
    with ProcessPeak() as peak:
        m = run_measured(cmd, log, cwd=BENCH_DIR.parent)
    if m.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{name} at {docs:,} documents failed (exit {m.returncode}); {log}:\n{tail}")
    after, work_after = tree_bytes(root)
    return StageRun(name, docs, m, peak.peak, after - before, work_after - work_before, input_bytes)


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of ys over xs; one point gives (y/x, 0)."""
    if len(xs) < 2:
        return (ys[0] / xs[0] if xs and xs[0] else 0.0), 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return slope, my - slope * mx


def verdict(cpu_per_doc: list[float], tolerance: float = LINEAR_TOLERANCE) -> tuple[str, float]:
    """("linear" | "not linear", change) from the smallest size's CPU per document to the largest's."""
    first, last = cpu_per_doc[0], cpu_per_doc[-1]
    change = last / first - 1 if first > 0 else 0.0
    return ("linear" if abs(change) <= tolerance else "not linear"), change


def segment_slopes(docs: list[int], cpu_s: list[float]) -> list[float]:
    """CPU seconds per document added, from each size to the next: start-up cancels out of these."""
    pairs = list(zip(docs, cpu_s, strict=True))
    return [(c1 - c0) / (n1 - n0) for (n0, c0), (n1, c1) in itertools.pairwise(pairs)]


def summarize(runs: list[StageRun]) -> dict[str, dict[str, object]]:
    """Per stage: the verdicts, marginal and fixed CPU, memory and disk at the largest size.

    `verdict` is the brief's (CPU per document, smallest size to largest, within ±10%); `marginal_verdict`
    holds the first segment's slope to the last one's the same way, so a fixed start-up cost, which makes
    small sizes look dear per document, does not count as non-linear growth.
    """
    out: dict[str, dict[str, object]] = {}
    for stage in dict.fromkeys(r.stage for r in runs):
        rows = sorted((r for r in runs if r.stage == stage), key=lambda r: r.docs)
        label, change = verdict([r.cpu_per_kdoc for r in rows])
        docs, cpu = [r.docs for r in rows], [r.measured.cpu_s for r in rows]
        slope, fixed = fit_line(docs, cpu)
        segments = segment_slopes(docs, cpu)
        marginal_label, marginal_change = verdict(segments) if len(segments) >= 2 else ("-", 0.0)
        big = rows[-1]
        out[stage] = {
            "verdict": label,
            "cpu_per_kdoc_change": change,
            "marginal_verdict": marginal_label,
            "marginal_change": marginal_change,
            "segment_cpu_s_per_kdoc": [1000 * x for x in segments],
            "marginal_cpu_s_per_kdoc": 1000 * slope,
            "fixed_cpu_s": fixed,
            "largest_docs": big.docs,
            "cpu_s_per_kdoc_at_largest": big.cpu_per_kdoc,
            "peak_pss_tree_at_largest": big.measured.peak_pss,
            "peak_pss_process_max": max(r.peak_pss_process for r in rows),
            "peak_pss_process_by_size": [r.peak_pss_process for r in rows],
            "disk_per_input_byte_at_largest": big.disk_bytes / big.input_bytes,
            "work_per_input_byte_at_largest": big.work_bytes / big.input_bytes,
        }
    return out


def print_tables(runs: list[StageRun], summary: dict[str, dict[str, object]], processes: int) -> None:
    sizes = sorted({r.docs for r in runs})
    table = Table(title=f"scale curve: every data stage, {processes} processes, CPU of the process tree")
    for col in ("stage", "docs", "CPU s", "CPU s / 1k docs", "peak PSS tree", "peak PSS process",
                "disk / input B", "of it _work", "other CPU s"):  # fmt: skip
        table.add_column(col, justify="left" if col == "stage" else "right")
    for r in runs:
        table.add_row(
            r.stage, f"{r.docs:,}", f"{r.measured.cpu_s:,.1f}", f"{r.cpu_per_kdoc:.2f}",
            f"{r.measured.peak_pss / 2**20:,.0f} MiB", f"{r.peak_pss_process / 2**20:,.0f} MiB",
            f"{r.disk_bytes / r.input_bytes:.3f}", f"{r.work_bytes / r.input_bytes:.3f}",
            f"{r.measured.other_cpu_s:,.0f}",
        )  # fmt: skip
    console.print(table)
    verdicts = Table(title=f"verdict: CPU per document from {sizes[0]:,} to {sizes[-1]:,} documents")
    for col in ("stage", "CPU/doc change", "verdict", "marginal change", "marginal verdict",
                "marginal CPU s / 1k docs", "fixed CPU s", "max PSS a process", "≤ 1 GiB"):  # fmt: skip
        verdicts.add_column(col, justify="left" if col == "stage" else "right")
    for stage, s in summary.items():
        ok, marginal_ok = s["verdict"] == "linear", s["marginal_verdict"] == "linear"
        mem_ok = int(s["peak_pss_process_max"]) <= MEMORY_TARGET  # type: ignore[call-overload]
        verdicts.add_row(
            stage, f"{s['cpu_per_kdoc_change']:+.1%}", f"[{'green' if ok else 'red'}]{s['verdict']}[/]",
            f"{s['marginal_change']:+.1%}",
            f"[{'green' if marginal_ok else 'red'}]{s['marginal_verdict']}[/]",
            f"{s['marginal_cpu_s_per_kdoc']:.2f}", f"{s['fixed_cpu_s']:.1f}",
            f"{int(s['peak_pss_process_max']) / 2**20:,.0f} MiB",  # type: ignore[call-overload]
            f"[{'green' if mem_ok else 'red'}]{'yes' if mem_ok else 'no'}[/]",
        )  # fmt: skip
    console.print(verdicts)
    if any(r.measured.other_cpu_s > 0.2 * r.measured.cpu_s for r in runs):
        console.print("[yellow]other processes shared the cores: CPU seconds still hold, walls do not[/]")


# ------------------------------------------------------------------------------------------ main


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted(int(s.replace("_", "")) for s in text.split(",") if s.strip()))
    except ValueError:
        raise SystemExit(
            f"--sizes {text!r}: give comma-separated document counts, e.g. 5000,20000,80000"
        ) from None
    if not sizes or sizes[0] < 1:
        raise SystemExit(f"--sizes {text!r}: give at least one positive document count")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", help="comma-separated corpus sizes (default 100000,400000,1600000)")
    p.add_argument("--quick", action="store_true", help="sizes 5000,20000,80000")
    p.add_argument("--shard-docs", type=int, help="documents per shard (default: smallest size / 8)")
    p.add_argument("--processes", type=int, default=2, help="worker processes of every stage (default 2)")
    p.add_argument("--decontaminate", action="store_true", help="also run decontaminate (a 40-text eval set)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--keep", action="store_true", help="keep each size's outputs (default: removed after it)")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="corpus, work, results (bench/out)")
    p.add_argument("--report", type=Path, metavar="JSON", help="re-print (and re-summarize) a saved run")
    args = p.parse_args(argv)
    args.sizes = parse_sizes(args.sizes) if args.sizes else (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    args.shard_docs = args.shard_docs or max(1, args.sizes[0] // 8)
    bad = [n for n in args.sizes if n % args.shard_docs]
    if bad:
        raise SystemExit(f"sizes {bad} are not multiples of --shard-docs {args.shard_docs}: choose another")
    return args


def load_runs(report: dict[str, object]) -> list[StageRun]:
    """The runs of a saved report, so its tables can be printed again with the current summary."""
    runs = []
    for row in report["runs"]:  # type: ignore[attr-defined]
        fields = {k: v for k, v in row.items() if k in StageRun.__dataclass_fields__}
        runs.append(StageRun(**{**fields, "measured": Measured(**row["measured"])}))
    return runs


def reprint(path: Path) -> None:
    report = json.loads(path.read_text())
    runs = load_runs(report)
    report["summary"] = summary = summarize(runs)
    print_tables(runs, summary, int(report["processes"]))
    path.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"report: {path} (summary recomputed)")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        reprint(args.report)
        return
    out = args.out.resolve()
    base = out / "scale-curve"
    name = f"corpus-v{CORPUS_VERSION}-{args.shard_docs}d-seed{args.seed}"
    master_dir = base / name / "documents" / SOURCE
    master = ensure_master(
        master_dir, args.sizes[-1] // args.shard_docs, args.shard_docs, args.seed, args.processes
    )
    report: dict[str, object] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "sizes": list(args.sizes),
        "shard_docs": args.shard_docs,
        "processes": args.processes,
        "taggers": TAGGERS,
    }
    runs: list[StageRun] = []
    per_size: dict[int, dict[str, int]] = {}
    for size in args.sizes:
        shards = master[: size // args.shard_docs]
        root = link_size(base / f"n{size}", shards)
        input_bytes = sum(p.stat().st_size for p in shards)
        (root / "mix.yaml").write_text(MIX_RECIPE.format(root=root, source=SOURCE))
        if args.decontaminate:
            write_eval(root / "eval.jsonl", args.seed, size)
        console.rule(f"{size:,} documents, {len(shards)} shards, {input_bytes / 2**20:,.0f} MiB gzipped")
        for name, cmd in stage_commands(root, args.processes, args.decontaminate).items():
            run = run_stage(name, cmd, root, size, input_bytes, base / "logs" / f"n{size}-{name}.log")
            runs.append(run)
            console.print(
                f"{name:<14} CPU {run.measured.cpu_s:8.1f} s  {run.cpu_per_kdoc:6.2f} s/1k docs  "
                f"PSS {run.measured.peak_pss / 2**20:6.0f} MiB (a process ≤ {run.peak_pss_process / 2**20:.0f})"
                f"  disk {run.disk_bytes / input_bytes:.3f}× input"
            )
        manifest = json.loads((root / "tokens" / "manifest.json").read_text())
        per_size[size] = {
            "input_bytes": input_bytes,
            "mixed_documents": int(manifest["documents"]),
            "tokens": int(manifest["tokens"]),
        }
        if not args.keep:
            shutil.rmtree(root)
        path = save_report(report, runs, per_size, out, args.sizes)  # after every size: a long run killed
        console.print(f"[dim]partial report ({len(per_size)} of {len(args.sizes)} sizes): {path}[/]")
    summary = summarize(runs)
    print_tables(runs, summary, args.processes)
    console.print(f"report: {save_report(report, runs, per_size, out, args.sizes, summary)}")


def save_report(report: dict[str, object], runs: list[StageRun], per_size: dict[int, dict[str, int]], out: Path,
                sizes: tuple[int, ...], summary: dict[str, dict[str, object]] | None = None) -> Path:  # fmt: skip
    """The JSON report so far (`--report` re-prints and summarises a partial one as well as a whole one)."""
    report = {**report, "per_size": {str(k): v for k, v in per_size.items()}}
    report["runs"] = [{**asdict(r), "cpu_s_per_kdoc": r.cpu_per_kdoc} for r in runs]
    report["summary"] = summary if summary is not None else summarize(runs)
    results = out / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"scale_curve-{'-'.join(str(n) for n in sizes)}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


if __name__ == "__main__":
    main()
