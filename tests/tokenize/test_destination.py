"""A tokenize destination across runs and versions: the lock covers publish, an older version's settings,
resolvable `src`, `--unique-ids`, and a folder missing index files."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.executor import DestinationInUse
from dolma_kit.executor.lock import destination_locks
from dolma_kit.provenance import ProvenanceError, TokenizedDir
from dolma_kit.tokenize import publish as tokenize_publish
from dolma_kit.tokenize import stage as tokenize_stage
from dolma_kit.tokenize.stage import TokenizeConfig, tokenize
from tests.conftest import DEMO_TOKENIZER, write_lines


def corpus(root: Path) -> list[str]:
    a = write_lines(root / "documents" / "web" / "a.jsonl",
                    [{"id": "x", "text": "the river"}, {"id": "y", "text": "the mill"},
                     {"id": "x", "text": "the river again"}])  # fmt: skip
    b = write_lines(root / "documents" / "web" / "b.jsonl",
                    [{"id": "y", "text": "cake"}, {"id": "z", "text": "tram"}])  # fmt: skip
    c = write_lines(root / "documents" / "wiki" / "c.jsonl", [{"id": "x", "text": "board"}])
    return [str(a), str(b), str(c)]


def run(documents: list[str], destination: Path, **options) -> dict:
    options.setdefault("processes", 1)
    config = TokenizeConfig(documents=documents, destination=str(destination), tokenizer=str(DEMO_TOKENIZER),
                            **options)  # fmt: skip
    return tokenize(config)[1]


def test_publish_runs_under_the_destination_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = corpus(tmp_path)
    seen = []
    real = tokenize_stage.publish

    def publish(destination: str, *args):
        with pytest.raises(DestinationInUse), destination_locks([destination]):
            pass  # another run cannot take the destination while this one publishes
        seen.append(destination)
        return real(destination, *args)

    monkeypatch.setattr(tokenize_stage, "publish", publish)
    run(documents, tmp_path / "out")
    assert seen == [str(tmp_path / "out")]
    with destination_locks([str(tmp_path / "out")]), pytest.raises(DestinationInUse):
        run(documents, tmp_path / "out", force=True)


def test_an_older_destination_without_the_new_settings_is_resumed(tmp_path: Path) -> None:
    documents = corpus(tmp_path)
    out = tmp_path / "out"
    run(documents, out)
    before = {p.name: p.read_bytes() for p in out.glob("part-*")}
    settings = out / "_work" / "settings.json"
    old = json.loads(settings.read_text())
    for key in (
        "shuffle_window_tokens",
        "strip",
        "encode_special_tokens",
        "bos_id",
        "post_processor",
        "unique_ids",
    ):
        old.pop(key, None)  # what the version before these settings recorded
    settings.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
    run(documents, out)  # no --force needed: every missing setting, as asked, changes nothing
    assert {p.name: p.read_bytes() for p in out.glob("part-*")} == before
    settings.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
    with pytest.raises(DolmaKitError, match="other settings"):
        run(documents, out, strip=True)  # a new setting that would change the bytes still needs --force
    settings.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
    with pytest.raises(DolmaKitError, match="other settings"):  # a finished shard reached the bound
        run(documents, out, shuffle_window_tokens=3)


def test_src_is_absolute_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus(tmp_path)
    monkeypatch.chdir(tmp_path)
    run(["documents/web/a.jsonl"], tmp_path / "out")
    monkeypatch.chdir("/")
    tokenized = TokenizedDir.open(tmp_path / "out")
    (location,) = [loc for loc in tokenized.find_document("y")]
    assert location.src == str(tmp_path / "documents" / "web" / "a.jsonl") and os.path.isfile(location.src)
    with gzip.open(tmp_path / "out" / "part-00000.csv.gz", "rt") as fh:
        assert {line.split(",")[3] for line in fh} == {location.src}


def test_unique_ids_strict_names_the_second_occurrence(tmp_path: Path) -> None:
    documents = corpus(tmp_path)
    with pytest.raises(
        BadRecordError, match=r"a\.jsonl:3: id repeated within its source .*first at .*a\.jsonl:1"
    ):
        run(documents, tmp_path / "strict", unique_ids=True)
    assert not (tmp_path / "strict" / "manifest.json").exists()
    assert run(documents, tmp_path / "plain")["repeated_ids"] == {"web": 2}


def test_unique_ids_with_skip_bad_rejects_each_repeat(tmp_path: Path) -> None:
    documents = corpus(tmp_path)
    manifest = run(documents, tmp_path / "out", unique_ids=True, skip_bad=True, processes=2)
    assert (manifest["documents"], manifest["rejected_documents"], manifest["input_documents"]) == (4, 2, 6)
    assert (
        manifest["repeated_ids"] == {} and manifest["per_source"]["wiki"]["documents"] == 1
    )  # x in wiki stays
    rejects = {}
    for path in (tmp_path / "out" / "rejects").rglob("*.jsonl.gz"):
        with gzip.open(path, "rt") as fh:
            rejects[path.name] = [json.loads(line) for line in fh]
    assert {k: [(r["line"], r["reason"].split(" (")[0]) for r in v] for k, v in rejects.items()} == {
        "a.jsonl.gz": [(3, "id 'x' repeated in source 'web'")],
        "b.jsonl.gz": [(1, "id 'y' repeated in source 'web'")],
    }
    assert (
        "first at" in rejects["b.jsonl.gz"][0]["reason"] and "a.jsonl:2" in rejects["b.jsonl.gz"][0]["reason"]
    )
    assert [loc.loc for loc in TokenizedDir.open(tmp_path / "out").find_document("y", "web")] == [2]


def test_a_manifest_missing_index_files_is_a_clear_error(tokenized_demo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tokenized_demo, copy)
    (copy / "part-00001.starts.npy").unlink()
    (copy / "id_index.hashes.npy").unlink()
    with pytest.raises(ProvenanceError, match=r"missing: part-00001\.starts\.npy, id_index\.hashes\.npy"):
        TokenizedDir.open(copy)


def test_publish_is_still_idempotent_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = corpus(tmp_path)
    monkeypatch.setattr(
        tokenize_publish, "build_id_index", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        run(documents, tmp_path / "out")
    monkeypatch.undo()
    assert run(documents, tmp_path / "out")["documents"] == 6
    assert not (tmp_path / "out" / ".dolma-kit.lock").exists()


def test_the_sweep_knows_storages_temp_names(tmp_path: Path) -> None:
    """One definition of a temp file's name (`storage.TEMP_NAME`): what `atomic_write` writes is what the
    tokenize sweep (and `storage.remove_stale_temps`) recognise, pid included."""
    from dolma_kit import storage

    target = tmp_path / "manifest.json"
    with storage.atomic_write(str(target)) as fh:
        fh.write(b"{}")
        (temp,) = [p for p in tmp_path.iterdir() if p.name != "manifest.json"]
        match = storage.TEMP_NAME.match(temp.name)
        assert match is not None and match["target"] == "manifest.json" and int(match["pid"]) == os.getpid()
