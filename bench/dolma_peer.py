"""The peer for every Dolma conformance bench: Dolma 1.2.1's executable, and a corpus of real text.

Conformance must be judged on text neither tool wrote: generated pages follow our own templates, so they
miss the long lines, runs of short paragraphs and non-ASCII text that real documents have. `real_corpus`
therefore takes what Debian installs on this machine (package documentation, licences, man pages in
English and in a dozen other languages) and adds web-like pages assembled from those same paragraphs, with
contact details (emails, phone numbers, IP addresses), cookie/JavaScript boilerplate, and exact and near
duplicates, so that PII, C4, dedup and the mixer all have something to do. Everything is chosen by one
seeded `random.Random` over sorted file lists: the same seed on the same machine gives the same bytes.

    from dolma_peer import ensure_dolma, real_corpus
    corpus = real_corpus(Path("/tmp/c"), docs=300)      # /tmp/c/documents/<source>/<source>-0000.jsonl.gz
    dolma = ensure_dolma()                               # bench/out/dolma-venv/bin/dolma
"""

from __future__ import annotations

import gzip
import json
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from tag_runner import ensure_dolma as _ensure_dolma

BENCH_DIR = Path(__file__).resolve().parent
DOLMA_VENV = BENCH_DIR / "out" / "dolma-venv"

#: share of the corpus per source (the rest is web pages); documents per shard
SHARES = {"debian_docs": 0.30, "short_prose": 0.15, "licenses": 0.02, "manpages": 0.18, "manpages_i18n": 0.12}
SHARD_DOCS = 150
#: documents longer than this are cut at a line break: a few changelogs are megabytes
MAX_CHARS = 60_000
_DOC_SUFFIXES = (".txt", ".md", ".rst", "README", "copyright", "NEWS", "AUTHORS", "TODO", "changelog")
_I18N = ("de", "fr", "es", "it", "pl", "pt_BR", "ru", "uk", "ja", "zh_CN", "ko", "tr", "nl", "sv", "cs")
_ADDED = "2026-01-01T00:00:00.000Z"
_MARKER = ".real_corpus.json"


def ensure_dolma(venv: Path = DOLMA_VENV) -> Path:
    """The `dolma` executable of Dolma 1.2.1 in `venv` (installed there first when missing)."""
    return _ensure_dolma(venv)


def _read(path: Path) -> str | None:
    """The file's text (gunzipped), or None when it is binary, not UTF-8, empty or unreadable."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        return None
    if "\0" in text or not text.strip():
        return None
    if len(text) > MAX_CHARS:
        cut = text.rfind("\n", 0, MAX_CHARS)
        text = text[: cut if cut > 0 else MAX_CHARS]
    return text


_ROFF_FONT = re.compile(r"\\f(?:\[[A-Z]*\]|\(..|[A-Z0-9])")
_ROFF_ESCAPE = re.compile(r"\\[&/,:%|^]")


def roff_to_text(src: str) -> str:
    """A man page's words without roff markup: requests (`.TH`, `.PP`) become breaks, fonts are dropped.

    Crude on purpose (no groff run, so the corpus does not depend on its version); what remains is the
    page's prose and option lists, long and short lines alike, which is what the taggers should see.
    """
    out: list[str] = []
    for line in src.splitlines():
        if line.startswith(('.\\"', "'\\\"", '.\\"')):
            continue
        if line.startswith((".", "'")):
            request, _, rest = line[1:].partition(" ")
            if request in {"SH", "SS", "B", "I", "BR", "IR", "RB", "BI", "IB", "RI"} and rest:
                out.append(rest.strip('"'))
            elif request in {"PP", "P", "LP", "TP", "IP", "SH", "br", "sp"}:
                out.append("")
            continue
        line = _ROFF_FONT.sub("", line)
        line = _ROFF_ESCAPE.sub("", line).replace("\\-", "-").replace("\\(em", "—").replace("\\e", "\\")
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file()) if root.is_dir() else []


def _debian_docs() -> list[tuple[str, str]]:
    docs = []
    for path in _files(Path("/usr/share/doc"), "**/*"):
        name = path.name.removesuffix(".gz")
        if name.endswith(_DOC_SUFFIXES) and (text := _read(path)) is not None:
            docs.append((str(path), text))
    return docs


def _licenses() -> list[tuple[str, str]]:
    return [(str(p), t) for p in _files(Path("/usr/share/common-licenses"), "*") if (t := _read(p))]


def _manpages(langs: tuple[str, ...]) -> list[tuple[str, str]]:
    docs = []
    for lang in langs:
        root = Path("/usr/share/man") / lang if lang else Path("/usr/share/man")
        for path in _files(root, "man[1-8]/*.gz"):
            if (src := _read(path)) is not None and not src.startswith(".so "):
                text = roff_to_text(src)
                if len(text) > 200:
                    docs.append((str(path), text))
    return docs


def _paragraphs(docs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Blank-line-separated paragraphs of 200–3,000 characters: the short prose of the corpus."""
    out = []
    for path, text in docs:
        for i, para in enumerate(re.split(r"\n\s*\n", text)):
            if 200 <= len(para.strip()) <= 3000:
                out.append((f"{path}#{i}", para.strip() + "\n"))
    return out


_NAV = ["Home | About | Products | Contact", "Skip to main content", "Menu", "Search", "Log in"]
_BOILERPLATE = [
    "This site uses cookies to improve your experience.",
    "Please enable JavaScript to view the comments.",
    "By using this website you agree to our Terms of Use and Privacy Policy.",
    "© 2024 Example Networks. All rights reserved.",
    "Share this: Facebook Twitter Email",
]
_FIRST = ["anna", "jonas", "maria", "li.wei", "sven", "claire", "omar", "noor", "ines", "tomas"]
_DOMAINS = ["example.com", "mail.example.org", "uni-example.de", "example.co.uk", "müller-example.de"]


