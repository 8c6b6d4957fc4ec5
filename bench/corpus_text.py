"""English-like text for bench/corpus.py: noun phrases, sentences, paragraphs, headlines.

Sentences follow a few templates over the word lists of bench/corpus_words.py, so the prose passes the
quality rules the way real prose does (terminal punctuation, stop words, varied lengths); the faulty kinds
of bench/corpus_kinds.py are built from these pieces. Every function draws only from the `rng` it is given.
"""

from __future__ import annotations

import random

from corpus_words import (
    ADJECTIVES,
    ADVERBS,
    CONJUNCTIONS,
    DETERMINERS,
    NOUNS,
    PREPOSITIONS,
    SUBJECT_PRONOUNS,
    VERBS,
)


def _noun_phrase(rng: random.Random) -> str:
    words = [rng.choice(DETERMINERS)]
    if rng.random() < 0.45:
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(NOUNS))
    if rng.random() < 0.25:
        words += [rng.choice(PREPOSITIONS), rng.choice(DETERMINERS), rng.choice(NOUNS)]
    return " ".join(words)


def sentence(rng: random.Random) -> str:
    """One English-like sentence of ~6-35 words: a clause, optional phrases and a second clause."""
    subject = _noun_phrase(rng) if rng.random() < 0.7 else rng.choice(SUBJECT_PRONOUNS)
    parts = [subject]
    if rng.random() < 0.15:
        parts.append(rng.choice(ADVERBS))
    parts += [rng.choice(VERBS), _noun_phrase(rng)]
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        parts += [rng.choice(PREPOSITIONS), _noun_phrase(rng)]
    if rng.random() < 0.1:
        parts += ["in", str(rng.randint(1890, 2024))]
    if rng.random() < 0.4:
        parts[-1] += ","
        subject2 = rng.choice(SUBJECT_PRONOUNS) if rng.random() < 0.5 else _noun_phrase(rng)
        parts += [rng.choice(CONJUNCTIONS), subject2, rng.choice(VERBS), _noun_phrase(rng)]
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
    words = [rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(PREPOSITIONS), rng.choice(NOUNS)]
    return " ".join(w.capitalize() for w in words)


def prose_paragraphs(rng: random.Random, target_chars: int) -> list[str]:
    out: list[str] = []
    size = 0
    while size < target_chars:
        p = paragraph(rng)
        out.append(p)
        size += len(p) + 1
    return out
