"""Dolma dedupe configs: does `dolma-kit dedup dolma` write Dolma 1.2.1's attribute values, on real text?

    .venv/bin/python bench/dolma_dedup.py                 # its own 1,454-document real-text corpus
    .venv/bin/python bench/dolma_dedup.py --docs 300

Each case is one Dolma dedupe config (document dedup by URL and by text, paragraph dedup with and without
`skip_empty`, paragraph n-gram dedup), run three times on the same shards: `dolma -c CFG dedupe`, ours with
`--dolma-compat` (Dolma 1.2.1's behaviour, bugs included: its values must be equal on every document), and
ours by default (equal except where Dolma 1.2.1 is wrong; the run prints where). Documents get a
`metadata.url` made from where their text came from (`dolma_peer` records it), with re-used URLs planted,
some with a `#fragment` added, so URL dedup has duplicates of both kinds.

Dolma runs with one process: with more, its threads race for which copy of a key is "first", and the
result changes from run to run. Its Bloom filter is sized from the corpus so that a false positive is
unlikely anywhere (the probability is printed); equal values on every document then also show that none
happened. Values are compared as JSON (1 == 1.0); a document where both sides lack the attribute counts as
equal (Dolma writes the key only where it has something to say). `compare` is what
bench/dolma_conformance.py calls.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _util import Measured, run_measured
from dolma_peer import corpus_shards
from tag_runner import console

PROCESSES = 2
#: Bloom filter bits per key: p(false positive) per key ≈ 0.6185^50 ≈ 4e-11
BITS_PER_KEY = 50

CASES: dict[str, dict[str, Any]] = {
    "url": {"documents": {"attribute_name": "bff_duplicate_url", "key": "$.metadata.url"}},
    "text": {"documents": {"attribute_name": "bff_duplicate_docs", "key": "$.text"}},
    "paragraphs": {"paragraphs": {"attribute_name": "bff_duplicate_paragraph_spans"}},
    "paragraphs_skip_empty": {
        "paragraphs": {"attribute_name": "bff_duplicate_paragraph_spans"},
        "skip_empty": True,
        "min_length": 10,
    },
    "ngrams": {
        "paragraphs": {
            "attribute_name": "bff_duplicate_paragraph_spans",
            "by_ngram": {"ngram_length": 6, "stride": 3, "overlap_threshold": 0.5},
        }
    },
    "ngrams_13": {
        "paragraphs": {
            "attribute_name": "bff_duplicate_paragraph_spans",
            "by_ngram": {
                "ngram_length": 13,
                "stride": 1,
                "overlap_threshold": 0.0,
                "skip_short_paragraphs": True,
            },
        },
        "skip_empty": True,
    },
}


def layout(corpus: Path, work: Path, seed: int = 0) -> tuple[list[str], int]:
    """The corpus's shards copied to `work/documents/`, each document given a `metadata.url`; returns the
    shard paths and a count of words (an upper bound on the keys any case checks, for the Bloom filter)."""
    rng = random.Random(seed)
    urls: list[str] = []
    words = 0
    shards = []
    for shard in corpus_shards(corpus):
        source, name = Path(shard).parent.name, Path(shard).name
        dest = work / "documents" / source / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shards.append(str(dest))
        with gzip.open(shard, "rt", encoding="utf-8") as src, gzip.open(dest, "wt", encoding="utf-8") as out:
            for line in src:
                row = json.loads(line)
                words += 2 * len(row["text"].split()) + row["text"].count("\n") + 1
                origin = row.get("metadata", {}).get("origin", row["id"])
                draw = rng.random()
                if urls and draw < 0.12:
                    url = rng.choice(urls)  # the same page crawled twice
                elif urls and draw < 0.2:
                    url = rng.choice(urls).partition("#")[0] + f"#section-{rng.randint(1, 9)}"
                else:
                    url = f"https://{source.replace('_', '-')}.example.org{origin}"
                urls.append(url)
                row.setdefault("metadata", {})["url"] = url
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return shards, words


def config(case: str, name: str, shards: list[str], bloom: Path, keys: int) -> dict[str, Any]:
    size = 1 << max(20, math.ceil(math.log2(keys * BITS_PER_KEY / 8)))
    return {
        "documents": shards,
        "dedupe": {"name": name, **CASES[case]},
        "bloom_filter": {
            "file": str(bloom),
            "read_only": False,
            "size_in_bytes": size,
            "estimated_doc_count": keys,
        },
        "processes": 1,
    }


def false_positive_odds(size_in_bytes: int, keys: int) -> tuple[int, float]:
    """Dolma's hasher count for the filter, and the chance of a false positive anywhere in `keys` checks."""
    m = size_in_bytes * 8
    k = math.ceil(m / keys * math.log(2))
    per_key = (1 - (1 - 1 / m) ** (k * keys)) ** k
    return k, min(1.0, per_key * keys)


