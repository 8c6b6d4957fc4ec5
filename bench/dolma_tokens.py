"""Does `dolma-kit tokenize --strip` write the token ids `dolma tokens` 1.2.1 writes, and how fast?

    .venv/bin/python bench/dolma_tokens.py                 # its own 1,454-document real-text corpus
    .venv/bin/python bench/dolma_tokens.py --docs 300      # a quick look

The same shards and the same tokenizer.json (GPT-2's, written from `--tokenizer gpt2`, EOS 50256) go through
`dolma tokens --processes 2` and `dolma-kit tokenize -p 2` (Dolma's behaviour asked for: `--strip
--no-encode-special-tokens`), and once more through `dolma-kit tokenize-dolma` with a Dolma config file. The
outputs are laid out differently (Dolma mixes files into each process's parts and shuffles unseeded), so they
are compared document for document, matched by (src, id): the token ids, and the csv.gz row's id, src, loc
and length. One row counts how many documents differ without `--strip` (why the option exists). The speed
row is CPU seconds over each process tree (bench/_util.py), start-up included; walls are printed too. The
floor row is the CPU `tokenizers`' `encode_batch_fast` alone spends on the same stripped texts (read before the
clock starts): no tool that encodes with `tokenizers` can use less, so dolma's CPU over it bounds the ratio.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _util import run_measured
from dolma_peer import corpus_shards
from mix_tokenize import write_gpt2_json
from tag_runner import console

PROCESSES = 2
EOS = 50256
TARGET_CPU = 3.0
DOLMA_FLAGS = ["--strip", "--no-encode-special-tokens"]
Doc = tuple[str, int, int, tuple[int, ...]]  # id, loc, length, ids


def _run(cmd: list[str], log: Path) -> Any:
    console.print(f"[dim]$ {' '.join(cmd[:4])} … (log: {log})[/]")
    env = {k: v for k, v in os.environ.items() if k not in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")}
    measured = run_measured(cmd, log, env=env)
    if measured.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({measured.returncode}): {log.read_text()[-2000:]}")
    return measured


def read_dolma(folder: Path) -> dict[tuple[str, str], Doc]:
    """(src, id) → (id, loc, length, ids) from Dolma's parts: `<part>.npy` raw uint16, `<part>.csv.gz`
    start,end,id,src,loc (its writer pre-sizes the memmap; the CSV says where documents are)."""
    out: dict[tuple[str, str], Doc] = {}
    for meta in sorted(folder.rglob("*.csv.gz")):
        tokens = np.memmap(str(meta).removesuffix(".csv.gz") + ".npy", dtype="<u2", mode="r")
        with gzip.open(meta, "rt", newline="") as fh:
            for start, end, doc_id, src, loc in csv.reader(fh):
                ids = tuple(tokens[int(start) : int(end)].tolist())
                out[(os.path.abspath(src), doc_id)] = (doc_id, int(loc), int(end) - int(start), ids)
    return out


def read_ours(folder: Path) -> dict[tuple[str, str], Doc]:
    """The same from our CSVs (the very rows Dolma-era tools read) and parts."""
    out: dict[tuple[str, str], Doc] = {}
    for meta in sorted(folder.glob("part-*.csv.gz")):
        tokens = np.memmap(str(meta).removesuffix(".csv.gz") + ".npy", dtype="<u2", mode="r")
        with gzip.open(meta, "rt", newline="") as fh:
            for start, end, doc_id, src, loc in csv.reader(fh):
                ids = tuple(tokens[int(start) : int(end)].tolist())
                out[(src, doc_id)] = (doc_id, int(loc), int(end) - int(start), ids)
    return out


def _row(what: str, ours: dict, theirs: dict, same: Any, show: Any) -> dict[str, Any]:
    keys = sorted(set(ours) | set(theirs))
    equal = [k for k in keys if k in ours and k in theirs and same(ours[k], theirs[k])]
    differ = next((k for k in keys if k not in equal), None)
    example = "" if differ is None else show(differ, ours.get(differ), theirs.get(differ))
    return {"stage": "tokens", "what": what, "equal": len(equal), "total": len(keys), "example": example}


def _show_ids(key: tuple[str, str], a: Doc | None, b: Doc | None) -> str:
    if a is None or b is None:
        return f"{Path(key[0]).name} id {key[1]}: only in {'dolma' if a is None else 'dolma-kit'}"
    first = next(
        (i for i, (x, y) in enumerate(zip(a[3], b[3], strict=False)) if x != y), min(len(a[3]), len(b[3]))
    )
    ours, theirs = list(a[3][first : first + 4]), list(b[3][first : first + 4])
    return (
        f"{Path(key[0]).name} id {key[1]}: first difference at token {first} "
        f"(ours {ours}, dolma {theirs}; lengths {a[2]}/{b[2]})"
    )


def _show_rows(key: tuple[str, str], a: Doc | None, b: Doc | None) -> str:
    if a is None or b is None:
        return _show_ids(key, a, b)
    return f"{Path(key[0]).name} id {key[1]}: (loc, length) ours {a[1:3]}, dolma {b[1:3]}"


def encode_floor(tokenizer: str, shards: list[str]) -> float:
    """Child mode: CPU seconds of encode_batch_fast alone over the stripped texts (1 Rust thread)."""
    from tokenizers import Tokenizer

    texts = []
    for shard in shards:
        with gzip.open(shard, "rt", encoding="utf-8") as fh:
            texts += [t for t in (json.loads(line)["text"].strip() for line in fh) if t]
    tok = Tokenizer.from_file(tokenizer)
    start = time.process_time()
    tok.encode_batch_fast(texts, add_special_tokens=False)
    return time.process_time() - start


def _floor(tokenizer: Path, shards: list[str]) -> float:
    env = {**os.environ, "RAYON_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--floor", str(tokenizer), *shards]
    return float(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip())


def compare(corpus: Path, dolma: Path, work: Path) -> list[dict[str, Any]]:
    """Rows for bench/dolma_conformance.py: token ids and CSV rows, document for document, and CPU time."""
    shards = corpus_shards(corpus)
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = work / "gpt2-tokenizer.json"
    write_gpt2_json(tokenizer)
    outs = {name: work / name for name in ("dolma", "strip", "plain", "config")}
    for folder in outs.values():
        shutil.rmtree(folder, ignore_errors=True)
    logs = work / "logs"
    m_dolma = _run(
        [str(dolma), "tokens", "--documents", *shards, "--destination", str(outs["dolma"]),
         "--tokenizer.name_or_path", str(tokenizer), "--tokenizer.eos_token_id", str(EOS),
         "--processes", str(PROCESSES), "--seed", "0", "--dtype", "uint16"],
        logs / "dolma.log",
    )  # fmt: skip
    ours = [
        sys.executable,
        "-m",
        "dolma_kit",
        "tokenize",
        "--documents",
        *shards,
        "--tokenizer",
        str(tokenizer),
    ]
    m_ours = _run([*ours, "--destination", str(outs["strip"]), "-p", str(PROCESSES), *DOLMA_FLAGS],
                  logs / "strip.log")  # fmt: skip
    _run([*ours, "--destination", str(outs["plain"]), "-p", str(PROCESSES)], logs / "plain.log")
    config = work / "tokens.yaml"
    config.write_text(json.dumps({
        "documents": shards, "destination": str(outs["config"]), "processes": PROCESSES, "seed": 0,
        "tokenizer": {"name_or_path": str(tokenizer), "eos_token_id": EOS}, "dtype": "uint16",
    }))  # fmt: skip
    _run([sys.executable, "-m", "dolma_kit", "tokenize-dolma", str(config)], logs / "config.log")
    theirs = read_dolma(outs["dolma"])
    strip, plain, from_config = (read_ours(outs[k]) for k in ("strip", "plain", "config"))
    same_ids = lambda a, b: a[3] == b[3]  # noqa: E731
    same_row = lambda a, b: a[:3] == b[:3]  # noqa: E731
    rows = [
        _row("token ids, --strip --no-encode-special-tokens", strip, theirs, same_ids, _show_ids),
        _row("csv.gz rows (id, src, loc, end-start), --strip", strip, theirs, same_row, _show_rows),
        _row("token ids, tokenize-dolma on a Dolma config", from_config, theirs, same_ids, _show_ids),
        _row("token ids, default (text as it is; specials as text)", plain, theirs, same_ids, _show_ids),
    ]
    ratio = m_dolma.cpu_s / max(m_ours.cpu_s, 1e-9)
    rows.append(
        {
            "stage": "tokens",
            "what": f"speed, CPU s over the process tree, -p {PROCESSES} (target ≥ {TARGET_CPU:g}×)",
            "equal": int(ratio >= TARGET_CPU),
            "total": 1,
            "example": f"dolma-kit {ratio:.2f}× less CPU than dolma tokens "
            f"(wall {m_ours.wall_s:.1f} s vs {m_dolma.wall_s:.1f} s; other CPU meanwhile "
            f"{m_ours.other_cpu_s:.1f}/{m_dolma.other_cpu_s:.1f} s)",
            "ours_cpu_s": round(m_ours.cpu_s, 2),
            "dolma_cpu_s": round(m_dolma.cpu_s, 2),
        }
    )
    floor = _floor(tokenizer, shards)
    rows.append(
        {
            "stage": "tokens",
            "what": "floor: encode_batch_fast alone on the same texts, CPU s",
            "equal": int(m_dolma.cpu_s / floor >= TARGET_CPU),
            "total": 1,
            "example": f"{floor:.2f} s: at best {m_dolma.cpu_s / floor:.2f}× less CPU than dolma tokens "
            f"with tokenizers' BPE; dolma-kit's overhead over it {m_ours.cpu_s - floor:.2f} s",
            "ours_cpu_s": round(floor, 2),
            "dolma_cpu_s": round(m_dolma.cpu_s, 2),
        }
    )
    return rows


def main() -> None:
    if sys.argv[1:2] == ["--floor"]:
        print(encode_floor(sys.argv[2], sys.argv[3:]))
        return
    from dolma_conformance import part_main

    part_main(compare, "tokens", __doc__.split("\n\n")[0])


if __name__ == "__main__":
    main()
