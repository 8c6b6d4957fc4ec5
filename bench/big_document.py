"""Peak memory and time of every data stage on one very long document (issue target: ≤ 500 MB each).

    .venv/bin/python bench/big_document.py            # a 50 MB document of real text, beside a short one
    .venv/bin/python bench/big_document.py --mb 10     # a smaller one

The long document is real text the project did not write: the licences and documentation this machine's Debian
packages ship (`/usr/share/common-licenses`, `/usr/share/doc/**/*.txt|README|copyright`), concatenated and
repeated until it reaches the size. Each stage runs as the CLI users call, in its own process with `-p 1`; the
peak is that process's maximum resident set size (`getrusage(RUSAGE_CHILDREN)` of a fresh child each time).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "tests" / "fixtures" / "tokenizer" / "demo-bpe.json"
TARGET_MB = 500


def real_text(limit: int) -> str:
    """Debian's licence and documentation text, repeated to `limit` characters."""
    pieces: list[str] = []
    size = 0
    roots = [Path("/usr/share/common-licenses"), Path("/usr/share/doc")]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if (
                path.is_file()
                and not path.suffix.endswith(("gz", "html", "png", "svg"))
                and path.stat().st_size < 2e6
            ):
                try:
                    pieces.append(path.read_text(encoding="utf-8"))
                except (UnicodeDecodeError, OSError):
                    continue
                size += len(pieces[-1])
    if not pieces:
        raise SystemExit("no text found under /usr/share/common-licenses or /usr/share/doc")
    text = "\n".join(pieces)
    return (text * (limit // max(len(text), 1) + 1))[:limit]


def make_corpus(root: Path, mb: int) -> None:
    shard = root / "documents" / "web" / "part-0000.jsonl.gz"
    shard.parent.mkdir(parents=True)
    with gzip.open(shard, "wt", compresslevel=1) as out:
        out.write(json.dumps({"id": "long", "text": real_text(mb * 1_000_000)}) + "\n")
        out.write(json.dumps({"id": "short", "text": "A short document beside the long one."}) + "\n")
    (root / "eval.jsonl").write_text(
        json.dumps({"text": "permission is hereby granted free of charge to any person"})
    )
    (root / "recipe.yaml").write_text(
        f"streams:\n  - name: all\n    documents: ['{root}/documents/*/*']\n    output: {{path: {root}/mixed}}\n"
    )


def stages(root: Path) -> dict[str, list[str]]:
    docs = f"{root}/documents/*/*"
    return {
        "tag (char_length, pii)": ["tag", "-d", docs, "-e", "a", "-t", "char_length", "pii"],
        "tag (gopher)": ["tag", "-d", docs, "-e", "b", "-t", "gopher"],
        "tag (c4)": ["tag", "-d", docs, "-e", "c", "-t", "c4"],
        "tag (ft_lang_id)": ["tag", "-d", docs, "-e", "d", "-t", "ft_lang_id"],
        "dedup exact (text)": ["dedup", "exact", "-d", docs, "-e", "x", "--key", "text"],
        "dedup exact (paragraphs)": ["dedup", "exact", "-d", docs, "-e", "y", "--key", "paragraphs"],
        "dedup minhash": ["dedup", "minhash", "-d", docs, "-e", "m"],
        "decontaminate": ["decontaminate", "--eval", str(root / "eval.jsonl"), "-d", docs, "-e", "k"],
        "mix": ["mix", str(root / "recipe.yaml")],
        "tokenize": [
            "tokenize",
            "-d",
            docs,
            "--destination",
            str(root / "tokens"),
            "--tokenizer",
            str(TOKENIZER),
        ],
        "stats": ["stats", str(root), "--output", str(root / "report")],
    }


def measure(args: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS MB, exit code) of `dolma-kit ARGS -p 1` in a fresh child process."""
    code = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)"
    )
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "dolma_kit", *args, "-p", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()
    return float(out[0]), int(out[1]) / 1024, int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mb", type=int, default=50, help="Size of the long document in millions of characters."
    )
    parser.add_argument("--only", nargs="*", help="Stages to run (names as printed).")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="big-document-") as tmp:
        root = Path(tmp)
        make_corpus(root, options.mb)
        print(
            f"one document of {options.mb:,} M characters of real text (+ a short one); target ≤ {TARGET_MB} MB"
        )
        print(f"{'stage':<28} {'seconds':>8} {'peak MB':>8}  {'':<6}")
        results = {}
        for name, args in stages(root).items():
            if options.only and name not in options.only:
                continue
            seconds, peak, rc = measure(args)
            ok = "ok" if peak <= TARGET_MB and rc == 0 else ("FAILED" if rc else "over")
            print(f"{name:<28} {seconds:>8.1f} {peak:>8.0f}  {ok:<6}", flush=True)
            results[name] = {"seconds": round(seconds, 2), "peak_mb": round(peak), "exit": rc}
        out = ROOT / "bench" / "out" / "results" / "big_document.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"mb": options.mb, "stages": results}, indent=2) + "\n")
        print(f"saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
