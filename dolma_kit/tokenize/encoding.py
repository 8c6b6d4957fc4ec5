"""Encode texts to token ids with memory bounded by a piece size, not by the longest document.

`tokenizers` holds about 100 bytes a token until an encode call returns (ids, offsets, token strings, the
normalized text's alignments), and more for one huge text: a 50 M-character document took 9 GB. So a long
text is encoded in pieces of about `piece_chars` characters, a few pieces per `encode_batch_fast` call (Rust
threads), and each piece's ids are kept as a little-endian uint16/uint32 array.

**Why the ids are those of the whole text.** A piece ends just before a space or newline whose previous
character is not whitespace (`_CUT`). For tokenizers made as GPT-2's, OLMo's and `train-tokenizer`'s are
(`piecewise_blocker` checks each part below, and names what keeps any other tokenizer on whole texts):

- *Pre-tokenizer*: GPT-2's regex (`GPT2_PATTERN`, as ByteLevel(use_regex) or as a Split before ByteLevel).
  Its alternatives that may hold a non-whitespace character hold whitespace only as a leading " ", so the
  pre-token holding the character before the cut ends at the cut. The regex has no look-behind, so the
  pre-tokens after the cut depend on nothing before it; its one look-ahead, `(?!\\S)`, succeeds at the cut
  both on the whitespace and at the end of a piece. So the pieces' pre-tokens are the whole text's, and BPE
  encodes each pre-token alone. "Not whitespace" is judged strictly: Python's `\\s` and `_MAYBE_SPACE`
  (whitespace to some Unicode version or regex engine), so it is not whitespace to the Rust regex either.
- *Normalizer*: none, or NFC. Space and newline are starters that compose with nothing before them, hence
  NFC boundaries (UAX #15): NFC(a + b) = NFC(a) + NFC(b) when b starts with one; and no character that is
  not whitespace normalizes to one that is (tests check all of Unicode).
- *Added tokens*, matched leftmost-longest before pre-tokenization: a match across a cut would hold the
  character before it and the space or newline, so no added token may hold such a pair (OLMo's runs of
  spaces and the PII masks hold none) nor strip the whitespace around it (`lstrip`, `rstrip`).
- *Post-processor* none or ByteLevel (they add no ids); no truncation or padding; BPE without dropout.

Any other tokenizer encodes every text whole, and its memory follows the longest document.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import numpy as np
from tokenizers import Tokenizer

#: ByteLevel's pre-tokenizer regex (tokenizers' `byte_level.rs`); a Split with exactly this pattern is verified too
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
CUT_CHARS = " \n"
#: whitespace to some Unicode version or regex engine though not to Python's `\s` (U+180E was until 6.3)
_MAYBE_SPACE = "\u180e\u200b\u200c\u200d\u2060\ufeff"
_CUT = re.compile(rf"(?<=[^\s{_MAYBE_SPACE}])[{CUT_CHARS}]")
PIECE_CHARS = 1 << 14
BATCH_CHARS_PER_THREAD = 1 << 15
"""Characters per `encode_batch_fast` call and Rust thread: Rust holds ~100 bytes a token until the call ends.
At 2 threads a 50 M-character document peaks at ~470 MB (bench/big_document.py), mostly its text."""

_VERDICTS: dict[int, tuple[Tokenizer, str | None]] = {}
"""`piecewise_blocker` by tokenizer object (kept alive, so an id is never reused): it costs a JSON dump."""


def _byte_level_ok(spec: dict[str, Any], *, regex: bool) -> bool:
    return (
        spec.get("type") == "ByteLevel"
        and not spec.get("add_prefix_space")
        and (not regex or spec.get("use_regex", True))
    )


def _pre_tokenizer_ok(spec: dict[str, Any] | None) -> bool:
    """ByteLevel(use_regex, no prefix space), or a Sequence that splits by GPT-2's regex first and then only
    maps bytes (ByteLevel without a prefix space): the first splitting step is the one the cut proof covers."""
    if spec is None:
        return False
    if spec.get("type") != "Sequence":
        return _byte_level_ok(spec, regex=True)
    steps = spec.get("pretokenizers") or []
    if not steps:
        return False
    first, rest = steps[0], steps[1:]
    split = (
        first.get("type") == "Split"
        and first.get("pattern") == {"Regex": GPT2_PATTERN}
        and first.get("behavior") == "Isolated"
        and not first.get("invert")
    )
    return (split or _byte_level_ok(first, regex=True)) and all(_byte_level_ok(s, regex=False) for s in rest)


def _crosses_cut(content: str) -> bool:
    """Could an occurrence of this added token straddle a cut (hold a non-space, then a space or newline)?"""
    return any(_CUT.match(content, i) for i in range(1, len(content)))


def piecewise_blocker(tokenizer: Tokenizer) -> str | None:
    """Why this tokenizer's texts cannot be encoded in pieces, or None when they can (module docstring)."""
    return spec_blocker(json.loads(tokenizer.to_str()))


def remembered_blocker(tokenizer: Tokenizer) -> str | None:
    """`piecewise_blocker`, worked out once per tokenizer object (0.12 CPU-s for GPT-2's: a JSON dump and
    parse); `tokenize`'s forkserver calls it before forking, so its workers inherit the answer."""
    if id(tokenizer) not in _VERDICTS:
        _VERDICTS[id(tokenizer)] = (tokenizer, piecewise_blocker(tokenizer))
    return _VERDICTS[id(tokenizer)][1]


