"""Random texts that exercise what the line, paragraph and word rules look at, for equivalence tests.

Each text mixes repeated lines and paragraphs, bullets, ellipses, `#`, stop words in any case with
punctuation, repeated phrases, whitespace of every kind (tabs, CRLF, U+3000, U+0085, U+2028, U+001C),
non-ASCII letters whose lowercase is special (final sigma, dotted I), text beyond the BMP and, rarely, a
lone surrogate (JSON can carry one).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

WORDS = (
    *("alpha", "beta", "gamma", "delta", "q", "zz", "lorem", "ipsum", "dolor", "sit"),
    *("the", "The", "THE", "of,", "“that”", "and", "to.", "be", "have!", "with"),
    *("#tag", "##", "x…y", "wait...", "…", "...", "123", "4.5", "—", "-", "*"),
    *("[1]", "[edit]", "[citation needed]", "javascript", "JavaScript:", "{x}", "cookies"),
    *("ΟΔΟΣ", "ὈΔΥΣΣΕΎΣ", "ΑΣ.", "İstanbul", "straße", "日本語の文", "🎵", "e\u0301", "ǅ"),
)
SPACES = (" ", " ", " ", " ", "  ", "\t", "\u3000", "\x1c", "\u00a0")
ENDINGS = ("", "", ".", ".", "!", "?", "...", "…", '"', "”", " [1]", ". ", "?!")
BULLETS = ("", "", "", "", "- ", "* ", "• ", "  ▪ ", "— ", "–")
PHRASES = ("privacy policy", "terms of use", "lorem ipsum", "ha ha ha ha", "the of the of the")
BREAKS = ("\n", "\n", "\n", "\r\n", "\x85", "\u2028")


def random_line(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 14))]
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words) + 1), rng.choice(PHRASES))
    if rng.random() < 0.01:
        words.append("\ud800")
    body = "".join(w + rng.choice(SPACES) for w in words).rstrip(" ")
    return rng.choice(BULLETS) + body + rng.choice(ENDINGS)


def random_text(rng: random.Random, size: int) -> str:
    """About `size` characters of lines, some repeated alone or as a block, with blank and spaced lines."""
    lines: list[str] = []
    length = 0
    while length < size:
        r = rng.random()
        if r < 0.12 and lines:
            new = [rng.choice(lines)]
        elif r < 0.18 and len(lines) > 3:
            first = rng.randrange(len(lines) - 2)
            new = ["", *lines[first : first + rng.randint(1, 3)], ""]
        elif r < 0.3:
            new = [rng.choice(("", "", " ", "\t ", "  \u3000"))]
        else:
            new = [random_line(rng)]
        lines += new
        length += sum(map(len, new)) + len(new)
    text = "".join(line + rng.choice(BREAKS) for line in lines)
    return text if rng.random() < 0.7 else text.rstrip("\n") + rng.choice(("", " ", "\n\n"))


def random_texts(seed: int, count: int, max_size: int) -> Iterator[str]:
    """`count` texts of up to `max_size` characters, a few edge cases first."""
    yield from ("", " ", "\n", "\n\n \n", "word", "a b", "…\n...\n#")
    rng = random.Random(seed)
    for _ in range(count):
        yield random_text(rng, rng.choice((20, 200, 1000, max_size)))
