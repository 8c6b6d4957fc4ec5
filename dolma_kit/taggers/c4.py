"""C4 cleaning rules (Raffel et al. 2020, section 2.2) as spans: the lines C4 drops, and document flags.

C4 rewrites a page by keeping only its good lines; a tagger never rewrites, so each line C4 would drop
becomes one span typed by the first reason it fails (in the order of the reference implementation,
TFDS `c4_utils.clean_page`), and the page-level rules become document-level attributes plus `pass`.
A line is the text between two `\\n` (a trailing `\\r` belongs to the line break); spans never include
the line break, so masking them in `mix` never joins two lines. Blank lines get no span: they carry no
text, and C4 drops them anyway. docs/quality-taggers.md lists the choices and the differences from Dolma.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dolma_kit.documents import Document
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.chunks import NEWLINE, chunks
from dolma_kit.taggers.registry import register_tagger

#: Wikipedia-style citation markers that C4 deletes before judging a line: [1], [], [edit], [citation needed]
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
#: a sentence ends inside a line at a run of . ! ? (closing quotes or brackets may follow) before whitespace
#: (no `+` after the class: a run like "?!" or "..." then matches once, at its last mark, and twice as fast)
_INNER_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s")

LINE_REASONS = (
    "line_too_long_word",
    "line_no_terminal_punct",
    "line_too_few_words",
    "line_javascript",
    "line_policy",
)
DOCUMENT_ATTRIBUTES = (
    "has_lorem_ipsum",
    "has_curly_brace",
    "has_bad_word",
    "too_few_sentences",
    "line_count",
    "removed_line_fraction",
    "sentence_count",
    "pass",
)


@dataclass(kw_only=True)
class C4Config(TaggerConfig):
    """C4's thresholds and word lists. The two counts are those of the code that built C4 (TFDS `c4_utils`:
    5 words per line, 3 sentences per page) and of the paper's final text; datatrove and an earlier version of
    the paper's text have them the other way round, which `c4:min_words_per_line=3,min_sentences=5` selects.
    Everything else follows the paper and TFDS."""

    min_words_per_line: int = 5
    """A kept line has at least this many whitespace-separated words (after citation markers are removed)."""
    min_sentences: int = 3
    """A kept document has at least this many sentences in its kept lines."""
    max_word_length: int = 1000
    """A line with a longer word (a run of non-whitespace) is dropped, as in C4's code (not in the paper)."""
    terminal_punctuation: tuple[str, ...] = (".", "!", "?", '"', "”")
    """A kept line ends with one of these (after stripping whitespace and trailing citation markers).
    The paper's "end quotation mark" is the ASCII `"` in C4's code; `”` is its typographic twin. Single
    quotes are left out because `’` is also the apostrophe."""
    drop_ellipsis_lines: bool = True
    """Drop lines ending in `...` although they end in a period, as C4's code does (truncated teasers)."""
    policy_phrases: tuple[str, ...] = (
        "terms of use",
        "privacy policy",
        "cookie policy",
        "uses cookies",
        "use of cookies",
        "use cookies",
    )
    """A line containing one of these (case-insensitive) is boilerplate and dropped."""
    bad_words_file: str | None = None
    """Optional UTF-8 file, one word or phrase a line (`#` starts a comment); a document containing one as a
    whole word (case-insensitive) fails `pass`. No list ships with dolma-kit."""

    def __post_init__(self) -> None:
        if not self.terminal_punctuation:
            raise ValueError("terminal_punctuation is empty: no line could be kept; e.g. use .|!|?")


