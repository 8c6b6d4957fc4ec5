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
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

#: bump when the generated text changes, so a cached corpus from an older generator is rebuilt
GENERATOR_VERSION = 2
MANIFEST = "manifest.json"

# ------------------------------------------------------------------------------------------ vocabulary


def _words(text: str) -> list[str]:
    """Word lists are written as text blocks: easier to read and extend than 400 quoted literals."""
    return text.split()


_NOUNS = _words(
    """
time year people way day man woman child world life hand part place case week company system program
question work government number night point home water room mother area money story fact month lot right
study book eye job word business issue side kind head house service friend father power hour game line end
member law car city community name president team minute idea kid body information back parent face level
office door health person art war history party result change morning reason research girl guy moment air
teacher force education foot boy age policy process music market sense nation plan college interest death
experience effect class control field development role effort rate heart drug show leader light voice wife
police mind price report decision son view relationship town road arm difference value building action model
season society tax director position player record paper space ground form event official matter center
couple site project activity star table need court oil situation cost industry figure street image phone
data picture practice piece land product doctor wall patient worker news test movie north love support
technology step baby computer type attention film tree source organization hair window evidence population
site river garden bridge kitchen village island forest valley harbor library museum station engine signal
network journal garment recipe climate harvest council budget contract factory tunnel circuit ceremony
festival mountain desert ocean planet theory method sample measure feature pattern surface volume
"""
)

_VERBS = _words(
    """
built changed found made kept left brought began seemed helped showed heard played moved lived believed
held wrote provided sat stood lost paid met included continued set learned led understood watched followed
stopped created spoke read allowed added spent grew opened walked offered remembered considered appeared
bought waited served sent expected stayed fell reached killed remained suggested raised passed sold required
reported decided pulled described explained developed carried broke received agreed supported hit produced
covered caught drew chose designed measured visited planned repaired collected reviewed improved launched
"""
)

_ADJECTIVES = _words(
    """
other new good high old great big small large national young different long little important political bad
white real best right social only public sure low early able human local late hard major better economic
strong possible whole free military true federal international full special easy clear recent certain
personal open red difficult available likely short single medical current wrong private past foreign fine
common poor natural significant similar hot dead central happy serious ready simple left physical general
environmental financial blue democratic dark various entire close legal religious cold final main green
nice huge popular traditional cultural quiet narrow ancient modern rural urban careful bright gentle
"""
)

_ADVERBS = _words(
    "quickly slowly recently finally often rarely usually clearly nearly simply quietly carefully"
)
_DETERMINERS = _words("the the the the a a this that their its our each every some another one")
_PREPOSITIONS = _words("of of of in in to for with on at from by about into through after over between")
_CONJUNCTIONS = ["and", "but", "because", "while", "although", "so", "and then", "which meant that"]
_SUBJECT_PRONOUNS = ["they", "we", "she", "he", "it", "people", "most of them", "the others"]

_LOREM = _words(
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut "
    "aliquip ex "
    "ea commodo consequat duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
    "fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt in culpa qui officia deserunt"
)
_NAV_WORDS = _words(
    "Home About Contact Blog News Shop Products Services Login Register Search Menu Help FAQ Careers"
)
_BOILERPLATE = [
    "Please enable JavaScript in your browser to view the comments on this page.",
    "You need to have JavaScript enabled in order to access this site.",
    "This website uses cookies to ensure you get the best experience on our website.",
    "By continuing to browse the site you agree to our use of cookies and our Privacy Policy.",
    "Read our Cookie Policy and Terms of Use before you post a comment here.",
    "JavaScript is disabled, so some parts of the page may not work as expected.",
]
_CODE = [
    "function init(config) {",
    "  const items = config.items || [];",
    "  for (let i = 0; i < items.length; i++) { render(items[i]); }",
    "}",
    "if (window.dataLayer) { window.dataLayer.push({event: 'view'}); }",
    "def handler(event): return {'status': 200, 'body': event}",
    ".header { margin: 0 auto; padding: 12px; }",
]
_TLDS = ["com", "org", "net", "io", "edu", "co.uk"]


# ------------------------------------------------------------------------------------------ text pieces


