"""The demo corpus: a deterministic generator of Dolma-layout shards that exercise every stage of a pipeline.

`dolma-kit demo-corpus OUT` (and the first stage of `pipelines/demo.yaml`) writes
`OUT/documents/<source>/part-NNNN.jsonl.gz` for four sources, plus a small evaluation set and a manifest:

- `web`: pages in seven languages (`demo_text.py`) from sites under RFC 2606's `.example` domain, some wrapped
  in navigation and cookie boilerplate (C4 drops those lines), some pure boilerplate or low quality (keyword
  spam, lorem ipsum, bullet lists, one-liners: Gopher and C4 fail them);
- `wiki`: encyclopedia-like articles (a title line, then paragraphs), a few re-published as revisions;
- `forum`: posts with greetings and sign-offs, cross-posts and "+1" replies;
- `code`: Python and JavaScript files (no natural language ID; C4's curly-brace rule fires on JavaScript).

Planted on purpose, and recorded in each document's `metadata.planted` (with `duplicate_of` for copies):
exact duplicates (same text; some with the same URL), near duplicates (a few words changed and a line
added: Jaccard of 5-gram shingles stays above 0.7), PII from documentation ranges only (emails at
example.com/.org/.net, phone numbers 555-01xx, IPv4 from RFC 5737, IPv6 from RFC 3849), and leaks of the
evaluation set (`OUT/eval/heldout.jsonl`, for `decontaminate`).

Everything derives from one `random.Random(seed)` and fixed dates, and gzip headers carry no timestamp, so
the same settings give byte-identical files on any machine.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass
from typing import Any

from rich.text import Text

from dolma_kit import storage
from dolma_kit.demo.text import (
    BOILERPLATE_LINES,
    CODE_COMMENTS,
    CODE_WORDS,
    LANGUAGE_WEIGHTS,
    LANGUAGES,
    LOREM,
    SPAM_WORDS,
    WEB_SITES,
)
from dolma_kit.documents import Document, DocumentWriter, JsonlWriter
from dolma_kit.errors import DolmaKitError
from dolma_kit.stages import Outcome, Stage

MANIFEST_NAME = "demo_corpus.json"
EVAL_PATH = "eval/heldout.jsonl"
SOURCES = {"web": 0.45, "wiki": 0.2, "forum": 0.2, "code": 0.15}
ADDED = "2026-01-01T00:00:00Z"
# the kinds a document can be planted as, per source, with their probabilities (the rest is `normal`)
PLANTS = {
    "web": {"boilerplate": 0.10, "boilerplate_only": 0.03, "low_quality": 0.08, "exact_duplicate": 0.05,
            "near_duplicate": 0.05, "leak": 0.01},
    "wiki": {"exact_duplicate": 0.04, "near_duplicate": 0.06, "leak": 0.01},
    "forum": {"low_quality": 0.08, "exact_duplicate": 0.06, "near_duplicate": 0.05, "leak": 0.01},
    "code": {"exact_duplicate": 0.10, "near_duplicate": 0.05},
}  # fmt: skip
PII_RATE = {"web": 0.15, "wiki": 0.02, "forum": 0.20, "code": 0.08}
EVAL_PASSAGES = 40


@dataclass(kw_only=True)
class DemoCorpusConfig:
    """What `dolma-kit demo-corpus` writes; the pipeline's `demo-corpus` stage fills the same dataclass."""

    output: str
    """Corpus root: documents go to `<output>/documents/<source>/part-NNNN.jsonl.gz`."""
    docs: int = 3000
    """Documents in all (planted copies included); about 1.4 KB of text each."""
    seed: int = 0
    """Seeds every choice: the same seed and size give byte-identical shards."""
    shard_docs: int = 400
    """Documents per shard (several shards per source, so stages run in parallel)."""

    def __post_init__(self) -> None:
        if self.docs < 40:
            raise DolmaKitError(f"--docs {self.docs}: the demo needs at least 40 documents (10 per source)")
        if self.shard_docs < 1:
            raise DolmaKitError("shard_docs must be at least 1")


# --------------------------------------------------------------------------------------------- text


