"""Benchmark of `dolma-kit stats` and `dolma-kit decontaminate` on the synthetic corpus (bench/corpus.py).

Builds (or reuses) the 20,000-document corpus, copies its shards into a work folder with one more source
holding planted evaluation leaks (case and punctuation changed, inside other text), tags language and PII and
runs exact dedup (not timed: they give `stats` attributes to read), then measures, as whole process trees:
- `dolma-kit stats` with every attribute experiment: documents/s, CPU s, peak memory;
- `dolma-kit stats` again on a 10x corpus when `--scale` is given: memory must stay flat;
- `dolma-kit decontaminate` with a generated evaluation set: documents/s, and recall / false positives on the
  planted leaks (a leaked document not marked is a miss; a document marked without a planted leak is a false
  positive; the generator's small vocabulary makes accidental 13-gram matches possible, and they are counted).

    .venv/bin/python bench/analysis.py [--docs 20000] [--processes 2] [--scale]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import mib, run_measured, wait_until_idle
from corpus import CorpusSpec, ensure_corpus
from corpus_text import paragraph

ROOT = Path(__file__).resolve().parent.parent
CLI = [str(ROOT / ".venv" / "bin" / "dolma-kit")]


def eval_passages(n: int, seed: int) -> list[str]:
    """Evaluation passages from the same generator (a seed the corpus never uses), 40+ words each."""
    out = []
    i = 0
    while len(out) < n:
        text = paragraph(random.Random(f"eval:{seed}:{i}"), (3, 5))
        i += 1
        if len(text.split()) >= 40:
            out.append(text)
    return out


def plant(passage: str, rng: random.Random) -> str:
    """The passage as a crawler might carry it: upper-cased or title-cased, commas dropped, inside other text."""
    changed = passage.upper() if rng.random() < 0.5 else passage.title()
    changed = changed.replace(",", "").replace(".", " .")
    return f"{paragraph(rng)}\n{changed}\n{paragraph(rng)}"


def prepare(docs: int, shards: int, work: Path, processes: int) -> tuple[Path, Path, set[str]]:
    source_root, _ = ensure_corpus(CorpusSpec(docs=docs, shards=shards), ROOT / "bench" / "out", processes)
    root = work / "corpus"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(source_root / "documents", root / "documents")
    passages = eval_passages(1000, 0)
    eval_file = work / "eval.jsonl"
    eval_file.write_text("".join(json.dumps({"text": p}) + "\n" for p in passages))
    rng = random.Random("leaks")
    leaked: set[str] = set()
    leaky = root / "documents" / "leaky" / "part-0000.jsonl.gz"
    leaky.parent.mkdir(parents=True)
    with gzip.open(leaky, "wt", encoding="utf-8") as fh:
        for i in range(1000):
            doc_id = f"leaky-{i:05d}"
            if i % 5 == 0:
                text = plant(passages[i // 5], rng)
                leaked.add(doc_id)
            else:
                text = f"{paragraph(rng)}\n{paragraph(rng)}"
            fh.write(json.dumps({"id": doc_id, "text": text, "source": "leaky"}) + "\n")
    return root, eval_file, leaked


def measure(name: str, cmd: list[str], log_dir: Path, documents: int) -> dict[str, object]:
    wait_until_idle(30)
    m = run_measured(cmd, log_dir / f"{name}.log")
    if m.returncode != 0:
        raise SystemExit(f"{name} failed; see {log_dir / (name + '.log')}")
    return {
        "step": name,
        "docs/s": round(documents / m.wall_s),
        "wall s": round(m.wall_s, 1),
        "cpu s": round(m.cpu_s, 1),
        "peak PSS": mib(m.peak_pss),
        "others' cpu s": round(m.other_cpu_s, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=20_000)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--scale", action="store_true", help="also run stats on a 10x corpus (memory flatness)")
    p.add_argument("--quick", action="store_true", help="2,000 documents: checks the plumbing")
    args = p.parse_args()
    if args.quick:
        args.docs = 2_000
    work = ROOT / "bench" / "out" / f"analysis-{args.docs}d"
    root, eval_file, leaked = prepare(args.docs, args.shards, work, args.processes)
    documents = args.docs + 1000
    docs_glob = str(root / "documents" / "*" / "*.jsonl.gz")
    common = ["-p", str(args.processes)]
    for setup in (
        ["tag", "-d", docs_glob, "-e", "tags", "-t", "ft_lang_id", "pii"],
        ["dedup", "exact", "-d", docs_glob, "-e", "dedup_text", "--key", "text"],
    ):
        run_measured(CLI + setup + common, work / "logs" / f"{setup[0]}.log")
    rows = [
        measure(
            "stats",
            [*CLI, "stats", str(root), "-o", str(work / "report"), "--force", *common],
            work / "logs",
            documents,
        ),
        measure(
            "decontaminate",
            [
                *CLI,
                "decontaminate",
                "--eval",
                str(eval_file),
                "-d",
                docs_glob,
                "-e",
                "dc",
                "--force",
                *common,
            ],
            work / "logs",
            documents,
        ),
    ]
    if args.scale:
        big_root, _ = ensure_corpus(
            CorpusSpec(docs=args.docs * 10, shards=args.shards), ROOT / "bench" / "out", args.processes
        )
        rows.append(
            measure(
                "stats 10x",
                [*CLI, "stats", str(big_root), "-o", str(work / "report-10x"), "--force", *common],
                work / "logs",
                args.docs * 10,
            )
        )
    report = json.loads((root / "attributes" / "dc" / "decontamination_report.json").read_text())
    flagged = {leak["id"] for src in report["per_source"].values() for leak in src["leaks"]}
    found = len(flagged & leaked)
    for row in rows:
        print("  ".join(f"{k}: {v}" for k, v in row.items()))
    print(
        f"decontaminate: {report['eval_ngrams']:,} eval 13-grams; planted leaks found {found}/{len(leaked)}; "
        f"false positives {len(flagged - leaked)} of {documents - len(leaked):,} clean documents"
    )
    print(f"report: {work / 'report' / 'report.html'}")
    results = ROOT / "bench" / "out" / "results" / f"analysis-{time.strftime('%Y%m%dT%H%M%S')}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    leaks = {"planted": len(leaked), "found": found, "false_positives": len(flagged - leaked)}
    results.write_text(json.dumps({"args": vars(args), "rows": rows, "leaks": leaks}, indent=1) + "\n")
    print(f"results: {results}")


if __name__ == "__main__":
    main()
