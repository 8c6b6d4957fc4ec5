"""A deterministic synthetic web-like corpus for the tagger benchmark (Dolma's document layout).

Real crawls cannot ship with the repository, and a benchmark of quality taggers only means something when
the quality decisions vary, so most documents are English-like prose (a written word list, sentence
templates, stop words in natural proportions) and the rest each carry one fault that a Gopher or C4 rule
looks for: too short or too long, bullet lists, ellipsis teasers, hashtags, number tables, duplicated lines
or paragraphs, repeated phrases, navigation lines without punctuation, JavaScript/cookie boilerplate, lorem
ipsum, code with curly braces, PII, keyword salad without stop words, and URL lists. The severity of each
fault is drawn from a range that straddles the paper's threshold, so both decisions occur for every kind.

Every document is generated from its own RNG seeded with `"<seed>:<index>"` (string seeds are hashed with
SHA-512 by `random`, so no PYTHONHASHSEED dependence): the same seed gives byte-identical shards, and the
first N documents of a 10x corpus are the N documents of the small one. The fault kind is recorded in
`metadata.kind` so disagreements between taggers can be traced back to what the generator planted.

The vocabulary lives in bench/corpus_words.py, the English-like sentences in bench/corpus_text.py and the
document kinds in bench/corpus_kinds.py; this module turns them into documents and shards on disk.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

# loaded by file path (tests/taggers/test_gopher_dolma.py) rather than run from bench/: bench/ is put on
# sys.path for the sibling imports only, so its script names (train, tag, ...) shadow nothing afterwards
_BENCH_DIR = str(Path(__file__).resolve().parent)
_BORROW_PATH = _BENCH_DIR not in sys.path
if _BORROW_PATH:
    sys.path.append(_BENCH_DIR)

from corpus_kinds import KINDS  # noqa: E402 - after the sys.path step above

if _BORROW_PATH:
    sys.path.remove(_BENCH_DIR)

#: bump when the generated text changes, so a cached corpus from an older generator is rebuilt
GENERATOR_VERSION = 2
MANIFEST = "manifest.json"

_KIND_NAMES = list(KINDS)
_KIND_WEIGHTS = [w for _, w in KINDS.values()]
_EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)


def make_document(seed: int, index: int, source: str) -> dict[str, object]:
    """Document `index` of the corpus with `seed`: the same pair always gives the same record."""
    rng = random.Random(f"{seed}:{index}")
    kind = rng.choices(_KIND_NAMES, weights=_KIND_WEIGHTS)[0]
    text = KINDS[kind][0](rng)
    created = _EPOCH - timedelta(days=rng.randint(0, 3650), seconds=rng.randint(0, 86_399))
    return {
        "id": f"{source}-{index:09d}",
        "text": text,
        "source": source,
        "added": _EPOCH.isoformat().replace("+00:00", "Z"),
        "created": created.isoformat().replace("+00:00", "Z"),
        "metadata": {"kind": kind, "url": f"https://{source}.example.com/page/{index}"},
    }


# ------------------------------------------------------------------------------------------ corpus on disk


@dataclass(frozen=True)
class CorpusSpec:
    """What identifies a generated corpus; a cached one is reused only when its manifest matches."""

    docs: int
    shards: int
    seed: int = 0
    source: str = "synthetic"
    version: int = GENERATOR_VERSION

    def dirname(self) -> str:
        return f"corpus-{self.docs}d-{self.shards}s-seed{self.seed}"


def shard_ranges(docs: int, shards: int) -> list[range]:
    """Contiguous, near-equal blocks of document indices, one per shard.

    A 10x corpus keeps the shard count, so its shards are 10x bigger: that is what the memory check needs.
    """
    bounds = [docs * k // shards for k in range(shards + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(shards)]


def _write_shard(spec: CorpusSpec, path: Path, indices: range) -> int:
    """Write one shard through a temp name (a killed run leaves no partial shard); returns bytes of text."""
    tmp = path.with_name(path.name + ".tmp")
    text_bytes = 0
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as f:
        for i in indices:
            doc = make_document(spec.seed, i, spec.source)
            text_bytes += len(str(doc["text"]).encode())
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    tmp.rename(path)
    return text_bytes


def ensure_corpus(spec: CorpusSpec, out: Path, processes: int) -> tuple[Path, bool]:
    """Generate the corpus under `out/<spec.dirname()>` unless a matching one exists.

    Returns (corpus root, whether it was reused). The manifest is written last, so its presence means the
    shards are complete.
    """
    root = out / spec.dirname()
    manifest = root / MANIFEST
    if manifest.exists() and json.loads(manifest.read_text()).get("spec") == asdict(spec):
        return root, True
    shard_dir = root / "documents" / spec.source
    shard_dir.mkdir(parents=True, exist_ok=True)
    ranges = shard_ranges(spec.docs, spec.shards)
    paths = [shard_dir / f"part-{k:04d}.jsonl.gz" for k in range(spec.shards)]
    with ProcessPoolExecutor(max_workers=max(1, processes)) as pool:
        sizes = list(pool.map(_write_shard, [spec] * spec.shards, paths, ranges))
    manifest.write_text(json.dumps({"spec": asdict(spec), "text_bytes": sum(sizes)}, indent=1) + "\n")
    return root, False


def iter_kinds(root: Path) -> Iterator[tuple[str, str]]:
    """(id, kind) for every document of a generated corpus, in shard order."""
    for path in sorted((root / "documents").glob("*/*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                yield doc["id"], doc.get("metadata", {}).get("kind", "?")
