"""Word n-grams grouped by equality with hashes in numpy arrays: what the Gopher repetition rules need.

Shared by `gopher_v1` and the Dolma-compatible `gopher_dolma_v1`, which score the same groups differently.
Nothing here holds a word: a text's words are reduced, a chunk at a time, to a 64-bit hash and a length each
(`WordArrays`), so a document of 5 million words costs about 25 bytes a word (hashes, prefix sums, rolled
n-gram hashes, block numbers and flags) instead of a list of 5 million strings of about 60 bytes each.
Each word's hash is Python's string hash (random per process, equal for equal strings); n-gram hashes are
polynomial rolls over them (uint64), so no tuple is ever built.

Equal n-grams are found by sorting keys whose high bits are the n-gram hash and whose low bits are its
position, so one plain sort groups equal n-grams *and* lists each group's occurrences in text order. Past
`BLOCK_NGRAMS` n-grams the keys are sorted in blocks: block p holds the n-grams whose key starts with the bits
of p, so equal n-grams always share a block, the blocks in order are the one big sorted array cut into pieces,
and only one block's arrays exist at a time. Every measure is then summed or maximised over blocks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

TOP_NGRAM_SIZES = (2, 3, 4)
DUPLICATE_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)
NGRAM_SIZES = TOP_NGRAM_SIZES + DUPLICATE_NGRAM_SIZES

#: n-grams sorted at once (tests set it small to cut often)
BLOCK_NGRAMS = 1 << 18
#: odd 64-bit multiplier of the polynomial n-gram hash (any large odd constant works; word hashes are random)
_ROLL = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class WordArrays:
    """The whitespace words of a text as numpy arrays, in text order, built a chunk of words at a time."""

    hashes: np.ndarray
    """`hash(word)` of each word, as uint64."""
    char_cumsum: np.ndarray
    """Prefix sums of the word lengths (one more than there are words): a window's characters in one step."""

    @classmethod
    def collect(cls, chunks_of_words: Iterable[list[str]], max_chars: int) -> WordArrays:
        """The arrays of the words of every chunk, in order; `max_chars` (the text length) bounds the sums.

        The arrays grow in place by a quarter as chunks come (`ndarray.resize`, a `realloc`: a large array is
        remapped, not copied), so building them never holds a second copy, only some spare room. Prefix sums
        are int32 when `max_chars` allows; the sums and differences taken of them are the same integers.
        """
        chunks = iter(chunks_of_words)
        words = next(chunks, [])
        hashes = np.fromiter(map(hash, words), dtype=np.int64, count=len(words))
        cumsum = np.zeros(len(words) + 1, dtype=np.int32 if max_chars < 2**31 else np.int64)
        np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=len(words)), out=cumsum[1:])
        more = next(chunks, None)
        if more is None:  # one chunk: an ordinary document
            return cls(hashes.view(np.uint64), cumsum)
        all_hashes, all_cumsum = _Filling(hashes), _Filling(cumsum)
        for words in itertools.chain([more], chunks):
            count = len(words)
            lengths = np.fromiter(map(len, words), dtype=np.int64, count=count)
            np.cumsum(lengths, out=lengths)
            lengths += all_cumsum.last()
            all_hashes.extend(np.fromiter(map(hash, words), dtype=np.int64, count=count))
            all_cumsum.extend(lengths)
        return cls(all_hashes.array().view(np.uint64), all_cumsum.array())

    @property
    def lengths(self) -> np.ndarray:
        """`len(word)` of each word."""
        return np.diff(self.char_cumsum)


