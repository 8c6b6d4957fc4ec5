"""Train a byte-level BPE tokenizer on document shards (`dolma-kit train-tokenizer`).

Byte-level (GPT-2's scheme): every byte has a token, so any text encodes and decodes back exactly, and no
`<unk>` exists. Documents stream from the shards through an iterator (memory stays flat in corpus size;
`tokenizers` keeps only word counts). Reserved tokens get the first ids, in this order: `<|endoftext|>`
(EOS, id 0), `<|padding|>` (PAD, id 1), then the PII masks that `mix` writes (`|||EMAIL_ADDRESS|||`,
`|||PHONE_NUMBER|||`, `|||IP_ADDRESS|||`), so a masked span is always one token. EOS and PAD are special
tokens (never produced from text); the masks are ordinary added tokens, matched whole wherever they appear.

Determinism: the trainer runs on word counts, which do not depend on document order or thread count;
`--sample` selects documents by a seeded hash of (source, id), independent of order and processes too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import xxhash
from rich.text import Text
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from dolma_kit import storage
from dolma_kit.documents import read_documents
from dolma_kit.errors import DolmaKitError
from dolma_kit.stages import Outcome, Stage

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|padding|>"
PII_MASKS = ("|||EMAIL_ADDRESS|||", "|||PHONE_NUMBER|||", "|||IP_ADDRESS|||")
RESERVED = (EOS_TOKEN, PAD_TOKEN, *PII_MASKS)


@dataclass(kw_only=True)
class TrainTokenizerConfig:
    """Everything `train-tokenizer` needs; the CLI fills it."""

    documents: list[str]
    """Document shards: paths, globs, URLs."""
    vocab_size: int
    """Total ids, reserved tokens and the 256 byte tokens included."""
    output: str
    """Where tokenizer.json is written (atomically)."""
    min_frequency: int = 2
    """A pair must occur this often to be merged."""
    sample: float = 1.0
    """Fraction of documents to train on, chosen by a seeded hash of (source, id)."""
    seed: int = 0
    extra_special_tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TrainResult:
    output: str
    vocab_size: int
    documents: int
    characters: int


def _sampled(seed: int, source: str, doc_id: str, fraction: float) -> bool:
    if fraction >= 1.0:
        return True
    h = xxhash.xxh3_64_intdigest(f"{source}\x00{doc_id}".encode(), seed=seed)
    return h < fraction * 2**64


def _texts(config: TrainTokenizerConfig, counts: dict[str, int]) -> Iterator[str]:
    for info in storage.expand(config.documents):
        for doc in read_documents(info.path):
            if doc.text and _sampled(config.seed, doc.source, doc.id, config.sample):
                counts["documents"] += 1
                counts["characters"] += len(doc.text)
                yield doc.text


def _mark_masks_not_special(tok: Tokenizer) -> Tokenizer:
    """The trainer makes every reserved token special; PII masks must stay matchable in text (see module doc)."""
    data = json.loads(tok.to_str())
    for added in data["added_tokens"]:
        if added["content"] in PII_MASKS:
            added["special"] = False
    return Tokenizer.from_str(json.dumps(data))


def train_tokenizer(config: TrainTokenizerConfig) -> TrainResult:
    """Train, check the reserved ids, and write the tokenizer.json; the same inputs give the same bytes."""
    reserved = [*RESERVED, *config.extra_special_tokens]
    minimum = 256 + len(reserved)
    if config.vocab_size < minimum:
        raise DolmaKitError(f"--vocab-size {config.vocab_size} is below {minimum} (256 bytes + reserved)")
    if not 0.0 < config.sample <= 1.0:
        raise DolmaKitError(f"--sample {config.sample} must be in (0, 1]")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=reserved,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    counts = {"documents": 0, "characters": 0}
    tok.train_from_iterator(_texts(config, counts), trainer=trainer)
    if counts["documents"] == 0:
        raise DolmaKitError("no documents to train on (all empty, or --sample too small)")
    tok = _mark_masks_not_special(tok)
    for expected_id, token in enumerate(reserved):
        assert tok.token_to_id(token) == expected_id, (token, tok.token_to_id(token))
    text = tok.to_str(pretty=True)
    storage.write_text(config.output, text + "\n")
    return TrainResult(config.output, tok.get_vocab_size(), counts["documents"], counts["characters"])


# --------------------------------------------------------------------------------------------- stage


def _render(config: TrainTokenizerConfig, result: TrainResult) -> list[Any]:
    out = [
        f"trained on {result.documents:,} documents ({result.characters:,} characters) → {result.output}: "
        f"{result.vocab_size:,} ids",
        Text("reserved: " + ", ".join(f"{i} {token}" for i, token in enumerate(RESERVED))),
    ]
    if result.vocab_size < config.vocab_size:
        out.append(f"[yellow]the corpus supports only {result.vocab_size:,} of {config.vocab_size:,} ids[/]")
    return out


def _outcome(config: TrainTokenizerConfig, result: TrainResult) -> Outcome:
    extra = {"documents": result.documents, "characters": result.characters, "vocab_size": result.vocab_size}
    return Outcome(None, {**extra, "output": config.output})


STAGE = Stage(
    name="train-tokenizer",
    config=TrainTokenizerConfig,
    run=train_tokenizer,
    outcome=_outcome,
    render=_render,
    proofs=lambda config: [config.output],
    note=lambda e, c: (
        f"{e['vocab_size']:,} ids from {e['documents']:,} documents" if "vocab_size" in e else ""
    ),
)