def load_bad_words(path: str) -> re.Pattern[str] | None:
    """One regex matching any listed word or phrase as a whole word in lowercased text (None if empty).

    Longer entries come first so a phrase wins over a word it starts with; `\\w` boundaries keep "ass"
    from matching "class", as C4's own filter does.
    """
    file = Path(path)
    if not file.is_file():
        raise DolmaKitError(f"c4: bad_words_file {path} does not exist (give a file with one word a line)")
    entries = {
        line.strip().lower()
        for line in file.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    if not entries:
        return None
    alternatives = "|".join(re.escape(e) for e in sorted(entries, key=lambda e: (-len(e), e)))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


@register_tagger("c4_v1", alias="c4")
class C4Tagger(Tagger):
    """Spans for every line C4 drops (typed by reason), document flags and counts, and `pass`."""

    Config = C4Config
    config: C4Config

    def __init__(self, config: C4Config | None = None) -> None:
        super().__init__(config)
        self._bad_words = load_bad_words(self.config.bad_words_file) if self.config.bad_words_file else None
        self._terminal = tuple(self.config.terminal_punctuation)
        self._policy = tuple(p.lower() for p in self.config.policy_phrases if p)

    def line_reason(self, line: str, javascript: bool = True, policy: bool = True) -> str | None:
        """Why C4 drops this (stripped, non-empty) line, or None when it keeps it; the first reason wins.

        `javascript` / `policy` False say that the text around the line (the document, or the chunk of it
        being read) has no such text, so the line checks can be skipped.
        """
        c = self.config
        if len(line) > c.max_word_length and max(map(len, line.split())) > c.max_word_length:
            return "line_too_long_word"
        if "[" in line:
            line = _CITATION.sub("", line).strip()
        if not line.endswith(self._terminal) or (c.drop_ellipsis_lines and line.endswith("...")):
            return "line_no_terminal_punct"
        if len(line.split()) < c.min_words_per_line:
            return "line_too_few_words"
        if javascript or policy:
            lowered = line.lower()
            if javascript and "javascript" in lowered:
                return "line_javascript"
            if policy and any(p in lowered for p in self._policy):
                return "line_policy"
        return None

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        spans: list[Span] = []
        lines = kept = sentences = 0
        lorem_ipsum = curly_brace = bad_word = False
        # a long text is read a chunk of whole lines at a time, so no lowercase copy or list of lines of the
        # whole text exists; no phrase or bad word spans a newline, so each is found in the chunk it lies in
        for offset, chunk in chunks(text, NEWLINE):
            lowered = chunk.lower()
            lorem_ipsum = lorem_ipsum or "lorem ipsum" in lowered
            curly_brace = curly_brace or "{" in chunk
            if self._bad_words is not None and not bad_word:
                bad_word = self._bad_words.search(lowered) is not None
            # the lines of this chunk need the javascript / policy checks only if the chunk has such text
            javascript = "javascript" in lowered
            policy = any(p in lowered for p in self._policy)
            del lowered
            kept_lines: list[str] = []
            start = offset
            for raw in chunk.split("\n"):
                end = start + len(raw)
                line = raw.strip()
                if line:
                    lines += 1
                    reason = self.line_reason(line, javascript, policy)
                    if reason is None:
                        kept_lines.append(line)
                    else:
                        spans.append(Span(start, end - 1 if raw.endswith("\r") else end, reason))
                start = end + 1
            kept += len(kept_lines)
            # every kept line ends a sentence (it ends in terminal punctuation), plus its inner sentence ends;
            # joined with NUL (not whitespace) so line ends are not counted twice
            sentences += len(kept_lines) + len(_INNER_SENTENCE_END.findall("\0".join(kept_lines)))
        flags = {
            "has_lorem_ipsum": lorem_ipsum,
            "has_curly_brace": curly_brace,
            "too_few_sentences": sentences < self.config.min_sentences,
        }
        if self._bad_words is not None:
            flags["has_bad_word"] = bad_word
        passed = kept > 0 and not any(flags.values())
        spans.extend(whole_document(doc, name, float(value)) for name, value in flags.items())
        spans.append(whole_document(doc, "line_count", lines))
        spans.append(whole_document(doc, "removed_line_fraction", (lines - kept) / lines if lines else 0.0))
        spans.append(whole_document(doc, "sentence_count", sentences))
        spans.append(whole_document(doc, "pass", float(passed)))
        return spans

    def attribute_names(self) -> list[str]:
        return [*LINE_REASONS, *DOCUMENT_ATTRIBUTES]