def _noun_phrase(rng: random.Random) -> str:
    words = [rng.choice(_DETERMINERS)]
    if rng.random() < 0.45:
        words.append(rng.choice(_ADJECTIVES))
    words.append(rng.choice(_NOUNS))
    if rng.random() < 0.25:
        words += [rng.choice(_PREPOSITIONS), rng.choice(_DETERMINERS), rng.choice(_NOUNS)]
    return " ".join(words)


def sentence(rng: random.Random) -> str:
    """One English-like sentence of ~6-35 words: a clause, optional phrases and a second clause."""
    subject = _noun_phrase(rng) if rng.random() < 0.7 else rng.choice(_SUBJECT_PRONOUNS)
    parts = [subject]
    if rng.random() < 0.15:
        parts.append(rng.choice(_ADVERBS))
    parts += [rng.choice(_VERBS), _noun_phrase(rng)]
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        parts += [rng.choice(_PREPOSITIONS), _noun_phrase(rng)]
    if rng.random() < 0.1:
        parts += ["in", str(rng.randint(1890, 2024))]
    if rng.random() < 0.4:
        parts[-1] += ","
        subject2 = rng.choice(_SUBJECT_PRONOUNS) if rng.random() < 0.5 else _noun_phrase(rng)
        parts += [rng.choice(_CONJUNCTIONS), subject2, rng.choice(_VERBS), _noun_phrase(rng)]
        if rng.random() < 0.3:
            parts += ["with", _noun_phrase(rng)]
    text = " ".join(parts)
    end = rng.choices((".", "?", "!", '."'), weights=(90, 4, 3, 3))[0]
    text = text[0].upper() + text[1:]
    if end == '."':
        text = '"' + text  # a quoted sentence: the line then ends in '"', C4's fourth terminal mark
    return text + end


def paragraph(rng: random.Random, sentences: tuple[int, int] = (2, 7)) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(*sentences)))


def title(rng: random.Random) -> str:
    """A headline: a few capitalised words and no terminal punctuation (C4 drops it, Gopher keeps it)."""
    words = [rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice(_PREPOSITIONS), rng.choice(_NOUNS)]
    return " ".join(w.capitalize() for w in words)


def prose_paragraphs(rng: random.Random, target_chars: int) -> list[str]:
    out: list[str] = []
    size = 0
    while size < target_chars:
        p = paragraph(rng)
        out.append(p)
        size += len(p) + 1
    return out


def _target(rng: random.Random) -> int:
    """Text size of a normal document: 2-5 KB."""
    return rng.randint(2000, 5000)


def _email(rng: random.Random) -> str:
    user = f"{rng.choice(_NOUNS)}.{rng.choice(_NOUNS)}{rng.randint(1, 99)}"
    return f"{user}@{rng.choice(_NOUNS)}.{rng.choice(_TLDS)}"