def _fill(rng: random.Random, lang: str, template: str) -> str:
    words = LANGUAGES[lang]
    return template.format(
        name=rng.choice(words["name"]),
        place=rng.choice(words["place"]),
        thing=rng.choice(words["thing"]),
        adj=rng.choice(words["adj"]),
        num=rng.randrange(3, 5000),
        year=rng.randrange(1850, 2025),
    )


def _paragraphs(rng: random.Random, lang: str, n_par: tuple[int, int], n_sent: tuple[int, int]) -> list[str]:
    """Paragraphs of template sentences; templates are not repeated within a document (Gopher's repetition
    rules would otherwise fail long documents)."""
    templates = rng.sample(LANGUAGES[lang]["templates"], len(LANGUAGES[lang]["templates"]))
    out, used = [], 0
    for _ in range(rng.randint(*n_par)):
        count = rng.randint(*n_sent)
        if used + count > len(templates):
            break
        out.append(" ".join(_fill(rng, lang, t) for t in templates[used : used + count]))
        used += count
    return out


def _pii(rng: random.Random) -> str:
    """A contact line with documentation-only addresses (never a real person, host or number)."""
    user = rng.choice(["info", "office", "anna.clarke", "support", "j.weber", "team", "sales"])
    email = f"{user}@{rng.choice(['example.com', 'example.org', 'example.net'])}"
    phone = rng.choice([f"(555) 01{rng.randrange(10)}-{rng.randrange(1000, 9999)}",
                        f"+1 202 555 01{rng.randrange(10, 99)}"])  # fmt: skip
    ip = rng.choice([f"192.0.2.{rng.randrange(1, 255)}", f"198.51.100.{rng.randrange(1, 255)}",
                     f"203.0.113.{rng.randrange(1, 255)}", f"2001:db8::{rng.randrange(1, 4095):x}"])  # fmt: skip
    return rng.choice([
        f"Contact: {email} or {phone}.",
        f"Write to {email} if you have questions.",
        f"Our server moved to {ip}; mail {email} if something breaks.",
        f"Call {phone} between nine and noon.",
    ])  # fmt: skip


