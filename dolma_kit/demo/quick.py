"""The quick tag-only demo: tag the bundled demo shards with every built-in tagger and print what came out.

`python -m dolma_kit.demo work/demo` shows the attribute layout, the summary table and one document's
attributes on the twelve shards that ship with the project (`demo/documents/`, also the test fixture corpus);
`mixers/demo.yaml` mixes its output. `make demo` runs the whole chain instead (`pipelines/demo.yaml`, on a
generated corpus: docs/demo.md).
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dolma_kit.executor import summary_table
from dolma_kit.taggers.stage import SUMMARY_NAME, TagConfig, tag

DEMO_SHARDS = Path(__file__).resolve().parent.parent / "demo" / "documents"
TAGGERS = ["ft_lang_id", "ft_lang_id_paragraph", "gopher", "c4", "pii", "char_length", "paragraph_count"]


def run_demo(out: Path, console: Console) -> Path:
    """Copy the demo shards to `out/documents` (gzipped, as real corpora are) and tag them."""
    if not DEMO_SHARDS.is_dir():
        raise SystemExit(f"demo shards not found at {DEMO_SHARDS}; run from a source checkout")
    for src in sorted(DEMO_SHARDS.glob("*/*.jsonl")):
        dst = out / "documents" / src.parent.name / (src.name + ".gz")
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as fin, gzip.GzipFile(dst, "wb", mtime=0) as fout:
            shutil.copyfileobj(fin, fout)
    result = tag(
        TagConfig(documents=[str(out / "documents" / "*" / "*.jsonl.gz")], experiment="demo", taggers=TAGGERS)
    )
    console.print(summary_table(result))
    return out / "attributes" / "demo"


def show_document(attr_root: Path, console: Console) -> None:
    """Print the document-level attributes of the first web document, as a taste of the format."""
    first = sorted(attr_root.glob("web/*.jsonl.gz"))[0]
    with gzip.open(first, "rt", encoding="utf-8") as fh:
        row = json.loads(fh.readline())
    table = Table(title=f"attributes of document {row['id']} ({first.name})")
    table.add_column("attribute")
    table.add_column("spans")
    table.add_column("first [start, end, score]")
    for name, spans in sorted(row["attributes"].items()):
        table.add_row(name, str(len(spans)), json.dumps(spans[0]))
    console.print(table)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "work/demo").resolve()
    console = Console()
    attr_root = run_demo(out, console)
    show_document(attr_root, console)
    console.print(f"attributes: {attr_root}\nsummary:    {attr_root / SUMMARY_NAME}")


if __name__ == "__main__":
    main()
