"""Content trace: build speed, disk and memory of `dolma-kit index`, and query latency, every answer checked.

Two corpora:
- **real**: the Debian documentation on this machine (/usr/share/doc: READMEs, changelogs, copyright files,
  text), tokenized with GPT-2's vocabulary. Counts of n-grams cut from it are checked against a brute-force
  numpy scan, and an occurrence's training steps against `trace --doc`.
- **generated**: `--tokens N` ids drawn from a Zipf law over GPT-2's 50,257 ids, documents of 100–3,000 tokens,
  written straight in the tokenized format (a 1 B-token index needs --tokens 1000000000 and ~8 GB of disk;
  the default is what 2 shared cores build in a few minutes). A data order for a run over it is written as
  the trainer writes it (no model), so occurrences are dated through the same code as `trace`.

Measured: build wall time and tokens/min (the `dolma-kit index` process tree, peak summed RSS), index bytes
per token, and medians over repeated queries of: count (the first queries of the process, then after
unrelated queries have warmed the suffix arrays' upper levels); count + up to K=10 occurrences with documents
and steps; maximal-span attribution of a 200-token text (a corpus passage with every 25th token replaced).
Every timed set is fresh: no timed query finds its own pages cached by an earlier one.
Prints a table; writes JSON to bench/out/results/content_trace-<tokens>.json.

    .venv/bin/python bench/content_trace.py --tokens 100000000
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import xxhash

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the root: bench/train.py must not shadow the trainer package

from _util import run_measured  # noqa: E402

EOS = 50256
VOCAB = 50257
TEXT_NAMES = ("README", "NEWS", "copyright", "changelog", "AUTHORS", "TODO", "THANKS")


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


# ------------------------------------------------------------------------------------------------ corpora


def real_corpus(work: Path, max_docs: int) -> Path:
    """Debian docs as documents, tokenized with GPT-2 (cached under bench/out)."""
    from dolma_kit.tokenize.stage import TokenizeConfig, tokenize

    tokens = work / "real-tokens"
    if (tokens / "manifest.json").is_file():
        return tokens
    docs = work / "real-docs" / "documents" / "debian"
    docs.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(docs / "part-0000.jsonl", "w", encoding="utf-8") as out:
        for path in sorted(Path("/usr/share/doc").rglob("*")):
            if n >= max_docs or not path.is_file() or not path.name.startswith(TEXT_NAMES):
                continue
            try:
                raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
                text = raw.decode("utf-8")
            except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
                continue
            if text.strip():
                out.write(json.dumps({"id": str(path), "source": "debian", "text": text}) + "\n")
                n += 1
    if not n:
        raise SystemExit("no documentation under /usr/share/doc: install some Debian *-doc packages")
    tokenize(
        TokenizeConfig(
            documents=[str(docs / "*.jsonl")], destination=str(tokens), tokenizer="gpt2", processes=2
        )
    )
    return tokens


def generated_corpus(work: Path, total: int, part_tokens: int, seed: int = 0) -> Path:
    """`total` Zipf-distributed GPT-2 ids in the tokenized format (parts of `part_tokens`), cached by size."""
    from dolma_kit.provenance import FORMAT, PART_FILES
    from dolma_kit.tokenize.publish import build_id_index

    out = work / f"gen-{total}"
    if (out / "manifest.json").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    parts, done, docs_total = [], 0, 0
    while done < total:
        n = min(part_tokens, total - done)
        lengths = rng.integers(100, 3000, size=n // 100 + 2)
        lengths = lengths[: int(np.searchsorted(np.cumsum(lengths), n)) + 1]
        lengths[-1] -= int(lengths.sum()) - n
        lengths = lengths[lengths > 0]
        tokens = (rng.zipf(1.2, size=n) - 1) % (VOCAB - 1)
        tokens = tokens.astype(np.uint16)
        tokens[tokens == EOS] = EOS - 1
        ends = np.cumsum(lengths)
        tokens[ends - 1] = EOS
        name = f"part-{len(parts):05d}"
        tokens.tofile(out / f"{name}.npy")
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        ids = [f"gen-{docs_total + i}" for i in range(len(starts))]
        blob = "".join(ids).encode()
        offsets = np.concatenate([[0], np.cumsum([len(i) for i in ids])]).astype(np.int64)
        np.save(out / f"{name}.starts.npy", starts)
        np.save(out / f"{name}.sources.npy", np.zeros(len(starts), np.int16))
        np.save(out / f"{name}.locs.npy", np.arange(1, len(starts) + 1, dtype=np.int64))
        (out / f"{name}.ids.bin").write_bytes(blob)
        np.save(out / f"{name}.ids.offsets.npy", offsets)
        np.save(
            out / f"{name}.id_hashes.npy",
            np.array([xxhash.xxh3_64_intdigest(i.encode()) for i in ids], np.uint64),
        )
        parts.append({"name": name, "src": f"generated/{name}.jsonl", "documents": len(starts), "tokens": n})
        done += n
        docs_total += len(starts)
    build_id_index(str(out), [p["name"] for p in parts])
    manifest = {
        "format": FORMAT, "tokenizer": {"name": "gpt2", "spec": "gpt2", "sha256": ""}, "eos_id": EOS,
        "pad_id": None, "vocab_size": VOCAB, "dtype": "uint16", "documents": docs_total, "tokens": total,
        "sources": ["generated"], "per_source": {"generated": {"documents": docs_total, "tokens": total}},
        "parts": parts, "files": {"part": PART_FILES},
    }  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def order_run(tokens: Path, run: Path, seq_len: int) -> Path:
    """A run folder as the trainer writes it before step 1: config.yaml and data_order.npy (one epoch)."""
    import yaml

    from train.config import load_config
    from train.data import save_array

    shutil.rmtree(run, ignore_errors=True)
    cfg = load_config(
        ROOT / "configs" / "tiny.yaml",
        [
            f"data.paths=[{tokens}]",
            f"trainer.run_dir={run}",
            f"data.seq_len={seq_len}",
            "trainer.global_batch=64",
        ],
    )
    data = cfg.data.build()
    steps = data.num_instances // 64
    cfg.trainer.max_steps = steps
    cfg.model.vocab_size = data.vocab_size
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    save_array(run / "data_order.npy", data.data_order(cfg.trainer.seed, steps * 64))
    return run


# ------------------------------------------------------------------------------------------------ measures


def build(tokens: Path) -> dict:
    shutil.rmtree(tokens / "index", ignore_errors=True)
    log = tokens.parent / "logs" / f"index-{tokens.name}.log"
    m = run_measured([sys.executable, "-m", "dolma_kit", "index", str(tokens), "--processes", "2"], log)
    if m.returncode:
        raise SystemExit(f"dolma-kit index {tokens} failed ({m.returncode})")
    manifest = json.loads((tokens / "index" / "index.json").read_text())
    size = sum(p.stat().st_size for p in (tokens / "index").iterdir() if not p.is_symlink())
    n = manifest["tokens"]
    return {
        "tokens": n,
        "build_s": round(m.wall_s, 2),
        "tokens_per_min": round(n / m.wall_s * 60),
        "cpu_s": round(m.cpu_s, 1),
        "tokens_per_cpu_min": round(n / max(m.cpu_s, 1e-9) * 60),
        "index_bytes_per_token": round(size / n, 3),
        "with_tokens_bytes_per_token": round((size + 2 * n) / n, 3),
        "peak_rss_mib": round(m.peak_rss / 2**20),
        "peak_pss_mib": round(m.peak_pss / 2**20),
        "other_cpu_s": round(m.other_cpu_s, 1),
    }


def queries(tokens: Path, run: Path | None, repeats: int, seed: int = 1) -> dict:
    from dolma_kit.index.attribute import attribute
    from dolma_kit.index.schedule import Schedule
    from dolma_kit.index.store import TokenIndex

    ix = TokenIndex.open(tokens)
    d = ix.tokenized
    parts = [np.asarray(d.tokens(i)) for i in range(len(d.parts))]
    rng = np.random.default_rng(seed)

    def window(length: int) -> tuple[int, int, list[int]]:
        while True:
            p = int(rng.integers(len(parts)))
            s = int(rng.integers(0, len(parts[p]) - length))
            q = [int(t) for t in parts[p][s : s + length]]
            if ix.eos_id not in q:
                return p, s, q

    def fresh(n: int) -> list[list[int]]:
        return [window(int(rng.integers(2, 9)))[2] for _ in range(n)]

    qs = fresh(repeats)
    # the first queries of a process on an index out of the page cache (what one CLI call may meet): timed
    # alone; then unrelated queries warm the suffix arrays' upper levels, and every timed set is fresh, so no
    # timed query finds its own pages cached by an earlier one
    cold = iter(fresh(repeats))
    count_cold_ms = _median_ms(lambda: ix.count(next(cold)), repeats)
    for q in fresh(5 * repeats):
        ix.count(q)
    # checked: counts against a brute-force numpy scan (a few, it is slow), timed both ways
    brute_ms, checked = [], 0
    for q in qs[:5]:
        t0 = time.perf_counter()
        expected = 0
        for t in parts:
            w = np.lib.stride_tricks.sliding_window_view(t, len(q))
            expected += int((w == np.asarray(q, np.uint16)).all(axis=1).sum())
        brute_ms.append((time.perf_counter() - t0) * 1000)
        assert ix.count(q) == expected, q
        checked += 1
    it = iter(fresh(2 * repeats))
    count_ms = _median_ms(lambda: ix.count(next(it)), repeats)
    schedule = Schedule(run, tokens) if run is not None else None
    steps_checked = 0

    def find_with_steps() -> None:
        _, found = ix.find(next(it), limit=10)
        if schedule is not None:
            schedule.seen(found)

    find_ms = _median_ms(find_with_steps, repeats)
    if schedule is not None:  # steps equal trace --doc for the same tokens
        for q in qs[:10]:
            _, found = ix.find(q, limit=3)
            for occ, seen in zip(found, schedule.seen(found), strict=True):
                rows = schedule.trace.document_steps(occ.id, occ.source)
                want = sorted({r.step for r in rows if r.start < occ.end and occ.start < r.end})
                assert seen.steps == want, (occ, seen.steps, want)
                steps_checked += 1
    texts = []
    for _ in range(max(3, repeats // 20)):
        _, _, passage = window(200)
        for i in range(0, 200, 25):
            passage[i] = int(rng.integers(0, VOCAB - 1)) if passage[i] != ix.eos_id else passage[i]
        texts.append([t for t in passage if t != ix.eos_id])
    it_text = iter(texts)
    attr_ms = _median_ms(
        lambda: attribute(ix, next(it_text), min_len=4, docs=5, schedule=schedule), len(texts)
    )
    return {
        "count_ms_first_queries": round(count_cold_ms, 3),
        "count_ms": round(count_ms, 3),
        "find_k10_with_docs_and_steps_ms": round(find_ms, 2),
        "attribute_200_tokens_ms": round(attr_ms, 1),
        "brute_force_count_ms": round(statistics.median(brute_ms), 1),
        "counts_checked": checked,
        "load_avg_1m_after_queries": round(os.getloadavg()[0], 1),
        "steps_checked_vs_trace": steps_checked,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=50_000_000, help="size of the generated corpus")
    ap.add_argument(
        "--part-tokens", type=int, default=256 * 2**20, help="tokens per part of the generated corpus"
    )
    ap.add_argument("--real-docs", type=int, default=3000, help="Debian documentation files (0: skip)")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--work", type=Path, default=OUT / "content-trace")
    ap.add_argument(
        "--queries-only",
        action="store_true",
        help="keep the built indexes and the build figures of the last run's JSON; time the queries again "
        "(e.g. on a quieter machine: a 1 B-token build takes ~25 minutes)",
    )
    args = ap.parse_args()
    results = OUT / "results"
    results_file = results / f"content_trace-{args.tokens}.json"
    previous = json.loads(results_file.read_text()) if args.queries_only else {}

    def built(tokens: Path, name: str) -> dict:
        if not args.queries_only:
            return build(tokens)
        if name not in previous or not (tokens / "index" / "index.json").is_file():
            raise SystemExit(f"--queries-only: no earlier build of {tokens} recorded in {results_file}")
        keys = ("tokens", "build_s", "tokens_per_min", "cpu_s", "tokens_per_cpu_min", "index_bytes_per_token")
        keys += ("with_tokens_bytes_per_token", "peak_rss_mib", "peak_pss_mib", "other_cpu_s")
        return {k: previous[name][k] for k in keys}

    args.work.mkdir(parents=True, exist_ok=True)
    rows = {}
    if args.real_docs:
        real = real_corpus(args.work, args.real_docs)
        rows["real (Debian docs, GPT-2)"] = {
            **built(real, "real (Debian docs, GPT-2)"),
            **queries(real, order_run(real, args.work / "real-run", 512), args.repeats),
        }
    gen = generated_corpus(args.work, args.tokens, args.part_tokens)
    name = f"generated ({args.tokens:,})"
    rows[name] = {
        **built(gen, name), **queries(gen, order_run(gen, args.work / "gen-run", 2048), args.repeats)
    }  # fmt: skip
    from rich.console import Console
    from rich.table import Table

    table = Table(title="content trace: index build and queries (2 processes)")
    keys = list(next(iter(rows.values())))
    table.add_column("measure")
    for name in rows:
        table.add_column(name, justify="right")
    for k in keys:
        table.add_row(
            k, *(f"{rows[n][k]:,}" if isinstance(rows[n][k], int) else str(rows[n][k]) for n in rows)
        )
    Console().print(table)
    results.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
