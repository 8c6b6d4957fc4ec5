"""Peak memory of `dolma-kit dedup dolma` (Dolma dedupe configs) on one very long document (target ≤ 500 MB).

    .venv/bin/python bench/dedup_long_document.py           # one 50 M-character document of real text
    .venv/bin/python bench/dedup_long_document.py --mb 10

The corpus and the measurement are bench/big_document.py's (Debian licences and documentation repeated to
the size, beside a short document; each run a fresh child process with `-p 1`, its peak RSS), for the Dolma
configs that cost most: paragraph n-grams and whole paragraphs, each by default and with `--dolma-compat`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from big_document import TARGET_MB, make_corpus, measure

CASES = {
    "ngrams 6/3/0.5": {
        "paragraphs": {
            "attribute_name": "bff_duplicate_paragraph_spans",
            "by_ngram": {"ngram_length": 6, "stride": 3, "overlap_threshold": 0.5},
        }
    },
    "paragraphs": {"paragraphs": {"attribute_name": "bff_duplicate_paragraph_spans"}},
    "documents by text": {"documents": {"attribute_name": "bff_duplicate_docs", "key": "$.text"}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mb", type=int, default=50, help="Size of the long document in millions of characters."
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dedup-long-") as tmp:
        root = Path(tmp)
        make_corpus(root, options.mb)
        print(
            f"one document of {options.mb:,} M characters of real text (+ a short one); target ≤ {TARGET_MB} MB"
        )
        print(f"{'config':<34} {'seconds':>8} {'peak MB':>8}")
        for name, dedupe in CASES.items():
            for compat in ([], ["--dolma-compat"]):
                experiment = f"{name.split()[0]}{len(compat)}"
                cfg = {
                    "documents": [f"{root}/documents/*/*"],
                    "dedupe": {"name": experiment, **dedupe},
                    "bloom_filter": {"file": str(root / "unused.bloom"), "size_in_bytes": 1 << 20},
                }
                path = root / f"{experiment}.json"
                path.write_text(json.dumps(cfg))
                seconds, peak, rc = measure(["dedup", "dolma", "-c", str(path), *compat])
                label = f"{name}{' --dolma-compat' if compat else ''}"
                status = "FAILED" if rc else ("ok" if peak <= TARGET_MB else "over")
                print(f"{label:<34} {seconds:>8.1f} {peak:>8.0f}  {status}", flush=True)


if __name__ == "__main__":
    main()
