"""Dolma's `tokens` behaviour on request: `--strip`, its special-token rule, BOS, and its config keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer
from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.config import ConfigError
from dolma_kit.provenance import TokenizedDir
from dolma_kit.tokenize.dolma import translate
from dolma_kit.tokenize.stage import TokenizeConfig, tokenize
from tests.conftest import DEMO_TOKENIZER, write_lines

TEXTS = [
    "  leading spaces and a trailing newline\n",
    "\n\n\tthe river\u00a0 \u2003",  # Unicode whitespace at the end: str.strip() removes it too
    "no padding at all",
    "an <|endoftext|> written in the middle",
]


def by_id(out: Path) -> dict[str, list[int]]:
    tokenized = TokenizedDir.open(out)
    ids: dict[str, list[int]] = {}
    for i, name in enumerate(tokenized.parts):
        tokens = tokenized.tokens(i)
        for row in pq.read_table(out / f"{name}.index.parquet").to_pylist():
            ids[row["id"]] = tokens[row["start"] : row["end"]].tolist()
    return ids


def dolma_ids(text: str, tok: Tokenizer, eos: int, bos: int | None = None) -> list[int]:
    """What `dolma tokens` 1.2.1 writes for a text (facts from its tokenizer.py): encode `text.strip()`
    without the post-processor, specials recognised, then BOS unless first and EOS unless last."""
    tok.encode_special_tokens = False
    ids = tok.encode(text.strip(), add_special_tokens=False).ids
    if bos is not None and ids[0] != bos:
        ids.insert(0, bos)
    return [*ids, eos] if ids[-1] != eos else ids


@pytest.fixture
def shard(tmp_path: Path) -> Path:
    rows = [{"id": f"d{i}", "text": t} for i, t in enumerate(TEXTS)]
    return write_lines(tmp_path / "documents" / "web" / "0.jsonl", rows)


def test_strip_and_specials_give_dolmas_ids(shard: Path, tmp_path: Path) -> None:
    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    run = {"documents": [str(shard)], "tokenizer": str(DEMO_TOKENIZER), "processes": 1}
    tokenize(TokenizeConfig(destination=str(tmp_path / "plain"), **run))
    tokenize(
        TokenizeConfig(destination=str(tmp_path / "dolma"), strip=True, encode_special_tokens=False, **run)
    )
    plain, dolma = by_id(tmp_path / "plain"), by_id(tmp_path / "dolma")
    for i, text in enumerate(TEXTS):
        assert dolma[f"d{i}"] == dolma_ids(text, tok, 0)
        tok.encode_special_tokens = True
        assert plain[f"d{i}"] == [
            *tok.encode(text).ids,
            0,
        ]  # the default: the text as it is, specials as text
    assert plain["d0"] != dolma["d0"] and dolma["d3"].count(0) == 2  # Dolma's EOS inside the text


def test_strip_bounds_are_found_in_pieces(tmp_path: Path) -> None:
    """A long text is cut into pieces; stripping it in place gives the ids of encoding `text.strip()` whole."""
    text = " \n " + " ".join(f"word{i % 97}\n" if i % 13 == 0 else f"w{i}" for i in range(3000)) + " \n\t "
    shard = write_lines(tmp_path / "documents" / "web" / "0.jsonl", [{"id": "long", "text": text}])
    tokenize(TokenizeConfig(documents=[str(shard)], destination=str(tmp_path / "o"),
                            tokenizer=str(DEMO_TOKENIZER), processes=1, strip=True, piece_chars=500))  # fmt: skip
    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    tok.encode_special_tokens = True
    assert by_id(tmp_path / "o")["long"] == [*tok.encode(text.strip()).ids, 0]


def test_bos_is_put_first_once(shard: Path, tmp_path: Path) -> None:
    tokenize(TokenizeConfig(documents=[str(shard)], destination=str(tmp_path / "b"), processes=1,
                            tokenizer=str(DEMO_TOKENIZER), bos_id=1))  # fmt: skip
    assert all(ids[0] == 1 and ids[1] != 1 and ids[-1] == 0 for ids in by_id(tmp_path / "b").values())


def write_config(path: Path, data: dict) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_a_dolma_tokens_config_runs_as_is(shard: Path, tmp_path: Path) -> None:
    config = {
        "documents": [str(shard)],
        "destination": str(tmp_path / "out"),
        "tokenizer": {"name_or_path": str(DEMO_TOKENIZER), "eos_token_id": 0, "pad_token_id": 1},
        "processes": 1,
        "batch_size": 2,
        "max_size": 1000,
        "ring_size": 8,
        "seed": 3920,
        "work_dir": {"input": "/tmp/x", "output": "/tmp/y"},
    }
    result = CliRunner().invoke(app, ["tokenize-dolma", write_config(tmp_path / "tokens.json", config)])
    assert result.exit_code == 0, result.output
    manifest = TokenizedDir.open(tmp_path / "out").manifest
    assert (manifest["shuffle_window"], manifest["max_tokens_per_file"], manifest["seed"]) == (2, 999, 3920)
    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    ids = by_id(tmp_path / "out")
    assert all(ids[f"d{i}"] == dolma_ids(t, tok, 0) for i, t in enumerate(TEXTS))
    # dryrun prints the resolved keys and writes nothing
    config.update(destination=str(tmp_path / "dry"), dryrun=True)
    dry = CliRunner().invoke(app, ["tokenize-dolma", write_config(tmp_path / "dry.json", config)])
    assert dry.exit_code == 0 and '"strip": true' in dry.output and not (tmp_path / "dry").exists()


def test_the_deprecated_tokenizer_key_takes_dolmas_legacy_eos(tmp_path: Path) -> None:
    """Dolma's `tokenizer_name_or_path` sets EOS to the last id; the demo tokenizer's last id is no special
    token, so the id check says so instead of writing a corpus without boundaries."""
    keys, _ = translate("t.yaml", {"tokenizer_name_or_path": str(DEMO_TOKENIZER), "documents": ["x"]})
    assert keys["eos_id"] == len(Tokenizer.from_file(str(DEMO_TOKENIZER)).get_vocab()) - 1
    assert keys["strip"] is True and keys["encode_special_tokens"] is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"tokenizer": {"name_or_path": "allenai/gpt-neox-olmo-dolma-v1_5"}}, "not downloaded"),
        ({"tokenizer": {"name_or_path": str(DEMO_TOKENIZER), "segment_before_tokenization": True}},
         "not reproduced"),
        ({"fields": {"text_field_name": "body"}}, "`text` field only"),
        ({"tokenizer": {"name_or_path": str(DEMO_TOKENIZER), "colour": 1}}, "not a `dolma tokens` key"),
        ({"no_such_key": 1}, "not a `dolma tokens` key"),
    ],
)  # fmt: skip
def test_what_would_change_ids_is_a_positioned_error(tmp_path: Path, extra: dict, message: str) -> None:
    data = {
        "documents": ["x"],
        "destination": "y",
        "tokenizer": {"name_or_path": str(DEMO_TOKENIZER)},
        **extra,
    }
    path = tmp_path / "tokens.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    from dolma_kit.config import load_yaml

    with pytest.raises(ConfigError, match=message) as info:
        translate(str(path), load_yaml(str(path)))
    assert str(path) in str(info.value)
    result = CliRunner().invoke(app, ["tokenize-dolma", str(path)])
    assert result.exit_code != 0


def test_strip_is_a_setting_of_the_destination(shard: Path, tmp_path: Path) -> None:
    run = {"documents": [str(shard)], "destination": str(tmp_path / "o"), "tokenizer": str(DEMO_TOKENIZER)}
    tokenize(TokenizeConfig(processes=1, **run))
    with pytest.raises(Exception, match="other settings"):
        tokenize(TokenizeConfig(processes=1, strip=True, **run))
    assert np.array_equal(
        np.memmap(tmp_path / "o" / "part-00000.npy", dtype=np.uint16, mode="r")[-1:], np.array([0])
    )


def test_dolma_runs_no_post_processor(shard: Path, tmp_path: Path) -> None:
    """A template post-processor (Llama-style) adds its BOS when we encode; Dolma encodes without it and adds
    only `bos_token_id`: `post_processor: false` (what tokenize-dolma sets) writes Dolma's ids."""
    from tokenizers import processors

    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    tok.post_processor = processors.TemplateProcessing(
        single="<|padding|> $A", special_tokens=[("<|padding|>", 1)]
    )
    path = tmp_path / "template.json"
    tok.save(str(path))
    run = {"documents": [str(shard)], "tokenizer": str(path), "processes": 1, "strip": True}
    tokenize(TokenizeConfig(destination=str(tmp_path / "ours"), **run))
    tokenize(TokenizeConfig(destination=str(tmp_path / "dolma"), post_processor=False, **run))
    ours, dolma = by_id(tmp_path / "ours"), by_id(tmp_path / "dolma")
    tok.encode_special_tokens = True
    for i, text in enumerate(TEXTS):
        assert ours[f"d{i}"][0] == 1 and dolma[f"d{i}"][0] != 1
        assert dolma[f"d{i}"] == [*tok.encode(text.strip(), add_special_tokens=False).ids, 0]
    keys, _ = translate("t.yaml", {"tokenizer": {"name_or_path": str(path)}})
    assert keys["post_processor"] is False