def _contact(rng: random.Random) -> str:
    """A contact block in the forms real pages use: mailto text, US and international phones, a server IP."""
    email = f"{rng.choice(_FIRST)}@{rng.choice(_DOMAINS)}"
    phone = rng.choice(
        [
            f"({rng.randint(200, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
            f"+44 20 {rng.randint(7000, 7999)} {rng.randint(0, 9999):04d}",
            f"{rng.randint(200, 989)}.{rng.randint(200, 999)}.{rng.randint(0, 9999):04d}",
            f"+49 30 {rng.randint(1000000, 9999999)}",
        ]
    )
    ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    lines = [
        f"Contact: {email}",
        f"Write to us at <{email}> or call {phone}.",
        f"Our mirror runs at {ip} (port 8080); report abuse to abuse@{rng.choice(_DOMAINS)}.",
    ]
    return "\n".join(rng.sample(lines, rng.randint(1, 3)))


def _web_page(rng: random.Random, paragraphs: list[tuple[str, str]]) -> str:
    """A page as a crawler extracts it: navigation lines, real paragraphs, contact block, boilerplate."""
    parts = rng.sample(_NAV, rng.randint(0, 3))
    title = rng.choice(paragraphs)[1].split("\n", 1)[0][:80]
    parts.append(title)
    parts += [p for _, p in rng.sample(paragraphs, rng.randint(1, 4))]
    if rng.random() < 0.7:
        parts.append(_contact(rng))
    parts += rng.sample(_BOILERPLATE, rng.randint(0, 3))
    if rng.random() < 0.05:
        parts.append("Lorem ipsum dolor sit amet, consectetur adipiscing elit.")
    if rng.random() < 0.1:
        parts.append("var config = { theme: 'dark' };")
    return "\n".join(p.rstrip("\n") for p in parts) + rng.choice(["", "\n"])


def _near_duplicate(rng: random.Random, text: str) -> str:
    """`text` with one line changed or dropped: what a re-crawled page looks like."""
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    if rng.random() < 0.5 and len(lines) > 2:
        del lines[i]
    else:
        lines[i] = lines[i] + " (updated)"
    return "\n".join(lines)


def _pick(rng: random.Random, pool: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    if not pool or n <= 0:
        return []
    return rng.sample(pool, n) if n <= len(pool) else [rng.choice(pool) for _ in range(n)]


def _sources(docs: int, seed: int) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    rng = random.Random(seed)
    debian = _debian_docs()
    pools = {
        "debian_docs": debian,
        "short_prose": _paragraphs(debian),
        "licenses": _licenses(),
        "manpages": _manpages(("",)),
        "manpages_i18n": _manpages(_I18N),
    }
    if not debian:
        raise SystemExit("no documentation under /usr/share/doc: install some Debian *-doc packages")
    taken = 0
    for source, share in SHARES.items():
        n = round(docs * share)
        chosen = _pick(rng, pools[source], n)
        taken += len(chosen)
        yield source, chosen
    # web pages: the rest, a tenth of them exact and a tenth near duplicates of earlier pages
    n_web = max(docs - taken, 0)
    paragraphs = pools["short_prose"] or [(p, t) for p, t in debian]
    web: list[tuple[str, str]] = []
    for i in range(n_web):
        roll = rng.random()
        if web and roll < 0.1:
            web.append((f"copy of web-{rng.randrange(len(web))}", web[rng.randrange(len(web))][1]))
        elif web and roll < 0.2:
            web.append((f"near copy {i}", _near_duplicate(rng, web[rng.randrange(len(web))][1])))
        else:
            web.append((f"page {i}", _web_page(rng, paragraphs)))
    yield "web", web


def real_corpus(dest: Path, docs: int = 1454, seed: int = 0) -> Path:
    """Write `docs` documents of real text as `dest/documents/<source>/<source>-NNNN.jsonl.gz`; return `dest`.

    Reused when `dest` already holds the corpus of the same size and seed (a marker file records them);
    otherwise `dest/documents` is rebuilt. Shards are gzip with a zero mtime, so the bytes are reproducible.
    """
    dest = Path(dest)
    marker = dest / _MARKER
    spec = {"docs": docs, "seed": seed, "version": 1}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return dest
    shutil.rmtree(dest / "documents", ignore_errors=True)
    for source, chosen in _sources(docs, seed):
        folder = dest / "documents" / source
        folder.mkdir(parents=True, exist_ok=True)
        for shard, first in enumerate(range(0, len(chosen), SHARD_DOCS)):
            path = folder / f"{source}-{shard:04d}.jsonl.gz"
            with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                for i, (origin, text) in enumerate(chosen[first : first + SHARD_DOCS], start=first):
                    row = {
                        "id": f"{source}-{i:05d}",
                        "text": text,
                        "source": source,
                        "added": _ADDED,
                        "created": _ADDED,
                        "metadata": {"origin": origin},
                    }
                    gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    marker.write_text(json.dumps(spec) + "\n")
    return dest


def corpus_shards(corpus: Path) -> list[str]:
    """Every document shard of a corpus, sorted, as absolute paths (what both tools are given)."""
    return sorted(str(p.resolve()) for p in (Path(corpus) / "documents").glob("*/*.jsonl.gz"))


if __name__ == "__main__":
    import sys

    out = real_corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else BENCH_DIR / "out" / "real-corpus")
    for shard in corpus_shards(out):
        print(shard)
