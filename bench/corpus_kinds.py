"""The document kinds of bench/corpus.py: prose, and each fault a Gopher or C4 rule looks for.

`KINDS` maps every kind to the builder of its text and its share of the corpus. A fault's severity is drawn
from a range that straddles the paper's threshold, so both decisions occur for every kind, and the kind
goes into `metadata.kind` so a disagreement between taggers can be traced back to what was planted.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from corpus_text import paragraph, prose_paragraphs, sentence, title
from corpus_words import (
    ADJECTIVES,
    BOILERPLATE,
    CODE,
    DETERMINERS,
    LOREM,
    NAV_WORDS,
    NOUNS,
    PREPOSITIONS,
    TLDS,
)


def _target(rng: random.Random) -> int:
    """Text size of a normal document: 2-5 KB."""
    return rng.randint(2000, 5000)


def _email(rng: random.Random) -> str:
    user = f"{rng.choice(NOUNS)}.{rng.choice(NOUNS)}{rng.randint(1, 99)}"
    return f"{user}@{rng.choice(NOUNS)}.{rng.choice(TLDS)}"


def _phone(rng: random.Random) -> str:
    a, b, c = rng.randint(200, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice((f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"+1 {a} {b} {c:04d}"))


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


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
        f"{mark}{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(PREPOSITIONS)} "
        f"{rng.choice(DETERMINERS)} {rng.choice(NOUNS)}"
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
            rng.randrange(len(words)), "#" + rng.choice(NOUNS) + rng.choice(("", "life", "2024", ""))
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
            cells.append(rng.choice(NOUNS))
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
    nav = [" ".join(rng.sample(NAV_WORDS, rng.randint(2, 7))) for _ in range(rng.randint(3, 25))]
    captions = [" ".join(sentence(rng)[:-1].split()[: rng.randint(3, 15)]) for _ in range(rng.randint(3, 15))]
    prose = [paragraph(rng) for _ in range(rng.choice((0, 0, 1, 2, 4)))]
    lines = [*nav, *captions, *prose]
    rng.shuffle(lines)
    return "\n".join(lines)


def _boilerplate(rng: random.Random) -> str:
    paras = prose_paragraphs(rng, rng.randint(300, 4000))
    for _ in range(rng.randint(1, 4)):
        paras.insert(rng.randrange(len(paras) + 1), rng.choice(BOILERPLATE))
    return "\n".join(paras)


def _lorem(rng: random.Random) -> str:
    lorem = [
        " ".join(rng.choices(LOREM, k=rng.randint(15, 60))).capitalize() + "."
        for _ in range(rng.randint(1, 5))
    ]
    if rng.random() < 0.5:
        lorem[0] = "Lorem ipsum " + lorem[0]
    paras = prose_paragraphs(rng, rng.randint(0, 3000))
    return "\n".join([*lorem, *paras] if rng.random() < 0.5 else [*paras, *lorem])


def _code(rng: random.Random) -> str:
    paras = prose_paragraphs(rng, rng.randint(500, 3500))
    snippet = rng.sample(CODE, rng.randint(1, len(CODE)))
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
        words = [rng.choice(ADJECTIVES + NOUNS).capitalize() for _ in range(rng.randint(4, 12))]
        if rng.random() < stop_word_rate:
            words.insert(rng.randrange(len(words)), rng.choice(("The", "And", "With", "To", "Of")))
        lines.append(" ".join(words))
    if rng.random() < 0.3:
        lines.append(sentence(rng))
    return "\n".join(lines)


def _long_words(rng: random.Random) -> str:
    """URL lists with some prose: long tokens raise the mean word length more than the median."""
    urls = [
        f"https://www.{rng.choice(NOUNS)}{rng.choice(NOUNS)}.{rng.choice(TLDS)}/"
        f"{rng.choice(NOUNS)}-{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}/{rng.randint(1000, 99999)}"
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