def _phone(rng: random.Random) -> str:
    a, b, c = rng.randint(200, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice((f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"+1 {a} {b} {c:04d}"))


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


# ------------------------------------------------------------------------------------------ document kinds
# Each builder returns the text. Severity ranges straddle the Gopher/C4 thresholds on purpose.


def _prose(rng: random.Random) -> str:
    paras = prose_paragraphs(rng, _target(rng))
    if rng.random() < 0.6:
        paras.insert(0, title(rng))
    return "\n".join(paras)


def _prose_blank_lines(rng: random.Random) -> str:
    """Paragraphs separated by blank lines, as in Wikipedia or books dumps."""
    return "\n\n".join([title(rng), *prose_paragraphs(rng, _target(rng))])


def _short(rng: random.Random) -> str:
    return paragraph(rng, (1, 3)) if rng.random() < 0.8 else title(rng)


def _long(rng: random.Random) -> str:
    """Over Gopher's 100,000-word maximum (~700 KB)."""
    return "\n".join(prose_paragraphs(rng, rng.randint(720_000, 800_000)))


def _bullets(rng: random.Random) -> str:
    mark = rng.choice(("-", "*", "•", "- ", "* ", "• "))
    items = [
        f"{mark}{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {rng.choice(_PREPOSITIONS)} "
        f"{rng.choice(_DETERMINERS)} {rng.choice(_NOUNS)}"
        for _ in range(rng.randint(12, 40))
    ]
    if rng.random() < 0.5:
        items = [i + "." for i in items]
    prose = [paragraph(rng) for _ in range(rng.choice((0, 1, 2, 3, 5)))]
    lines = [title(rng), *prose[: len(prose) // 2], *items, *prose[len(prose) // 2 :]]
    return "\n".join(lines)


def _ellipsis(rng: random.Random) -> str:
    mark = rng.choice(("…", "...", " …", "..."))
    teasers = [
        " ".join(sentence(rng)[:-1].split()[: rng.randint(6, 14)]) + mark for _ in range(rng.randint(3, 20))
    ]
    lines = [*teasers, *(paragraph(rng) for _ in range(rng.randint(3, 12)))]
    rng.shuffle(lines)
    return "\n".join(lines)


def _hashtags(rng: random.Random) -> str:
    text = "\n".join(prose_paragraphs(rng, rng.randint(1500, 3500)))
    words = text.split(" ")
    share = rng.uniform(0.02, 0.3)
    for _ in range(int(len(words) * share)):
        words.insert(
            rng.randrange(len(words)), "#" + rng.choice(_NOUNS) + rng.choice(("", "life", "2024", ""))
        )
    return " ".join(words)


def _numeric(rng: random.Random) -> str:
    rows = []
    for _ in range(rng.randint(10, 60)):
        cells = [
            str(rng.randint(1990, 2024)),
            f"{rng.randint(0, 99_999):,}",
            f"{rng.uniform(0, 100):.1f}%",
            f"{rng.uniform(0, 9):.2f}",
            rng.choice(("|", "-", "$" + str(rng.randint(1, 999)))),
        ]
        if rng.random() < 0.3:
            cells.append(rng.choice(_NOUNS))
        rows.append(" ".join(cells))
    prose = prose_paragraphs(rng, rng.randint(200, 2500))
    return "\n".join([title(rng), *prose[:1], *rows, *prose[1:]])


def _dup_lines(rng: random.Random) -> str:
    paras = prose_paragraphs(rng, _target(rng))
    repeated = [
        rng.choice(("Share this article", "Read more", "Advertisement", "Reply")),
        paragraph(rng, (1, 2)),
    ]
    lines: list[str] = []
    for p in paras:
        lines.append(p)
        if rng.random() < rng.uniform(0.1, 0.9):
            lines.append(rng.choice(repeated))
    return "\n".join(lines)


def _dup_paragraphs(rng: random.Random) -> str:
    """Blank-line separated multi-line paragraphs, some repeated (Gopher's paragraph rules)."""

    def block() -> str:
        return "\n".join(paragraph(rng, (1, 3)) for _ in range(rng.randint(2, 4)))

    blocks = [block() for _ in range(rng.randint(4, 10))]
    for _ in range(rng.randint(1, 4)):
        blocks.insert(rng.randrange(len(blocks) + 1), rng.choice(blocks))
    return "\n\n".join(blocks)


def _repeated_ngrams(rng: random.Random) -> str:
    """A phrase repeated inside paragraphs (never a whole line, never at a line's end): the n-gram rules.

    The phrase covers ~5-50% of the words, so the n-gram measures land on both sides of their thresholds.
    """
    paras = [p.split(" ") for p in prose_paragraphs(rng, rng.randint(1500, 4000))]
    phrase = " ".join(sentence(rng)[:-1].split()[: rng.randint(2, 12)]).lower()
    total = sum(map(len, paras))
    copies = rng.randint(2, max(3, total // (len(phrase.split()) * rng.randint(2, 20))))
    for _ in range(copies):
        words = rng.choice(paras)
        words.insert(rng.randrange(len(words)), phrase)  # before the last word: the line keeps its "."
    return "\n".join(" ".join(words) for words in paras)


def _no_punct(rng: random.Random) -> str:
    """Navigation bars and captions without terminal punctuation; some pages have nothing else."""
    nav = [" ".join(rng.sample(_NAV_WORDS, rng.randint(2, 7))) for _ in range(rng.randint(3, 25))]
    captions = [" ".join(sentence(rng)[:-1].split()[: rng.randint(3, 15)]) for _ in range(rng.randint(3, 15))]
    prose = [paragraph(rng) for _ in range(rng.choice((0, 0, 1, 2, 4)))]
    lines = [*nav, *captions, *prose]
    rng.shuffle(lines)
    return "\n".join(lines)


def _boilerplate(rng: random.Random) -> str:
    paras = prose_paragraphs(rng, rng.randint(300, 4000))
    for _ in range(rng.randint(1, 4)):
        paras.insert(rng.randrange(len(paras) + 1), rng.choice(_BOILERPLATE))
    return "\n".join(paras)


def _lorem(rng: random.Random) -> str:
    lorem = [
        " ".join(rng.choices(_LOREM, k=rng.randint(15, 60))).capitalize() + "."
        for _ in range(rng.randint(1, 5))
    ]
    if rng.random() < 0.5:
        lorem[0] = "Lorem ipsum " + lorem[0]
    paras = prose_paragraphs(rng, rng.randint(0, 3000))
    return "\n".join([*lorem, *paras] if rng.random() < 0.5 else [*paras, *lorem])


def _code(rng: random.Random) -> str:
    paras = prose_paragraphs(rng, rng.randint(500, 3500))
    snippet = rng.sample(_CODE, rng.randint(1, len(_CODE)))
    at = rng.randrange(len(paras) + 1)
    return "\n".join([*paras[:at], *snippet, *paras[at:]])


def _pii(rng: random.Random) -> str:
    sentences = [sentence(rng) for _ in range(rng.randint(12, 40))]
    makers = (
        lambda: f"Contact {_email(rng)} for details.",
        lambda: f"Call us at {_phone(rng)} today.",
        lambda: f"The server at {_ip(rng)} answered the request.",
    )
    for _ in range(rng.randint(1, 8)):
        sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(makers)())
    lines, i = [], 0
    while i < len(sentences):
        step = rng.randint(2, 6)
        lines.append(" ".join(sentences[i : i + step]))
        i += step
    return "\n".join(lines)


def _no_stopwords(rng: random.Random) -> str:
    """Keyword salad (SEO pages, tag clouds): few or no stop words, or only capitalised ones."""
    lines = []
    stop_word_rate = rng.choice((0.0, 0.1, 0.3))
    for _ in range(rng.randint(6, 30)):
        words = [rng.choice(_ADJECTIVES + _NOUNS).capitalize() for _ in range(rng.randint(4, 12))]
        if rng.random() < stop_word_rate:
            words.insert(rng.randrange(len(words)), rng.choice(("The", "And", "With", "To", "Of")))
        lines.append(" ".join(words))
    if rng.random() < 0.3:
        lines.append(sentence(rng))
    return "\n".join(lines)


def _long_words(rng: random.Random) -> str:
    """URL lists with some prose: long tokens raise the mean word length more than the median."""
    urls = [
        f"https://www.{rng.choice(_NOUNS)}{rng.choice(_NOUNS)}.{rng.choice(_TLDS)}/"
        f"{rng.choice(_NOUNS)}-{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}/{rng.randint(1000, 99999)}"
        for _ in range(rng.randint(10, 80))
    ]
    prose = prose_paragraphs(rng, rng.randint(500, 3000))
    lines = [*prose, *(" ".join(urls[i : i + 4]) for i in range(0, len(urls), 4))]
    rng.shuffle(lines)
    return "\n".join(lines)


#: kind -> (builder, weight); weights are relative shares of the corpus
KINDS: dict[str, tuple[Callable[[random.Random], str], float]] = {
    "prose": (_prose, 0.50),
    "prose_blank_lines": (_prose_blank_lines, 0.05),
    "short": (_short, 0.03),
    "long": (_long, 0.0004),
    "bullets": (_bullets, 0.04),
    "ellipsis": (_ellipsis, 0.04),
    "hashtags": (_hashtags, 0.03),
    "numeric": (_numeric, 0.03),
    "dup_lines": (_dup_lines, 0.04),
    "dup_paragraphs": (_dup_paragraphs, 0.02),
    "repeated_ngrams": (_repeated_ngrams, 0.04),
    "no_punct": (_no_punct, 0.03),
    "boilerplate": (_boilerplate, 0.04),
    "lorem": (_lorem, 0.02),
    "code": (_code, 0.03),
    "pii": (_pii, 0.04),
    "no_stopwords": (_no_stopwords, 0.03),
    "long_words": (_long_words, 0.02),
}
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
