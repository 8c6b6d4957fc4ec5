"""Dolma 1.2.1's `c4_v2` reproduced exactly, for users migrating from Dolma (`c4_dolma_v1`).

`c4_v1` (ours) follows the C4 paper and TFDS; Dolma's `c4_v2` is a different, simpler tagger, and a Dolma
mix recipe reads its attributes, so this one emits the same names with the same values, quirks included:

- everything is judged on `text.lower()`, and line spans are offsets into that lowered text (they differ
  from the original's only where lowercasing changes a length, e.g. `İ`);
- lines are `text.split("\\n")`, blank ones included; a line's span covers its `\\n`, except the last
  line's, and an empty text is one empty line;
- `lines_with_no_ending_punctuation`: the stripped line does not end in `.`, `?`, `!` or `"`;
- `lines_with_too_few_words`: fewer than 3 whitespace-separated words (blank lines too);
- `has_curly_brace`, `has_lorem_ipsum`, `has_javascript`: the substring anywhere in the document (a line
  that mentions JavaScript is not dropped: the whole document is flagged);
- `has_naughty_word`: a word of the list equals a whitespace-separated token, or a phrase of it (an entry
  with a space) occurs as a substring; Dolma ships the LDNOOBW English list, we ship none: pass the same
  file as `bad_words_file` (without it the attribute is never written);
- `line_count`: the number of `\\n`-separated lines; the flags are written only when true, score 1.0.

No citation stripping, no `...` rule, no policy phrases, no sentence count: Dolma has none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dolma_kit.documents import Document
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.registry import register_tagger

NO_PUNCT = "lines_with_no_ending_punctuation"
FEW_WORDS = "lines_with_too_few_words"
FLAGS = ("has_curly_brace", "has_lorem_ipsum", "has_javascript", "has_naughty_word")


@dataclass(kw_only=True)
class C4DolmaConfig(TaggerConfig):
    """Dolma's fixed rules; the defaults are Dolma's, so `c4_dolma` alone reproduces `c4_v2`."""

    name: str = ""
    """Attribute prefix instead of the spec's name: `name=c4_v2` writes the keys a Dolma mix recipe reads."""
    min_words_per_line: int = 3
    """A line with fewer whitespace-separated words gets a `lines_with_too_few_words` span."""
    terminal_punctuation: tuple[str, ...] = (".", "?", "!", '"')
    """A line not ending in one of these (after stripping whitespace) gets a `lines_with_no_ending_punctuation` span."""
    bad_words_file: str | None = None
    """UTF-8 list, one entry a line, read as Dolma reads its `naughty_words_en.txt`: entries without a space
    are words, entries with one are phrases, nothing is stripped or lowercased. None: no naughty-word check."""

    def __post_init__(self) -> None:
        if not self.terminal_punctuation:
            raise ValueError("terminal_punctuation is empty; Dolma's are .|?|!|\"")
        if self.min_words_per_line < 0:
            raise ValueError(f"min_words_per_line must be ≥ 0, got {self.min_words_per_line}")


def load_word_list(path: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """(words, phrases) of a Dolma-style list: lines without a space are words, lines with one phrases."""
    file = Path(path)
    if not file.is_file():
        raise DolmaKitError(f"c4_dolma: bad_words_file {path} does not exist (one word or phrase a line)")
    lines = file.read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if " " not in w), tuple(sorted({w for w in lines if " " in w}))


_KEY_CHARS = 3


def _phrase_key(phrase: str) -> str | None:
    """The start of the token any occurrence of `phrase` puts after its first space, or None (search always).

    In `a bc…` the space is whitespace, so a token of `text.split()` starts right after it and, when `bc…`'s
    first `_KEY_CHARS` characters hold no whitespace, begins with them: a text without such a token cannot
    contain the phrase.
    """
    key = phrase.partition(" ")[2][:_KEY_CHARS]
    return key if len(key) == _KEY_CHARS and key.split() == [key] else None


@register_tagger("c4_dolma_v1", alias="c4_dolma")
class C4DolmaTagger(Tagger):
    """Dolma 1.2.1 `c4_v2`: spans of lines without terminal punctuation or with too few words, and flags."""

    Config = C4DolmaConfig
    config: C4DolmaConfig

    def __init__(self, config: C4DolmaConfig | None = None) -> None:
        super().__init__(config)
        path = self.config.bad_words_file
        self._words, self._phrases = load_word_list(path) if path else (frozenset(), ())
        self._terminal = tuple(self.config.terminal_punctuation)
        self._phrase_keys = tuple((p, _phrase_key(p)) for p in self._phrases)

    def _has_naughty_word(self, lowered: str) -> bool:
        if not self._words and not self._phrases:
            return False
        tokens = set(lowered.split())
        if not self._words.isdisjoint(tokens):
            return True
        # a phrase's substring search over the whole text is the cost; a phrase can only occur where some
        # token starts with the 3 characters after its first space, so most searches are skipped
        starts = {t[:_KEY_CHARS] for t in tokens}
        return any(p in lowered for p, key in self._phrase_keys if key is None or key in starts)

    def predict(self, doc: Document) -> list[Span]:
        lowered = doc.text.lower()
        n = len(doc.text)
        spans: list[Span] = []
        flags = {
            "has_curly_brace": "{" in lowered,
            "has_lorem_ipsum": "lorem ipsum" in lowered,
            "has_javascript": "javascript" in lowered,
            "has_naughty_word": self._has_naughty_word(lowered),
        }
        spans.extend(Span(0, n, flag) for flag, on in flags.items() if on)
        terminal, min_words = self._terminal, self.config.min_words_per_line
        few: list[Span] = []
        lines = lowered.split("\n")
        total = len(lowered)
        start = 0
        for line in lines:
            end = start + len(line)
            if end != total:
                end += 1  # the newline belongs to the line's span
            stripped = line.strip()
            if not stripped.endswith(terminal):
                spans.append(Span(start, end, NO_PUNCT))
            # maxsplit: a long line needs only its first words split to know it has enough
            if len(stripped.split(None, min_words)) < min_words:
                few.append(Span(start, end, FEW_WORDS))
            start = end
        spans.extend(few)
        spans.append(whole_document(doc, "line_count", len(lines)))
        return spans

    def attribute_names(self) -> list[str]:
        return [NO_PUNCT, FEW_WORDS, *FLAGS, "line_count"]
