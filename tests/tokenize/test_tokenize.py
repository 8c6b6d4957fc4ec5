"""`dolma-kit tokenize`: round trip, the on-disk format, determinism, resume, bad input."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer
from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.documents import Document, DocumentWriter
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.provenance import TokenizedDir
from dolma_kit.tokenize import publish as tokenize_publish
from dolma_kit.tokenize.stage import TokenizeConfig, tokenize
from tests.conftest import DEMO_TOKENIZER, corpus_documents, write_lines

WORDS = [
    "the",
    "river",
    "bakery",
    "forum",
    "build",
    "cache",
    "mill",
    "flour",
    "ovens",
    "tram",
    "window",
    "origin",
    "sack",
    "board",
    "cake",
]


def make_corpus(root: Path, shards: int = 3, docs: int = 40) -> str:
    """Shards in two sources with documents of varied length (and one empty one); returns the glob."""
    for shard in range(shards):
        source = "alpha" if shard % 2 == 0 else "beta"
        with DocumentWriter(str(root / "documents" / source / f"part-{shard:04d}.jsonl.gz")) as out:
            for i in range(docs):
                words = [WORDS[(i * 7 + j * 3 + shard) % len(WORDS)] for j in range(3 + (i * 5) % 37)]
                text = "" if i == 5 else " ".join(words) + f". Number {shard}-{i}."
                out.write(Document(id=f"{source}-{shard}-{i}", text=text, source=source))
    return str(root / "documents" / "*" / "*.jsonl.gz")


def run(documents: str, destination: Path, **options) -> dict:
    options.setdefault("processes", 1)
    _, manifest = tokenize(
        TokenizeConfig(
            documents=[documents], destination=str(destination), tokenizer=str(DEMO_TOKENIZER), **options
        )
    )
    return manifest


def output_files(destination: Path) -> dict[str, bytes]:
    """Every published file (the work folder and the timed summary aside)."""
    return {
        p.name: p.read_bytes()
        for p in sorted(destination.iterdir())
        if p.is_file() and p.name != "tokenize_summary.json"
    }


def test_round_trip_and_raw_memmap(tokenized_demo: Path) -> None:
    """OLMo's reader (a headerless numpy.memmap) sees every document's text followed by EOS."""
    tokenized = TokenizedDir.open(tokenized_demo)
    tokenizer = Tokenizer.from_file(str(DEMO_TOKENIZER))
    texts = {(d.source, d.id): d.text for docs in corpus_documents().values() for d in docs}
    seen = set()
    for i, name in enumerate(tokenized.parts):
        tokens = np.memmap(tokenized_demo / f"{name}.npy", dtype=np.uint16, mode="r")
        assert len(tokens) == tokenized.num_tokens(i)
        for row in pq.read_table(tokenized_demo / f"{name}.index.parquet").to_pylist():
            ids = tokens[row["start"] : row["end"]].tolist()
            assert ids[-1] == tokenized.eos_id == 0
            assert tokenizer.decode(ids[:-1], skip_special_tokens=False) == texts[(row["source"], row["id"])]
            seen.add((row["source"], row["id"]))
    assert seen == set(texts)
    manifest = tokenized.manifest
    assert manifest["tokenizer"]["name"] == "demo-bpe.json" and len(manifest["tokenizer"]["sha256"]) == 64
    assert (manifest["vocab_size"], manifest["eos_id"], manifest["pad_id"], manifest["dtype"]) == (
        1024,
        0,
        1,
        "uint16",
    )
    assert {s: c["documents"] for s, c in manifest["per_source"].items()} == {"forum": 3, "web": 5, "wiki": 4}
    assert sum(c["tokens"] for c in manifest["per_source"].values()) == manifest["tokens"]


def test_csv_has_dolmas_columns(tokenized_demo: Path) -> None:
    """part-<n>.csv.gz: no header, start,end,id,src,loc per document (Dolma's MemmapMetadata order)."""
    for path in sorted(tokenized_demo.glob("part-*.csv.gz")):
        with gzip.open(path, "rt", newline="") as fh:
            rows = list(csv.reader(fh))
        index = pq.read_table(str(path).replace(".csv.gz", ".index.parquet")).to_pylist()
        expected = [[str(r["start"]), str(r["end"]), r["id"], r["src"], str(r["loc"])] for r in index]
        assert rows == expected and rows[0][0] == "0"


def test_same_bytes_for_any_processes_and_reruns(tmp_path: Path) -> None:
    documents = make_corpus(tmp_path)
    one = run(documents, tmp_path / "p1", max_tokens_per_file=500, shuffle_window=16)
    two = run(documents, tmp_path / "p2", max_tokens_per_file=500, shuffle_window=16, processes=2)
    assert one == two and len(one["parts"]) > 3
    assert output_files(tmp_path / "p1") == output_files(tmp_path / "p2")
    before = output_files(tmp_path / "p1")
    run(documents, tmp_path / "p1", max_tokens_per_file=500, shuffle_window=16)  # every shard skipped
    run(documents, tmp_path / "p1", max_tokens_per_file=500, shuffle_window=16, force=True)
    assert output_files(tmp_path / "p1") == before
    assert one["empty_documents_skipped"] == 3 and one["documents"] == 3 * 39
    assert all(p["tokens"] <= 500 for p in one["parts"])


def test_shuffle_is_seeded_within_each_file(tmp_path: Path) -> None:
    documents = make_corpus(tmp_path, shards=1)

    def order(seed: int) -> list[str]:
        assert TokenizedDir.open(tmp_path / f"s{seed}").parts == ["part-00000"]
        return [
            r["id"] for r in pq.read_table(tmp_path / f"s{seed}" / "part-00000.index.parquet").to_pylist()
        ]

    for seed in (0, 1):
        run(documents, tmp_path / f"s{seed}", seed=seed)
    ids = [f"alpha-0-{i}" for i in range(40) if i != 5]
    assert sorted(order(0)) == sorted(ids) and order(0) != ids and order(0) != order(1)


def test_resume_after_a_failed_shard_and_a_failed_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = make_corpus(tmp_path)
    clean = tmp_path / "clean"
    run(documents, clean, max_tokens_per_file=400)
    # a shard that fails half-way (a bad line), then is repaired
    shard = tmp_path / "documents" / "beta" / "part-0001.jsonl.gz"
    good = shard.read_bytes()
    shard.write_bytes(gzip.compress(gzip.decompress(good) + b"{broken\n"))
    resumed = tmp_path / "resumed"
    with pytest.raises(BadRecordError, match=r"part-0001.jsonl.gz:41: malformed JSON"):
        run(documents, resumed, max_tokens_per_file=400)
    assert not (resumed / "manifest.json").exists()
    shard.write_bytes(good)
    # then publish dies after moving the parts, before the id index and manifest
    monkeypatch.setattr(
        tokenize_publish, "build_id_index", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        run(documents, resumed, max_tokens_per_file=400)
    assert (resumed / "part-00000.npy").exists() and not (resumed / "manifest.json").exists()
    monkeypatch.undo()
    run(documents, resumed, max_tokens_per_file=400)
    assert output_files(resumed) == output_files(clean)
    with pytest.raises(DolmaKitError, match="other settings"):
        run(documents, resumed, max_tokens_per_file=300)


def test_skip_bad_counts_and_writes_rejects(tmp_path: Path) -> None:
    shard = write_lines(
        tmp_path / "documents" / "web" / "part-0000.jsonl",
        [
            {"id": "a", "text": "the river"},
            b"{oops",
            {"id": "b"},
            {"id": "c", "text": "  \n"},
            {"id": "d", "text": "cake"},
        ],
    )
    with pytest.raises(BadRecordError, match=r"part-0000.jsonl:2: malformed JSON"):
        run(str(shard), tmp_path / "strict")
    manifest = run(str(shard), tmp_path / "out", skip_bad=True)
    assert (manifest["documents"], manifest["rejected_documents"], manifest["empty_documents_skipped"]) == (
        2,
        2,
        1,
    )
    with gzip.open(tmp_path / "out" / "rejects" / "web" / "part-0000.jsonl.gz", "rt") as fh:
        assert [json.loads(line)["line"] for line in fh] == [2, 3]
    assert TokenizedDir.open(tmp_path / "out").find_document("d")[0].loc == 5


def test_dtype_follows_the_vocabulary(tmp_path: Path) -> None:
    """Over 65,536 ids: auto picks uint32, an explicit uint16 is refused (ids would wrap)."""
    big = json.loads(DEMO_TOKENIZER.read_text())
    vocab = big["model"]["vocab"]
    for i in range(70_000 - len(vocab)):
        vocab[f"<extra_{i}>"] = len(vocab)
    for added in big["added_tokens"]:
        added["id"] += 70_000
        vocab[added["content"]] = added["id"]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(big))
    shard = write_lines(
        tmp_path / "documents" / "web" / "part-0000.jsonl", [{"id": "a", "text": "the river"}]
    )
    config = TokenizeConfig(documents=[str(shard)], destination=str(tmp_path / "u16"), tokenizer=str(path))
    config.dtype = "uint16"
    with pytest.raises(DolmaKitError, match="uint16 cannot hold"):
        tokenize(config)
    config.dtype, config.destination, config.processes = "auto", str(tmp_path / "auto"), 1
    _, manifest = tokenize(config)
    tokenized = TokenizedDir.open(tmp_path / "auto")
    assert manifest["dtype"] == "uint32" and tokenized.tokens(0)[-1] == 70_000 == tokenized.eos_id


def test_cli_tokenize_then_provenance(tmp_path: Path) -> None:
    runner = CliRunner()
    documents = make_corpus(tmp_path, shards=2, docs=10)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "tokenize",
            "--documents",
            documents,
            "--destination",
            str(out),
            "--tokenizer",
            str(DEMO_TOKENIZER),
            "-p",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "alpha" in result.output and "beta" in result.output
    result = runner.invoke(app, ["provenance", str(out), "--doc", "beta-1-3", "--json"])
    assert result.exit_code == 0, result.output
    [found] = json.loads(result.output)
    assert (
        found["source"] == "beta" and found["loc"] == 4 and found["src"].endswith("beta/part-0001.jsonl.gz")
    )
    result = runner.invoke(
        app, ["provenance", str(out), "--token", f"{found['part']}:{found['end'] - 1}", "--json"]
    )
    assert json.loads(result.output) == [found]
    assert runner.invoke(app, ["provenance", str(out), "--doc", "nope"]).exit_code == 1
    assert runner.invoke(app, ["provenance", str(out), "--token", "0"]).exit_code != 0


@pytest.mark.parametrize("layout", ["{src}/{source}", "{src}/documents/{source}"])
def test_same_file_name_in_two_source_folders(tmp_path: Path, layout: str) -> None:
    """An explicit list (or an unquoted shell glob) of `web/part-0000…` and `code/part-0000…`: the keys keep
    the source folder, as tag's do, so the two files get their own chunks and both documents trace back."""
    inputs = []
    for src, source in (("a", "web"), ("b", "code")):
        path = tmp_path / layout.format(src=src, source=source) / "part-0000.jsonl.gz"
        with DocumentWriter(str(path)) as out:
            out.write(Document(id="doc", text=f"the {source} river", source=source))
            out.write(Document(id=f"{source}-2", text="cake", source=source))
        inputs.append(str(path))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["tokenize", "-d", *inputs, "--destination", str(out), "--tokenizer", str(DEMO_TOKENIZER)]
    )
    assert result.exit_code == 0, result.output
    tokenized = TokenizedDir.open(out)
    tokenizer = Tokenizer.from_file(str(DEMO_TOKENIZER))
    assert tokenized.manifest["sources"] == ["code", "web"] and len(tokenized.parts) == 2
    for path, source in zip(inputs, ("web", "code"), strict=True):
        [found] = tokenized.find_document("doc", source=source)
        assert (found.src, found.loc) == (path, 1)
        text = tokenizer.decode(tokenized.tokens(found.part)[found.start : found.end - 1].tolist())
        assert text == f"the {source} river"
        [second] = tokenized.find_document(f"{source}-2")
        assert (second.src, second.loc, second.source) == (path, 2, source)