class _Filling:
    """A 1-d array filled a piece at a time, starting from `first`; grows in place by a quarter when full."""

    def __init__(self, first: np.ndarray) -> None:
        self._array = first
        self._size = len(first)

    def last(self) -> int:
        return int(self._array[self._size - 1])

    def extend(self, values: np.ndarray) -> None:
        end = self._size + len(values)
        if end > len(self._array):
            self._array.resize(max(end, len(self._array) * 5 // 4), refcheck=False)
        self._array[self._size : end] = values
        self._size = end

    def array(self) -> np.ndarray:
        """The filled part (the capacity beyond it is given back)."""
        if len(self._array) > self._size:
            self._array.resize(self._size, refcheck=False)
        return self._array


def ngram_groups(keys: np.ndarray) -> Iterator[tuple[int, Iterator[tuple[np.ndarray, np.ndarray]]]]:
    """For n = 2 … 10 while there are at least n words: (n, blocks) of the word n-grams.

    Each block is (order, same_as_next): `order` lists n-gram start positions grouped by equal n-gram, each
    group in text order; `same_as_next[i]` says whether `order[i]` and `order[i + 1]` are the same n-gram. No
    group is split between blocks; a short text is one block. For n ≥ 5 a short text's block may list only the
    candidates (starts whose two (n-1)-grams both repeat), so read only the groups that repeat there. Read a
    size's blocks before asking for the next size. The hash keeps 64 - log2(#n-grams) bits: 55 bits for a 2 KB document, 47 at 100,000 words, where a
    false match between two different n-grams has odds of about 1 in 30,000 per document and n.
    """
    n_words = len(keys)
    position_bits = np.uint64(max(n_words.bit_length(), 1))
    position_mask = np.uint64((1 << int(position_bits)) - 1)
    # a short text is one block for every n, and new arrays each step are fastest; a long one rolls the
    # n-gram hashes in place (grams[:m] holds those of the current n) and sorts them in blocks
    positions = np.arange(n_words, dtype=np.uint64) if n_words <= BLOCK_NGRAMS else None
    grams = keys if positions is not None else keys.copy()
    repeated: np.ndarray | None = None  # a short text, from n = 4 on: which (n-1)-grams occur more than once
    for n in NGRAM_SIZES:
        m = n_words - n + 1  # number of n-grams
        if m <= 0:
            return
        if positions is None:
            rolled = grams[:m]
            rolled *= _ROLL
            rolled += keys[n - 1 :]
            yield n, _blocks(rolled, position_bits, position_mask)
            continue
        grams = grams[:m] * _ROLL + keys[n - 1 :]
        if repeated is None:
            packed = np.sort((grams & ~position_mask) | positions[:m])
        else:
            # an n-gram repeats only where the (n-1)-grams at its start and one word later both repeat; on
            # real text few do, so only those are sorted. `order` then lists these candidates only, which is
            # all the n ≥ 5 measures read: the starts of repeated n-grams
            candidates = np.flatnonzero(repeated[:m] & repeated[1:])
            packed = np.sort((grams[candidates] & ~position_mask) | candidates.view(np.uint64))
        order = (packed & position_mask).view(np.int64)
        packed >>= position_bits
        same_as_next = packed[1:] == packed[:-1]
        if TOP_NGRAM_SIZES[-1] <= n < NGRAM_SIZES[-1]:
            repeated = np.zeros(m, dtype=bool)
            if len(order):
                repeated[order[repeated_mask(same_as_next)]] = True
        yield n, iter([(order, same_as_next)])


def _blocks(
    grams: np.ndarray, position_bits: np.uint64, position_mask: np.uint64
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The sorted groups of `grams` a block at a time: block p takes the n-grams whose hash starts with p.

    The position takes the low bit_length(#words) bits of a key, at most 32 below 4 billion words, and there
    are fewer block bits than that, so a block is chosen by hash bits only and equal n-grams share a block.
    """
    m = len(grams)
    block_bits = max(0, (m - 1) // BLOCK_NGRAMS).bit_length()
    if block_bits == 0:
        yield _group(grams.copy(), np.arange(m, dtype=np.int64), position_bits, position_mask)
        return
    top = np.empty(m, dtype=np.uint8 if block_bits <= 8 else np.uint16 if block_bits <= 16 else np.uint32)
    np.right_shift(grams, np.uint64(64 - block_bits), out=top, casting="unsafe")
    for p in range(1 << block_bits):
        positions = np.flatnonzero(top == p)
        if len(positions):
            yield _group(grams[positions], positions, position_bits, position_mask)


def _group(
    grams: np.ndarray, positions: np.ndarray, position_bits: np.uint64, position_mask: np.uint64
) -> tuple[np.ndarray, np.ndarray]:
    """(order, same_as_next) of the n-grams with these hashes (a fresh array, changed here) and positions.

    The low bits of each hash are replaced by the position, so one plain sort (3-4x faster than a stable
    argsort) groups equal n-grams in text order. `positions` is reused for the result.
    """
    grams &= ~position_mask
    grams |= positions.view(np.uint64)
    grams.sort()
    order = positions
    np.bitwise_and(grams, position_mask, out=order.view(np.uint64))
    grams >>= position_bits
    return order, grams[1:] == grams[:-1]


def repeated_mask(same_as_next: np.ndarray) -> np.ndarray:
    """Which entries of a grouped `order` belong to an n-gram that occurs more than once."""
    repeated = np.zeros(len(same_as_next) + 1, dtype=bool)
    repeated[1:] = same_as_next
    repeated[:-1] |= same_as_next
    return repeated


def run_starts_and_lengths(same_as_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each group of equal n-grams starts in a grouped `order`, and how many occurrences it has."""
    run_starts = np.flatnonzero(np.concatenate(([True], ~same_as_next)))
    return run_starts, np.diff(np.append(run_starts, len(same_as_next) + 1))


def covered_chars(starts: np.ndarray, n: int, char_cumsum: np.ndarray) -> int:
    """Characters of the words covered by n-grams starting at sorted `starts`, overlaps counted once.

    With equal-length windows in increasing order, window k contributes the words from its start up to the
    next window's start or its own end, whichever comes first; the sum is the size of the union.
    """
    ends = np.minimum(starts + n, np.append(starts[1:], np.iinfo(np.int64).max))
    return int((char_cumsum[ends] - char_cumsum[starts]).sum())


def flagged_union_chars(flags: np.ndarray, n: int, char_cumsum: np.ndarray) -> int:
    """`covered_chars` of the n-grams whose start is flagged, without listing the starts.

    A word is covered when one of the n starts at or before it is flagged; the covered words form runs, and
    each run's characters are one subtraction of prefix sums.
    """
    covered = np.zeros(len(char_cumsum) + 1, dtype=bool)  # one entry a word, and a False at each end
    for shift in range(n):
        covered[1 + shift : 1 + shift + len(flags)] |= flags
    edges = np.flatnonzero(covered[1:] != covered[:-1])  # run starts and ends, alternating
    return int(char_cumsum[edges[1::2]].sum() - char_cumsum[edges[::2]].sum())
