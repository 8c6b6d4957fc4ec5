"""Where tagging time goes on real text: CPU per tagger and per kind of document, ours and Dolma 1.2.1's.

    .venv/bin/python bench/tag_profile.py                    # the 1,454-document real-text corpus
    .venv/bin/python bench/tag_profile.py --docs 300

Whole-run timings (bench/tag.py, bench/dolma_taggers.py) include start-up, reading and writing; this one
times only `predict`, in one process, for each tagger on each source of `dolma_peer.real_corpus` (Debian docs
with long lines, short paragraphs, licences, man pages with many short lines, translated man pages with
non-ASCII text, web-like pages), so a slow tagger and the kind of text that makes it slow can be named.
Dolma's taggers run in Dolma's venv on the same documents (a small timing script fed the shard paths), ours
in this interpreter. Process CPU time, best of `--repeat` passes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from dolma_peer import BENCH_DIR, corpus_shards, ensure_dolma, real_corpus
from rich.table import Table
from tag_runner import console

from dolma_kit.documents import Document
from dolma_kit.taggers.fasttext_models import bundled_lid_model
from dolma_kit.taggers.registry import build_tagger

#: (label, our spec, Dolma's tagger name); the c4 twin runs without a word list on both sides' terms below
PAIRS = [
    ("gopher", "gopher_dolma", "gopher_v1"),
    ("c4", "c4_dolma:bad_words_file={words}", "c4_v2"),
    ("pii", "pii_dolma", "pii_regex_with_counts_fast_v2"),
    ("lid doc", "ft_lang_id_dolma:model={model}", "ft_lang_id_en_doc_v2"),
    (
        "lid paragraphs",
        "ft_lang_id_dolma:variant=ft_lang_id_en_paragraph_with_doc_score_v2,model={model}",
        "ft_lang_id_en_paragraph_with_doc_score_v2",
    ),
    ("gopher (paper)", "gopher", None),
    ("c4 (paper)", "c4", None),
    ("pii (ours)", "pii", None),
]

_DOLMA_SCRIPT = """
import gzip, json, sys, time
from collections import defaultdict
from dolma.taggers.language import FastTextAllLanguagesDocumentTagger
FastTextAllLanguagesDocumentTagger.MODEL_PATH = sys.argv[1]
from dolma.core.registry import TaggerRegistry
from dolma.core.data_types import Document
names, repeat, shards = sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4:]
docs = [(r["source"], Document(source=r["source"], id=r["id"], text=r["text"]))
        for s in shards for r in map(json.loads, gzip.open(s, "rt", encoding="utf-8"))]
out = {}
for name in names:
    tagger = TaggerRegistry.get(name)()
    best = defaultdict(lambda: float("inf"))
    for _ in range(repeat):
        for source in sorted({s for s, _ in docs}):
            t0 = time.process_time()
            for s, d in docs:
                if s == source:
                    tagger.predict(d)
            best[source] = min(best[source], time.process_time() - t0)
    out[name] = dict(best)
print(json.dumps(out))
"""


def load(shards: list[str]) -> list[tuple[str, Document]]:
    docs = []
    for shard in shards:
        with gzip.open(shard, "rt", encoding="utf-8") as f:
            docs += [(r["source"], Document(id=r["id"], text=r["text"])) for r in map(json.loads, f)]
    return docs


def time_ours(spec: str, docs: list[tuple[str, Document]], repeat: int) -> dict[str, float]:
    _, tagger = build_tagger(spec)
    best: dict[str, float] = defaultdict(lambda: float("inf"))
    for _ in range(repeat):
        for source in sorted({s for s, _ in docs}):
            t0 = time.process_time()
            for s, d in docs:
                if s == source:
                    tagger.predict(d)
            best[source] = min(best[source], time.process_time() - t0)
    return dict(best)


def time_dolma(dolma: Path, names: list[str], shards: list[str], repeat: int) -> dict[str, dict[str, float]]:
    python = dolma.parent / "python"
    cmd = [str(python), "-c", _DOLMA_SCRIPT, str(bundled_lid_model()), ",".join(names), str(repeat), *shards]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=1454)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=2, help="passes per tagger and source; the best is shown")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "conformance")
    args = p.parse_args()
    corpus = real_corpus(args.out / f"corpus-{args.docs}-{args.seed}", docs=args.docs, seed=args.seed)
    shards = corpus_shards(corpus)
    dolma = ensure_dolma()
    words = next(dolma.parent.parent.glob("lib/python*/site-packages/dolma/data/naughty_words_en.txt"))
    docs = load(shards)
    sources = sorted({s for s, _ in docs})
    theirs = time_dolma(dolma, [d for _, _, d in PAIRS if d], shards, args.repeat)
    table = Table(
        title=f"predict() CPU ms per document, one process, {len(docs):,} real documents (best of {args.repeat})"
    )
    table.add_column("tagger")
    for source in sources:
        n = sum(s == source for s, _ in docs)
        chars = sum(len(d.text) for s, d in docs if s == source) / max(n, 1)
        table.add_column(f"{source}\n{n} docs, {chars / 1000:.1f} K chars", justify="right")
    table.add_column("all: ours / Dolma", justify="right")
    counts = {source: sum(s == source for s, _ in docs) for source in sources}
    for label, spec, dolma_name in PAIRS:
        ours = time_ours(spec.format(words=words, model=bundled_lid_model()), docs, args.repeat)
        cells = []
        for source in sources:
            mine = 1000 * ours[source] / counts[source]
            if dolma_name:
                other = 1000 * theirs[dolma_name][source] / counts[source]
                cells.append(f"{mine:.2f} / {other:.2f} ({other / max(mine, 1e-9):.1f}×)")
            else:
                cells.append(f"{mine:.2f}")
        total = sum(ours.values())
        other_total = sum(theirs[dolma_name].values()) if dolma_name else None
        last = f"{total:.2f} s" + (
            f" / {other_total:.2f} s ({other_total / total:.1f}×)" if other_total else ""
        )
        table.add_row(label, *cells, last)
    console.print(table)
    console.print(
        "cells: ours / Dolma ms per document (Dolma ÷ ours); c4 is `c4_dolma` with Dolma's word list"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    main()