def _run(cmd: list[str], log: Path) -> Measured:
    console.print(f"[dim]$ {' '.join(cmd[:6])} … (log: {log})[/]")
    measured = run_measured(cmd, log)
    if measured.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({measured.returncode}): {log.read_text()[-2000:]}")
    return measured


def run_dolma(dolma: Path, cfg: dict[str, Any], work: Path) -> Measured:
    name = cfg["dedupe"]["name"]
    shutil.rmtree(work / "attributes" / name, ignore_errors=True)  # Dolma skips shards already written
    Path(cfg["bloom_filter"]["file"]).unlink(missing_ok=True)  # and would start from an old filter
    path = work / f"{name}.json"
    path.write_text(json.dumps(cfg, indent=1))
    return _run([str(dolma), "-c", str(path), "dedupe"], work / f"{name}.log")


def run_ours(cfg: dict[str, Any], work: Path, *, compat: bool) -> Measured:
    name = cfg["dedupe"]["name"]
    path = work / f"{name}.json"
    path.write_text(json.dumps(cfg, indent=1))
    cmd = [sys.executable, "-m", "dolma_kit", "dedup", "dolma", "-c", str(path), "-p", str(PROCESSES)]
    cmd += ["--force", "--work-dir", str(work / "_work" / name)] + (["--dolma-compat"] if compat else [])
    return _run(cmd, work / f"{name}.log")


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 90 else text[:87] + "…"


_ABSENT = "absent"


def compare_values(
    work: Path, shards: list[str], attribute: str, theirs: str, ours: str
) -> tuple[int, int, str]:
    """(documents with equal values, documents, first difference) between two attribute folders."""
    equal = total = 0
    example = ""
    for shard in shards:
        rel = shard.rpartition("/documents/")[2]
        pairs = zip(
            _rows(work / "attributes" / theirs / rel), _rows(work / "attributes" / ours / rel), strict=True
        )
        for d_row, o_row in pairs:
            assert d_row["id"] == o_row["id"], (shard, d_row["id"], o_row["id"])
            d_val = d_row["attributes"].get(attribute, _ABSENT)
            o_val = o_row["attributes"].get(attribute, _ABSENT)
            total += 1
            if d_val == o_val:
                equal += 1
            elif not example:
                example = f"{d_row['id']}: Dolma {_short(d_val)} ours {_short(o_val)}"
    return equal, total, example


def compare(corpus: Path, dolma: Path, work: Path) -> list[dict[str, Any]]:
    """Every case run by Dolma, by ours in Dolma mode and by ours by default; rows for the driver."""
    work = Path(work).resolve()
    shutil.rmtree(work / "documents", ignore_errors=True)
    shards, keys = layout(Path(corpus), work)
    rows: list[dict[str, Any]] = []
    for case, section in CASES.items():
        attribute = next(v["attribute_name"] for k, v in section.items() if k in ("documents", "paragraphs"))
        cfgs = {
            who: config(case, f"{who}_{case}", shards, work / f"{who}_{case}.bloom", keys)
            for who in ("dolma", "compat", "default")
        }
        m_dolma = run_dolma(dolma, cfgs["dolma"], work)
        m_ours = run_ours(cfgs["compat"], work, compat=True)
        run_ours(cfgs["default"], work, compat=False)
        equal, total, example = compare_values(work, shards, attribute, f"dolma_{case}", f"compat_{case}")
        rows.append(
            {
                "stage": "dedup",
                "what": f"{attribute} ({case}), --dolma-compat",
                "equal": equal,
                "total": total,
                "example": example,
                "ours_cpu_s": m_ours.cpu_s,
                "dolma_cpu_s": m_dolma.cpu_s,
            }
        )
        equal, total, example = compare_values(work, shards, attribute, f"dolma_{case}", f"default_{case}")
        rows.append(
            {
                "stage": "dedup",
                "what": f"{attribute} ({case}), default (differs where Dolma 1.2.1 is wrong)",
                "equal": equal,
                "total": total,
                "example": example,
            }
        )
    size = cfgs["dolma"]["bloom_filter"]["size_in_bytes"]
    hashers, odds = false_positive_odds(size, keys)
    rows.append(
        {
            "stage": "dedup",
            "what": "Dolma's Bloom filter",
            "equal": 0,
            "total": 0,
            "example": f"{size >> 20} MiB for ≤ {keys:,} keys, {hashers} hashers: P(any false positive) ≈ {odds:.1e}",
        }
    )
    return rows


def main() -> None:
    from dolma_conformance import part_main

    part_main(compare, "dedup", __doc__.split("\n\n")[0])


if __name__ == "__main__":
    main()
