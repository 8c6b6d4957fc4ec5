"""Reading an index: exact counts of a token sequence, and where its occurrences are.

`TokenIndex.open(TOKENS)` refuses an index that is incomplete (no `index.json`), of another format, or
*stale*: built from other tokens than the folder holds now (the sha256 of the tokens' manifest differs, or a
part file changed size). Counting and finding are infini-gram's (a binary search over the memory-mapped
suffix array: O(|query| · log N)); an occurrence's position is read from the suffix array here and turned
into a document, its source and input file:line by the provenance index, and into a character span of the
document's text by decoding its tokens with the corpus's own tokenizer.

A query never contains the EOS id: documents are separated by EOS in the token files, so a match is always
inside one document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dolma_kit.index.build import FORMAT, INDEX_DIR, INDEX_MANIFEST, manifest_digest, open_tokens
from dolma_kit.index.engine import Engine, TokenIndexError, infini_gram
from dolma_kit.provenance import TokenizedDir


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One place a query occurs: token offsets in the part, its document and the characters it covers."""

    part: str
    start: int
    """First token of the match (offset in the part)."""
    end: int
    """Exclusive."""
    id: str
    source: str
    src: str
    """Input file the document was read from."""
    loc: int
    """1-based line in `src` (row for parquet)."""
    doc_start: int
    """The document's tokens in the part (EOS included)."""
    doc_end: int
    char_start: int | None
    """Characters of the document's text that the match decodes to (None without the tokenizer)."""
    char_end: int | None