def spec_blocker(spec: dict[str, Any]) -> str | None:
    """`piecewise_blocker` of a tokenizer.json's content."""
    normalizer = spec.get("normalizer")
    if normalizer is not None and normalizer != {"type": "NFC"}:
        return f"normalizer {normalizer.get('type')} (only none or NFC are verified)"
    if not _pre_tokenizer_ok(spec.get("pre_tokenizer")):
        return "pre-tokenizer is not GPT-2's byte-level regex without a prefix space"
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("dropout") not in (None, 0, 0.0):
        return "model is not a BPE without dropout"
    post = spec.get("post_processor")
    if post is not None and post.get("type") != "ByteLevel":
        return f"post-processor {post.get('type')} may add ids"
    if spec.get("truncation") or spec.get("padding"):
        return "truncation or padding is set"
    for added in spec.get("added_tokens") or []:
        content = added.get("content", "")
        if added.get("lstrip") or added.get("rstrip") or added.get("single_word"):
            return f"added token {content!r} strips whitespace or matches single words"
        if _crosses_cut(content) or _crosses_cut(unicodedata.normalize("NFC", content)):
            return f"added token {content!r} holds a space or newline after another character"
    return None


def cuts(text: str, piece_chars: int, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive pieces covering `text[start:end]`, each at least `piece_chars` long (but the
    last), ending at the first cut past that; a text without a cut there is one piece to its end."""
    size = len(text) if end is None else end
    while size - start > piece_chars:
        match = _CUT.search(text, start + piece_chars, size)
        if match is None:
            break
        yield start, match.start()
        start = match.start()
    yield start, size


def stripped_bounds(text: str) -> tuple[int, int]:
    """(start, end) of `text.strip()` within `text`, without copying it (Python's whitespace: `str.isspace`)."""
    start, end = 0, len(text)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class Encoder:
    """Texts → each one's ids, then EOS unless the post-processor already ended with it (Dolma's rule).

    A text's ids come back as a list of arrays (one per piece, the EOS last) of little-endian `dtype`, so a
    long document is never copied into one array: `ChunkWriter` writes the arrays one after the other.
    `piece_chars` 0, or a tokenizer `piecewise_blocker` refuses, encodes every text whole. `strip` encodes
    `text.strip()` as `dolma tokens` does (the bounds are found in place: a long text is not copied); `bos_id`
    is put first unless the ids already start with it (Dolma's `bos_token_id`); `post_processor` False skips
    the tokenizer's post-processor (a template's BOS or EOS), as Dolma does.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        eos_id: int,
        dtype: type[np.unsignedinteger],
        piece_chars: int = PIECE_CHARS,
        batch_chars: int = 2 * BATCH_CHARS_PER_THREAD,
        *,
        strip: bool = False,
        bos_id: int | None = None,
        post_processor: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.eos = np.array([eos_id], dtype=np.dtype(dtype).newbyteorder("<"))
        self.dtype = self.eos.dtype
        self.blocker = remembered_blocker(tokenizer)
        self.piece_chars = piece_chars if piece_chars > 0 and self.blocker is None else 0
        self.batch_chars = max(batch_chars, self.piece_chars)
        self.strip = strip
        self.bos = None if bos_id is None else np.array([bos_id], dtype=self.dtype)
        self.post_processor = post_processor

    def _pieces(self, text: str) -> Iterator[tuple[int, int]]:
        start, end = stripped_bounds(text) if self.strip else (0, len(text))
        if not self.piece_chars:
            return iter([(start, end)])
        return cuts(text, self.piece_chars, start, end)

    def encode(self, texts: list[str]) -> list[list[np.ndarray]]:
        out: list[list[np.ndarray]] = [[] for _ in texts]
        batch: list[str] = []
        owners: list[int] = []
        size = 0
        for i, text in enumerate(texts):
            for start, end in self._pieces(text):
                batch.append(text if end - start == len(text) else text[start:end])
                owners.append(i)
                size += end - start
                if size >= self.batch_chars:
                    self._run(batch, owners, out)
                    batch, owners, size = [], [], 0
        if batch:
            self._run(batch, owners, out)
        eos = int(self.eos[0])
        for arrays in out:
            last = next((a for a in reversed(arrays) if len(a)), None)
            if self.bos is not None and last is not None:  # Dolma adds BOS only to non-empty ids
                first = next(a for a in arrays if len(a))
                if int(first[0]) != int(self.bos[0]):
                    arrays.insert(0, self.bos)
            if last is None or int(last[-1]) != eos:
                arrays.append(self.eos)
        return out

    def _run(self, batch: list[str], owners: list[int], out: list[list[np.ndarray]]) -> None:
        encodings = self.tokenizer.encode_batch_fast(batch, add_special_tokens=self.post_processor)
        batch.clear()
        for k, owner in enumerate(owners):
            out[owner].append(np.array(encodings[k].ids, dtype=self.dtype))
            encodings[k] = None  # type: ignore[call-overload]  # free each encoding as soon as it is read