def _low_quality(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:  # keyword spam: Gopher's repetition rules
        return "\n".join(
            " ".join(rng.choice(SPAM_WORDS) for _ in range(12)) for _ in range(rng.randint(3, 8))
        )
    if kind == 1:  # lorem ipsum: C4
        return LOREM + "\n" + LOREM
    if kind == 2:  # a bullet list: Gopher's bullet rule
        return "\n".join(
            f"• {rng.choice(SPAM_WORDS)} {rng.choice(CODE_WORDS)}" for _ in range(rng.randint(5, 12))
        )
    return rng.choice(["Click here to continue…", "Page not found.", "Loading…", "+1", "me too"])


def _code(rng: random.Random) -> tuple[str, str]:
    """(text, file suffix) of a small Python or JavaScript file."""
    python = rng.random() < 0.6
    parts = []
    for _ in range(rng.randint(3, 7)):
        name = "_".join(rng.sample(CODE_WORDS, 2))
        a, b, v = rng.sample(CODE_WORDS, 3)
        n, m = rng.randrange(2, 99), rng.randrange(2, 64)
        comment = rng.choice(CODE_COMMENTS)
        if python:
            parts.append(f'def {name}({a}, {b}):\n    """{comment}"""\n    {v} = {a} * {n} + {b}\n'
                         f"    for i in range({m}):\n        {v} += i\n    return {v}\n")  # fmt: skip
        else:
            camel = name.split("_")[0] + name.split("_")[1].title()
            parts.append(f"// {comment}\nfunction {camel}({a}, {b}) {{\n  let {v} = {a} * {n} + {b};\n"
                         f"  for (let i = 0; i < {m}; i++) {{\n    {v} += i;\n  }}\n  return {v};\n}}\n")  # fmt: skip
    return "\n".join(parts), ".py" if python else ".js"


def _near_copy(rng: random.Random, text: str) -> str:
    """A few words replaced and a line appended: about 90% of the 5-gram shingles survive."""
    lines = text.split("\n")
    words = lines[-1].split(" ")
    for _ in range(2):
        i = rng.randrange(len(words))
        words[i] = rng.choice(["really", "also", "still", "only", "even"])
    lines[-1] = " ".join(words)
    return "\n".join([*lines, f"Updated on 2024-0{rng.randrange(1, 9)}-1{rng.randrange(9)}."])


# --------------------------------------------------------------------------------------------- documents


def _new_document(rng: random.Random, source: str, kind: str, index: int) -> dict[str, Any]:
    lang = "code" if source == "code" else rng.choices(*zip(*LANGUAGE_WEIGHTS.items(), strict=True))[0]
    meta: dict[str, Any] = {"language": lang, "planted": kind}
    if source == "code":
        text, suffix = _code(rng)
        repo = "-".join(rng.sample(CODE_WORDS, 2))
        meta["url"] = f"https://git.example/demo/{repo}/blob/main/{rng.choice(CODE_WORDS)}{index}{suffix}"
    elif source == "wiki":
        title = _fill(rng, lang, rng.choice(LANGUAGES[lang]["title"]))
        text = "\n".join([title, *_paragraphs(rng, lang, (3, 5), (2, 3))])
        meta["url"] = f"https://encyclopedia.example/{lang}/{index}"
    elif source == "forum":
        words = LANGUAGES[lang]
        body = _paragraphs(rng, lang, (1, 3), (2, 4))
        text = "\n".join([rng.choice(words["greeting"]), *body, rng.choice(words["signoff"])])
        text += "\n" + rng.choice(words["name"]).split()[0]
        meta["url"] = f"https://forum.example/t/{index}"
    else:
        text = "\n".join(_paragraphs(rng, lang, (3, 6), (2, 3)))
        meta["url"] = f"https://{rng.choice(WEB_SITES)}.example/{lang}/page-{index}"
    if kind == "low_quality":
        text = _low_quality(rng)
        meta["language"] = "unknown"
    elif kind == "boilerplate":
        top, bottom = rng.sample(BOILERPLATE_LINES, 2), rng.sample(BOILERPLATE_LINES, 2)
        text = "\n".join([*top, text, *bottom])
    elif kind == "boilerplate_only":
        text = "\n".join(rng.sample(BOILERPLATE_LINES, 5))
        meta["language"] = "en"
    if kind in ("normal", "boilerplate") and rng.random() < PII_RATE[source]:
        lines = text.split("\n")
        lines.insert(rng.randrange(1, len(lines) + 1), _pii(rng))
        text = "\n".join(lines)
        meta["planted"] = kind + "+pii"
    return {"text": text, "metadata": meta}


def _eval_passages(rng: random.Random) -> list[str]:
    """Held-out evaluation texts: quiz items of 24 words drawn from every word list, so no 13-gram of them
    occurs in the corpus by chance (template sentences share long runs) except where a `leak` plants one."""
    pool = [w for lang in LANGUAGES.values() for k in ("thing", "adj", "place") for w in lang[k]] + CODE_WORDS
    return [
        f"Quiz item {i}: " + " ".join(rng.choice(pool) for _ in range(24)) + "?" for i in range(EVAL_PASSAGES)
    ]


def generate(config: DemoCorpusConfig) -> dict[str, list[Document]]:
    """The corpus in memory, by source (a few MB at the default size)."""
    rng = random.Random(config.seed)
    evals = _eval_passages(rng)
    counts = {s: max(10, round(config.docs * share)) for s, share in SOURCES.items()}
    counts["web"] += config.docs - sum(counts.values())
    corpus: dict[str, list[Document]] = {}
    for source, n in counts.items():
        docs: list[Document] = []
        plants = PLANTS[source]
        for i in range(n):
            roll, kind = rng.random(), "normal"
            for name, p in plants.items():
                if roll < p:
                    kind = name
                    break
                roll -= p
            copyable = [d for d in docs if d.metadata["planted"].startswith("normal")]
            if kind in ("exact_duplicate", "near_duplicate") and len(copyable) < 5:
                kind = "normal"
            doc_id = f"{source}-{i:05d}"
            if kind in ("exact_duplicate", "near_duplicate"):
                original = rng.choice(copyable)
                text = original.text if kind == "exact_duplicate" else _near_copy(rng, original.text)
                meta = {**original.metadata, "planted": kind, "duplicate_of": original.id}
                if source != "web" or rng.random() < 0.5:  # half the web copies are mirrors: another URL
                    meta["url"] = original.metadata["url"].rsplit("/", 1)[0] + f"/copy-{i}"
            else:
                made = _new_document(rng, source, kind, i)
                text, meta = made["text"], made["metadata"]
                if kind == "leak":
                    text += "\n" + rng.choice(evals)
            created = (
                f"20{rng.randrange(15, 25)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T00:00:00Z"
            )
            docs.append(
                Document(id=doc_id, text=text, source=source, added=ADDED, created=created, metadata=meta)
            )
        corpus[source] = docs
    corpus["_eval"] = [Document(id=f"eval-{i:03d}", text=t, source="eval") for i, t in enumerate(evals)]
    return corpus


def write_corpus(config: DemoCorpusConfig) -> dict[str, Any]:
    """Generate and write the shards, the evaluation set and `demo_corpus.json` (written last: its presence
    means the corpus is complete). Returns the manifest."""
    corpus = generate(config)
    evals = corpus.pop("_eval")
    manifest: dict[str, Any] = {"config": asdict(config), "sources": {}, "shards": [], "planted": {}}
    for source, docs in corpus.items():
        manifest["sources"][source] = {
            "documents": len(docs),
            "bytes": sum(len(d.text.encode()) for d in docs),
        }
        for start in range(0, len(docs), config.shard_docs):
            rel = f"documents/{source}/part-{start // config.shard_docs:04d}.jsonl.gz"
            with DocumentWriter(storage.join(config.output, rel)) as out:
                for doc in docs[start : start + config.shard_docs]:
                    out.write(doc)
            manifest["shards"].append(rel)
        for doc in docs:
            kind = doc.metadata["planted"]
            manifest["planted"][kind] = manifest["planted"].get(kind, 0) + 1
    with JsonlWriter(storage.join(config.output, EVAL_PATH)) as out:
        for doc in evals:
            out.write({"id": doc.id, "text": doc.text})
    _remove_stale_shards(config.output, set(manifest["shards"]))
    manifest["eval"] = EVAL_PATH
    manifest["documents"] = sum(s["documents"] for s in manifest["sources"].values())
    storage.write_text(storage.join(config.output, MANIFEST_NAME), json.dumps(manifest, indent=2) + "\n")
    return manifest


def _remove_stale_shards(output: str, written: set[str]) -> None:
    """A smaller corpus written over a larger one leaves no extra shards behind (stages glob the folder)."""
    if storage.is_remote(output):
        return
    for source in SOURCES:
        folder = os.path.join(output, "documents", source)
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if name.startswith("part-") and f"documents/{source}/{name}" not in written:
                os.remove(os.path.join(folder, name))


# --------------------------------------------------------------------------------------------- stage


def _outcome(config: DemoCorpusConfig, manifest: dict[str, Any]) -> Outcome:
    n = manifest["documents"]
    extra = {"bytes": sum(s["bytes"] for s in manifest["sources"].values()), "planted": manifest["planted"]}
    return Outcome({"documents_in": n, "kept": n, "removed": 0, "rejected": 0, "removed_by": {}}, extra)


def _render(config: DemoCorpusConfig, manifest: dict[str, Any]) -> list[Any]:
    planted = ", ".join(f"{k}: {v:,}" for k, v in sorted(manifest["planted"].items()))
    return [
        Text(
            f"demo corpus: {manifest['documents']:,} documents in {len(manifest['shards'])} shards → "
            f"{config.output}/documents\nplanted: {planted}\nevaluation set: {config.output}/{manifest['eval']}"
        )
    ]


STAGE = Stage(
    name="demo-corpus",
    config=DemoCorpusConfig,
    run=write_corpus,
    outcome=_outcome,
    render=_render,
    proofs=lambda config: [storage.join(config.output, MANIFEST_NAME)],
    defaults=lambda context: {"output": context.work_dir},
)