def test_repeated_ids_are_counted_in_the_manifest_and_warned(tmp_path: Path) -> None:
    """Ids must be unique within a source: tokenize counts the later occurrences (from the id index it builds
    anyway) in `manifest.json` and prints a warning, never silently; the same id in two sources is fine."""
    write_lines(
        tmp_path / "documents" / "web" / "part-0000.jsonl",
        [{"id": "a", "text": "one two"}, {"id": "a", "text": "three"}],
    )
    write_lines(
        tmp_path / "documents" / "web" / "part-0001.jsonl",
        [{"id": "a", "text": "four"}, {"id": "b", "text": "five"}],
    )
    write_lines(tmp_path / "documents" / "wiki" / "part-0000.jsonl", [{"id": "a", "text": "six"}])
    result = CliRunner().invoke(
        app,
        ["tokenize", "-d", f"{tmp_path}/documents/*/*", "--destination", str(tmp_path / "tok"),
         "--tokenizer", str(DEMO_TOKENIZER), "-p", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, (result.exception, result.output)
    manifest = json.loads((tmp_path / "tok" / "manifest.json").read_text())
    assert manifest["repeated_ids"] == {"web": 2}
    assert "ids repeated within a source (web: 2 later occurrences)" in " ".join(result.output.split())
    assert len(TokenizedDir.open(str(tmp_path / "tok")).find_document("a", source="web")) == 3
