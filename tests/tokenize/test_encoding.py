"""Piecewise encoding (tokenize/encoding.py) gives exactly the ids of whole-text encoding, or is not used."""

from __future__ import annotations

import random
import sys
import unicodedata

import numpy as np
import pytest
from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers, processors

from dolma_kit.tokenize.encoding import GPT2_PATTERN, Encoder, cuts, piecewise_blocker, spec_blocker
from dolma_kit.tokenize.loading import load_tokenizer
from tests.conftest import DEMO_TOKENIZER

#: what random texts are made of: words, digits, punctuation, every kind of whitespace run, non-ASCII letters,
#: combining marks (NFC composes them), emoji, whitespace that only some engines call so, added tokens
WORDS = ["the", "river", "bakery", "forum", "board", "cake", "A", "Zq", "0", "7", "42", "1999", "3.14"]
PUNCTUATION = [*",.;:!?'\"()[]{}-_/\\|@#$%^&*+=~`<>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "n't"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t ", " \t"]
SPACES += ["\x0b", "\x0c", "\x85", "\x1c"]
ODD_SPACES = ["\xa0", "\u2003", "\u3000", "\u2028", "\u180e", "\u200b", "\ufeff"]
NON_ASCII = [
    "é",
    "e\u0301",
    "\u0301",
    "a\u0308",
    "\u0308",
    "ß",
    "жизнь",
    "日本語",
    "한국어",
    "\u1100\u1161",
    "\u0915\u094d",
]
SYMBOLS = ["Ω", "\u2126", "ﬁ", "😀", "👍🏽", "🏳️‍🌈", "\U0001f504", "\U00010348"]
ADDED = ["<|endoftext|>", "<|padding|>", "|||EMAIL_ADDRESS|||", "|||PHONE_NUMBER|||", "|||IP_ADDRESS|||"]
ATOMS = [*WORDS, *PUNCTUATION, *SPACES, *ODD_SPACES, *NON_ASCII, *SYMBOLS, *ADDED]


def random_text(rng: random.Random, atoms: int) -> str:
    weights = [len(ATOMS) // 4 if a == " " else 1 for a in ATOMS]
    return "".join(rng.choices(ATOMS, weights=weights, k=atoms))


def whole_ids(tok: Tokenizer, text: str, eos: int) -> list[int]:
    ids = tok.encode(text, add_special_tokens=True).ids
    return ids if ids and ids[-1] == eos else [*ids, eos]


def piecewise_ids(encoder: Encoder, texts: list[str]) -> list[list[int]]:
    return [np.concatenate(arrays).tolist() for arrays in encoder.encode(texts)]


def _olmo_like() -> Tokenizer:
    """The demo BPE as OLMo's tokenizer is made: NFC, runs of spaces and the PII masks as normalized added
    tokens, special EOS/PAD (allenai_gpt-neox-olmo-dolma-v1_5.json)."""
    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    tok.normalizer = normalizers.NFC()
    tok.add_tokens([AddedToken(" " * n, normalized=True) for n in range(2, 25)])
    return tok


def _split_then_bytes() -> Tokenizer:
    """GPT-2's regex as a Split, then ByteLevel only mapping bytes (how some tokenizer.json files spell it)."""
    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(GPT2_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return tok


def _tokenizers() -> dict[str, Tokenizer]:
    out = {
        name: load_tokenizer(spec).tokenizer
        for name, spec in (("demo", str(DEMO_TOKENIZER)), ("gpt2", "gpt2"))
    }
    for name, tok in (("olmo-like", _olmo_like()), ("split-then-bytes", _split_then_bytes())):
        tok.encode_special_tokens = True  # as load_tokenizer sets it
        out[name] = tok
    return out


TOKENIZERS = _tokenizers()


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_piecewise_ids_are_whole_text_ids(name: str) -> None:
    """Random texts cut at every possible cut (piece size 1), or at random sizes, give the whole text's ids."""
    tok = TOKENIZERS[name]
    assert piecewise_blocker(tok) is None
    rng = random.Random(name)
    texts = [random_text(rng, rng.randrange(1, 400)) for _ in range(500)]
    for piece_chars in (1, 7, 64):
        encoder = Encoder(tok, 0, np.uint32, piece_chars=piece_chars, batch_chars=rng.randrange(1, 500))
        assert piecewise_ids(encoder, texts) == [whole_ids(tok, t, 0) for t in texts], piece_chars
    assert sum(len(list(cuts(t, 1))) - 1 for t in texts) > 10_000  # the cuts really were exercised


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_every_cut_is_a_pre_token_boundary(name: str) -> None:
    """The proof's claim itself, whatever merges the vocabulary has: the pre-tokens of the (normalized) pieces
    are those of the whole text (ids alone could agree by luck where no merge joins across a bad cut)."""
    tok = TOKENIZERS[name]
    normalize = tok.normalizer.normalize_str if tok.normalizer else str
    pre = tok.pre_tokenizer.pre_tokenize_str
    rng = random.Random(name)
    for _ in range(500):
        text = random_text(rng, rng.randrange(1, 200))
        pieces = [normalize(text[a:b]) for a, b in cuts(text, 1)]
        assert "".join(pieces) == normalize(text)
        assert [p for piece in pieces for p, _ in pre(piece)] == [p for p, _ in pre(normalize(text))], text


@pytest.mark.parametrize("name", ["demo", "gpt2"])
def test_long_random_text(name: str) -> None:
    tok = TOKENIZERS[name]
    rng = random.Random(7)
    text = random_text(rng, 60_000)
    encoder = Encoder(tok, 0, np.uint32, piece_chars=500, batch_chars=2_000)
    pieces = list(cuts(text, 500))
    assert len(pieces) > 100 and all(b - a >= 500 for a, b in pieces[:-1])
    assert "".join(text[a:b] for a, b in pieces) == text
    assert piecewise_ids(encoder, [text]) == [whole_ids(tok, text, 0)]


def test_cuts_only_before_a_space_or_newline_after_a_non_space() -> None:
    text = "ab  cd\n\nef\tgh\xa0 ij\u180e kl mn"
    starts = [a for a, _ in cuts(text, 1)][1:]
    assert [text[i - 1 : i + 1] for i in starts] == ["b ", "d\n", "l "]
    assert list(cuts("x" * 100, 10)) == [(0, 100)]  # no cut: one piece
    assert list(cuts("", 10)) == [(0, 0)]


def test_no_character_normalizes_into_whitespace() -> None:
    """The NFC half of the proof: a character that is not whitespace never normalizes to (or holds)
    whitespace, and whitespace characters are starters (never reordered past a cut)."""
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code < 0xE000:
            continue
        char = chr(code)
        if char.isspace():
            assert unicodedata.combining(char) == 0, hex(code)
        else:
            assert not any(c.isspace() for c in unicodedata.normalize("NFD", char)), hex(code)
            assert not any(c.isspace() for c in unicodedata.normalize("NFC", char)), hex(code)


def _variant(**parts: object) -> Tokenizer:
    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    for name, value in parts.items():
        setattr(tok, name, value)
    return tok


def _with_added(token: AddedToken) -> Tokenizer:
    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    tok.add_tokens([token])
    return tok


REFUSED = {
    "prefix space": _variant(pre_tokenizer=pre_tokenizers.ByteLevel(add_prefix_space=True)),
    "no regex": _variant(pre_tokenizer=pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)),
    "whitespace split": _variant(pre_tokenizer=pre_tokenizers.Whitespace()),
    "NFKC": _variant(normalizer=normalizers.NFKC()),
    "lowercase": _variant(normalizer=normalizers.Lowercase()),
    "template": _variant(
        post_processor=processors.TemplateProcessing(
            single="<|padding|> $A", special_tokens=[("<|padding|>", 1)]
        )
    ),
    "token with a space": _with_added(AddedToken("board cake", normalized=False)),
    "rstrip token": _with_added(AddedToken("cake", rstrip=True)),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unverified_tokenizers_encode_whole_texts(name: str) -> None:
    """A tokenizer the proof does not cover is named and encoded whole: the ids never change."""
    tok = REFUSED[name]
    assert piecewise_blocker(tok)
    encoder = Encoder(tok, 0, np.uint32, piece_chars=1, batch_chars=1)
    assert encoder.piece_chars == 0
    rng = random.Random(name)
    texts = [random_text(rng, 200) + " board cake now" for _ in range(20)]
    assert piecewise_ids(encoder, texts) == [whole_ids(tok, t, 0) for t in texts]


def test_the_added_token_check_matters() -> None:
    """Cutting inside an added token would change ids: the reason such tokenizers are refused."""
    tok = REFUSED["token with a space"]
    text = "a board cake"
    naive = [i for a, b in cuts(text, 1) for i in tok.encode(text[a:b]).ids]
    assert naive != tok.encode(text).ids


def test_olmo_tokenizer_is_cut() -> None:
    """The parts of OLMo's allenai_gpt-neox-olmo-dolma-v1_5.json that the check reads, as published (its
    vocabulary and merges aside): NFC, GPT-2's ByteLevel, runs of 2-24 spaces and PII masks as added tokens."""

    def added(token_id: int, content: str, special: bool = False) -> dict:
        flags = {"single_word": False, "lstrip": False, "rstrip": False}
        return {"id": token_id, "content": content, **flags, "normalized": not special, "special": special}

    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    spec = {
        "truncation": None,
        "padding": None,
        "added_tokens": [
            added(0, "|||IP_ADDRESS|||"),
            added(1, "<|padding|>", special=True),
            *[added(50278 - n, " " * n) for n in range(24, 1, -1)],
            added(50277, "|||EMAIL_ADDRESS|||"),
            added(50278, "|||PHONE_NUMBER|||"),
            added(50279, "<|endoftext|>", special=True),
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "fuse_unk": False,
            "byte_fallback": False,
        },
    }
    assert spec_blocker(spec) is None
    spec["added_tokens"].append(added(50280, "a b"))
    assert "'a b'" in (spec_blocker(spec) or "")