class TokenIndex:
    """An opened, checked index over one tokenized folder (`open` is the way in)."""

    def __init__(self, tokenized: TokenizedDir, manifest: dict[str, Any]) -> None:
        self.tokenized = tokenized
        self.manifest = manifest
        self.dir = tokenized.path / INDEX_DIR
        self.width: int = manifest["token_width"]
        self.eos_id: int = manifest["eos_id"]
        self.shards: list[dict[str, Any]] = manifest["shards"]
        self.total_tokens: int = manifest["tokens"]
        self._tables: dict[int, np.memmap] = {}

    @classmethod
    def open(cls, tokens: str | Path) -> TokenIndex:
        """Open `<tokens>/index/`; a missing engine, or a missing, unfinished or stale index, is one line saying
        what to run."""
        infini_gram()
        tokenized = open_tokens(tokens)
        path = tokenized.path / INDEX_DIR / INDEX_MANIFEST
        build = f"dolma-kit index {tokenized.path}"
        if not path.is_file():
            raise TokenIndexError(
                f"{tokenized.path}: no suffix-array index (or an unfinished one): run `{build}`"
            )
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise TokenIndexError(f"{path}: not a {FORMAT} index; rebuild it with `{build} --force`")
        if manifest.get("tokens_manifest_sha256") != manifest_digest(tokenized.path):
            raise TokenIndexError(
                f"{path}: STALE: the tokens in {tokenized.path} changed after the index was built "
                f"(manifest.json differs); its answers would be wrong. Rebuild: `{build}`"
            )
        index = cls(tokenized, manifest)
        for i, shard in enumerate(index.shards):
            table = index.dir / f"table.{shard['shard']}"
            data = index.dir / f"tokenized.{shard['shard']}"
            n = tokenized.num_tokens(i)
            if shard["tokens"] != n or not data.exists() or data.stat().st_size != n * index.width:
                raise TokenIndexError(
                    f"{data}: STALE: part {shard['part']} is not the one indexed; rebuild: `{build}`"
                )
            if not table.is_file() or table.stat().st_size != shard["table_bytes"]:
                raise TokenIndexError(f"{table}: missing or truncated; rebuild: `{build} --force`")
        return index

    @cached_property
    def engine(self) -> Engine:
        return Engine(self.dir, eos_id=self.eos_id, vocab_size=self.tokenized.vocab_size, width=self.width)

    @cached_property
    def tokenizer(self) -> Any:
        """The corpus's tokenizer (`tokenizers.Tokenizer`), or None when its file is not found from here."""
        from dolma_kit.errors import DolmaKitError
        from dolma_kit.tokenize.loading import load_tokenizer

        spec = (self.tokenized.manifest.get("tokenizer") or {}).get("spec")
        if not spec:
            return None
        try:
            return load_tokenizer(spec, eos_id=self.eos_id).tokenizer
        except DolmaKitError:
            return None

    @cached_property
    def unigram(self) -> np.ndarray:
        """Count of each token id over the corpus."""
        return np.load(self.dir / "token_counts.npy", mmap_mode="r")

    # ------------------------------------------------------------------------------------------ queries

    def encode(self, text: str) -> list[int]:
        """`text` as the corpus's tokenizer encodes it on its own (a leading space changes the ids)."""
        if self.tokenizer is None:
            spec = (self.tokenized.manifest.get("tokenizer") or {}).get("spec")
            raise TokenIndexError(
                f"the corpus's tokenizer ({spec}) is not found from here: pass --tokens IDS"
            )
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def check(self, ids: list[int]) -> list[int]:
        ids = [int(t) for t in ids]
        if not ids:
            raise TokenIndexError("the query is empty (no tokens)")
        if self.eos_id in ids:
            raise TokenIndexError(
                f"the query holds the EOS id {self.eos_id}: documents end at EOS, so no match crosses one"
            )
        top = 2 ** (8 * self.width) - 1
        bad = [t for t in ids if not 0 <= t < top]
        if bad:
            raise TokenIndexError(
                f"token id {bad[0]} is outside the corpus's {self.tokenized.dtype.name} ids"
            )
        return ids

    def count(self, ids: list[int]) -> int:
        """Exact number of occurrences of `ids` in the corpus."""
        answer = self.engine.count(self.check(ids))
        if "error" in answer:
            raise TokenIndexError(f"infini-gram: {answer['error']}")
        return int(answer["count"])

    def segments(self, ids: list[int]) -> tuple[int, list[tuple[int, int]]]:
        """(count, per shard the suffix-array rank range [lo, hi) of the occurrences)."""
        answer = self.engine.find(self.check(ids))
        if "error" in answer:
            raise TokenIndexError(f"infini-gram: {answer['error']}")
        return int(answer["cnt"]), [(int(lo), int(hi)) for lo, hi in answer["segment_by_shard"]]

    def _table(self, shard: int) -> np.memmap:
        if shard not in self._tables:
            self._tables[shard] = np.memmap(
                self.dir / f"table.{self.shards[shard]['shard']}", np.uint8, mode="r"
            )
        return self._tables[shard]

    def positions(self, shard: int, lo: int, hi: int) -> np.ndarray:
        """Token offsets (in the shard's part) of suffix-array ranks lo … hi-1."""
        ratio = int(self.shards[shard]["ratio"])
        raw = np.asarray(self._table(shard)[lo * ratio : hi * ratio]).reshape(-1, ratio).astype(np.uint64)
        ptr = np.zeros(len(raw), dtype=np.uint64)
        for b in range(ratio):
            ptr |= raw[:, b] << np.uint64(8 * b)
        return (ptr // np.uint64(self.width)).astype(np.int64)

    def find(self, ids: list[int], limit: int = 10) -> tuple[int, list[Occurrence]]:
        """(exact count, up to `limit` occurrences in corpus order: part, then offset)."""
        ids = self.check(ids)
        total, segments = self.segments(ids)
        found: list[tuple[int, int]] = []
        for shard, (lo, hi) in enumerate(segments):
            if hi > lo and len(found) < limit:
                take = min(hi - lo, limit - len(found))
                found += [(shard, int(p)) for p in np.sort(self.positions(shard, lo, lo + take))]
        return total, [self.occurrence(shard, start, start + len(ids)) for shard, start in found]

    def occurrence(self, shard: int, start: int, end: int) -> Occurrence:
        """The document holding tokens [start, end) of a shard's part, and the characters they decode to."""
        loc = self.tokenized.locate(shard, start)
        chars: tuple[int | None, int | None] = (None, None)
        if self.tokenizer is not None:
            chars = self._chars(
                self.tokenized.tokens(shard)[loc.start : loc.end],
                start - loc.start,
                end - loc.start,
            )
        return Occurrence(
            part=loc.part,
            start=start,
            end=end,
            id=loc.id,
            source=loc.source,
            src=loc.src,
            loc=loc.loc,
            doc_start=loc.start,
            doc_end=loc.end,
            char_start=chars[0],
            char_end=chars[1],
        )

    @cached_property
    def _byte_chars(self) -> tuple[np.ndarray, np.ndarray] | None:
        """For a byte-level tokenizer (GPT-2, OLMo's, ours): per token id, how many characters start in its
        bytes (bytes that are not UTF-8 continuation bytes) and whether its first byte continues a character.
        Then a character offset is a sum over the prefix's ids, with no decoding. None for other tokenizers."""
        config = json.loads(self.tokenizer.to_str())
        if (config.get("decoder") or {}).get("type") != "ByteLevel":
            return None
        # GPT-2's printable stand-ins for bytes (the ByteLevel alphabet)
        keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
        to_byte = {chr(b): b for b in keep}
        to_byte.update({chr(256 + i): b for i, b in enumerate(b for b in range(256) if b not in keep)})
        size = max(self.tokenized.vocab_size, self.tokenizer.get_vocab_size(with_added_tokens=True))
        starts, continues = np.zeros(size, np.int64), np.zeros(size, np.int64)
        specials = {t.content for t in self.tokenizer.get_added_tokens_decoder().values()}
        for i in range(size):
            piece = self.tokenizer.id_to_token(i)
            if piece is None:
                continue
            if piece in specials or any(c not in to_byte for c in piece):
                starts[i] = len(piece)  # decoded as its own text
                continue
            raw = [to_byte[c] for c in piece]
            starts[i] = sum((b & 0xC0) != 0x80 for b in raw)
            continues[i] = bool(raw) and (raw[0] & 0xC0) == 0x80
        return starts, continues

    def _chars(self, doc: np.ndarray, a: int, b: int) -> tuple[int, int]:
        """Characters of the document's text covered by its tokens [a, b). A byte-level token may hold part of
        a character: the span then widens to the whole character. Byte-level tokenizers count characters
        per id (`_byte_chars`); others decode, stopping 4 tokens after b (a UTF-8 character has at most 4
        bytes), so a long document is not decoded whole."""
        if self._byte_chars is not None:
            starts, continues = self._byte_chars
            ids = np.asarray(doc[:b], dtype=np.int64)
            before = int(starts[ids[:a]].sum())
            first = int(continues[ids[a]]) if a < len(ids) else 0
            return before - first, before + int(starts[ids[a:b]].sum())
        doc = np.asarray(doc)
        ref = self._decode(doc[: b + 4])

        def chars_before(k: int, widen: bool) -> int:
            text = self._decode(doc[:k])
            if ref.startswith(text):
                return len(text)
            cut = text.rstrip("\ufffd")  # an incomplete character decodes to U+FFFD
            while cut and not ref.startswith(cut):
                cut = cut[:-1]
            return len(cut) + (1 if widen else 0)

        return chars_before(a, False), chars_before(b, True)

    def _decode(self, ids: np.ndarray) -> str:
        return self.tokenizer.decode([int(t) for t in ids], skip_special_tokens=False)

    def decode(self, ids: list[int] | np.ndarray) -> str | None:
        """Token ids as text (None without the tokenizer)."""
        return None if self.tokenizer is None else self._decode(np.asarray(ids))

    def unigram_logprob(self, ids: list[int]) -> float:
        """Sum of log unigram probabilities of `ids`: lower is rarer (how attributed spans are ranked)."""
        counts = np.asarray(self.unigram)[np.asarray(ids, dtype=np.int64)].astype(np.float64)
        return float(np.log(np.maximum(counts, 0.5) / max(self.total_tokens, 1)).sum())
