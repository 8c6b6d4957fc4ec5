"""train-tokenizer (reserved tokens, determinism) and tokenizer loading (gpt2 offline, EOS/PAD validation)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.errors import DolmaKitError
from dolma_kit.tokenize.loading import load_tokenizer
from dolma_kit.tokenize.training import PII_MASKS, RESERVED, TrainTokenizerConfig, train_tokenizer
from tests.conftest import CORPUS, DEMO_TOKENIZER

DEMO_GLOB = str(CORPUS / "documents" / "*" / "*.jsonl")


def test_train_reserves_specials_and_is_deterministic(tmp_path: Path) -> None:
    runner = CliRunner()
    outputs = []
    for name in ("a.json", "b.json"):
        args = [
            "train-tokenizer",
            "--documents",
            DEMO_GLOB,
            "--vocab-size",
            "600",
            "--output",
            str(tmp_path / name),
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    tok = Tokenizer.from_file(str(tmp_path / "a.json"))
    assert tok.get_vocab_size() == 600
    assert [tok.token_to_id(t) for t in RESERVED] == [0, 1, 2, 3, 4]
    loaded = load_tokenizer(str(tmp_path / "a.json"))
    assert (loaded.eos_id, loaded.pad_id) == (0, 1)
    text = f"write to {PII_MASKS[0]} or call {PII_MASKS[1]} from {PII_MASKS[2]}."
    ids = loaded.tokenizer.encode(text).ids
    assert [i for i in ids if i < 5] == [2, 3, 4]  # each mask is one whole token
    assert loaded.tokenizer.decode(ids, skip_special_tokens=False) == text


def test_eos_written_in_text_is_not_an_eos(tmp_path: Path) -> None:
    """Only tokenize appends EOS: the literal string in a document stays text (boundaries stay exact)."""
    loaded = load_tokenizer(str(DEMO_TOKENIZER))
    ids = loaded.tokenizer.encode("end <|endoftext|> here").ids
    assert loaded.eos_id not in ids and loaded.pad_id not in ids
    assert loaded.tokenizer.decode(ids) == "end <|endoftext|> here"


def test_train_sample_and_errors(tmp_path: Path) -> None:
    config = TrainTokenizerConfig(documents=[DEMO_GLOB], vocab_size=270, output=str(tmp_path / "t.json"))
    with pytest.raises(DolmaKitError, match="below 261"):
        train_tokenizer(
            TrainTokenizerConfig(documents=[DEMO_GLOB], vocab_size=200, output=str(tmp_path / "x"))
        )
    half = train_tokenizer(replace(config, sample=0.5, seed=3))
    assert 0 < half.documents < 12
    assert train_tokenizer(config).documents == 12


def test_gpt2_is_built_offline_from_the_shipped_vocabulary() -> None:
    loaded = load_tokenizer("gpt2")
    assert (loaded.vocab_size, loaded.eos_id, loaded.eos_token, loaded.pad_id) == (
        50257,
        50256,
        "<|endoftext|>",
        None,
    )
    assert loaded.tokenizer.encode("Hello world").ids == [15496, 995]  # GPT-2's published ids
    assert loaded.tokenizer.decode(loaded.tokenizer.encode(" naïve café\n\tx").ids) == " naïve café\n\tx"


def test_eos_and_pad_ids_are_validated(tmp_path: Path) -> None:
    with pytest.raises(DolmaKitError, match="not a special token"):
        load_tokenizer(str(DEMO_TOKENIZER), eos_id=300)
    with pytest.raises(DolmaKitError, match="outside the vocabulary"):
        load_tokenizer(str(DEMO_TOKENIZER), eos_id=50279)
    assert load_tokenizer(str(DEMO_TOKENIZER), eos_id=1).eos_id == 1
    no_eos = json.loads(DEMO_TOKENIZER.read_text())
    no_eos["added_tokens"] = [t for t in no_eos["added_tokens"] if t["content"] != "<|endoftext|>"]
    (tmp_path / "no_eos.json").write_text(json.dumps(no_eos))
    with pytest.raises(DolmaKitError, match="no EOS token found"):
        load_tokenizer(str(tmp_path / "no_eos.json"))
    with pytest.raises(DolmaKitError, match="nothing is downloaded"):
        load_tokenizer("allenai/gpt-neox-olmo-dolma-v1_5")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DolmaKitError, match=r"not a tokenizers tokenizer\.json"):
        load_tokenizer(str(tmp_path / "bad.json"))
