"""The tokenizer is loaded once: by the forkserver for every worker, by the driver for shards run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolma_kit.tokenize import stage
from dolma_kit.tokenize.loading import load_tokenizer
from tests.conftest import DEMO_TOKENIZER
from tests.tokenize.test_tokenize import make_corpus, run

TEXT = "The river mill's ovens, 1987: naïve flour — sacks by the tram window.\n"


def _settings(sha256: str) -> stage._Settings:
    loaded = load_tokenizer(str(DEMO_TOKENIZER))
    return stage._Settings(
        tokenizer=str(DEMO_TOKENIZER), tokenizer_sha256=sha256, eos_id=loaded.eos_id, pad_id=loaded.pad_id,
        dtype="uint16", seed=0, max_tokens_per_file=1 << 20, shuffle_window=10, shuffle_window_tokens=1 << 20,
        strip=True, encode_special_tokens=False, bos_id=None, post_processor=True, unique_ids=False,
    )  # fmt: skip


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Empty per-process caches, as in a forkserver that has just imported the stage."""
    monkeypatch.setattr(stage, "_LOADED", {})
    monkeypatch.setattr(stage, "_PREPARED", set())


def _no_load(*args: object, **kwargs: object) -> None:
    raise AssertionError("the tokenizer was loaded again")


def test_workers_use_the_forkservers_tokenizer(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(load_tokenizer(str(DEMO_TOKENIZER)).sha256)
    with stage._preloading(settings):
        stage._preload()
    assert stage.os.environ.get(stage.PRELOAD_VARIABLE) is None  # not left for later commands
    monkeypatch.setattr(stage, "load_tokenizer", _no_load)
    loaded = stage._tokenizer(settings, threads=1)
    assert loaded.tokenizer.encode_special_tokens is False  # the run's rule, set before forking
    plain = load_tokenizer(str(DEMO_TOKENIZER)).tokenizer  # default BPE cache: the same ids
    plain.encode_special_tokens = False
    assert loaded.tokenizer.encode(TEXT).ids == plain.encode(TEXT).ids


def test_a_changed_tokenizer_file_is_not_preloaded(fresh: None) -> None:
    with stage._preloading(_settings("0" * 64)):  # not the file's sha256: the file changed since the check
        stage._preload()
    assert stage._LOADED == {}


def test_shards_in_the_drivers_process_reuse_its_tokenizer(
    fresh: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = stage.load_tokenizer

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stage, "load_tokenizer", counting)
    manifest = run(make_corpus(tmp_path), tmp_path / "out", processes=1)
    assert manifest["documents"] > 0 and len(calls) == 1
