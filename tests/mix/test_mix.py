"""`mix` end to end on synthetic shards: sampling, determinism across process counts, resume, resharding,
formats, line alignment, and the summary counts."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from dolma_kit.documents import read_documents
from dolma_kit.errors import DolmaKitError
from dolma_kit.mix import rows
from dolma_kit.mix import stage as mix
from dolma_kit.mix.recipe import load_recipe
from tests.mix.helpers import output_bytes, read_output, whole, write_recipe, write_schema, write_source

SHARDS, PER_SHARD = 4, 100
NAMES = ["q__t__pass", "q__t__lang", "q__t__email"]


def make_corpus(root: Path) -> None:
    """400 documents in 4 shards; every 5th fails `pass`, every 7th has two emails, ids unique."""
    for shard in range(SHARDS):
        docs, rows = [], []
        for i in range(PER_SHARD):
            n = shard * PER_SHARD + i
            text = f"Document {n} says hello to a{n}@example.org and friends. " + "More words here. " * (
                n % 5
            )
            at = text.index(f"a{n}@")
            email = [[at, at + len(f"a{n}@example.org"), 1.0]]
            if n % 7 == 0:
                email.append([0, 8, 0.9])  # "Document" as a second (made-up) span
            docs.append({"id": f"d{n}", "text": text})
            rows.append({"q__t__pass": whole(text, 0.0 if n % 5 == 0 else 1.0), "q__t__lang": whole(text, 0.9), "q__t__email": email})  # fmt: skip
        write_source(root, "web", docs, {"q": rows}, shard=f"part-{shard:04d}")
    write_schema(root, "q", NAMES)


def recipe_text(root: Path, out: str, *, sample: float = 1.0, extra: str = "", max_bytes: int = 10**9) -> str:
    return f"""
streams:
  - name: web
    documents: ["{root}/documents/web/*.jsonl.gz"]
    attributes: [q]
    filter:
      exclude:
        - t.pass == 0
        - name: two emails
          expr: count(t.email) >= 2
    replace:
      - {{attribute: t.email, replacement: "|||EMAIL_ADDRESS|||"}}
    sample: {sample}
    seed: 3
    output: {{path: "{root}/{out}", max_bytes: {max_bytes}{extra}}}
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mix")
    make_corpus(root)
    return root


def run(root: Path, name: str, text: str, **kw: object) -> mix.MixResult:
    return mix.mix(load_recipe(str(write_recipe(root / f"{name}.yaml", text))), **kw)  # type: ignore[arg-type]


def u(seed: int, source: str, doc_id: str) -> float:
    """The documented sampling hash, recomputed independently of `mix.sample_copies`."""
    digest = hashlib.blake2b(f"{seed}\x00{source}\x00{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def filtered_ids() -> list[str]:
    return [f"d{n}" for n in range(SHARDS * PER_SHARD) if n % 5 and n % 7]


def test_counts_and_summary(corpus: Path) -> None:
    result = run(corpus, "plain", recipe_text(corpus, "plain"), processes=1)
    (s,) = result.streams
    assert s["documents_in"] == 400 == s["kept"] + s["removed"] + s["rejected"]
    # 80 multiples of 5 fail `pass`; of the 58 multiples of 7, the 12 multiples of 35 were already removed
    assert s["removed_by"] == {"t.pass == 0": 80, "two emails": 58 - 12, mix.EMPTY: 0}
    assert s["kept"] == len(filtered_ids()) == s["documents_out"]
    assert s["spans_replaced"] == {"t.email": s["kept"]}
    docs = read_output(corpus / "plain")
    assert [d["id"] for d in docs] == filtered_ids()  # input order kept within a shard, shards in order
    assert all("|||EMAIL_ADDRESS|||" in d["text"] and "@" not in d["text"] for d in docs)
    summary = json.loads((corpus / "plain" / mix.SUMMARY_NAME).read_text())
    assert summary["streams"][0]["removed_by"] == s["removed_by"]


def test_sample_fraction_is_seeded_by_hash(corpus: Path) -> None:
    result = run(corpus, "s03", recipe_text(corpus, "s03", sample=0.3), processes=1)
    ids = [d["id"] for d in read_output(corpus / "s03")]
    expected = [i for i in filtered_ids() if u(3, "web", i) < 0.3]
    assert ids == expected  # exactly the documents the documented hash picks, in input order
    # and about 30%: n = 275, sd = sqrt(n·0.3·0.7) ≈ 7.6; 4 sd (±30) would fail only if the hash were biased
    assert abs(len(ids) - 0.3 * len(filtered_ids())) <= 4 * (len(filtered_ids()) * 0.21) ** 0.5
    assert result.streams[0]["removed_by"][mix.SAMPLED_OUT] == len(filtered_ids()) - len(ids)


def test_upsampling_gives_exact_copies(corpus: Path) -> None:
    run(corpus, "s25", recipe_text(corpus, "s25", sample=2.5), processes=1)
    ids = [d["id"] for d in read_output(corpus / "s25")]
    want = {i: 2 + (u(3, "web", i) < 0.5) for i in filtered_ids()}
    assert {i: ids.count(i) for i in set(ids)} == want
    assert len(ids) == 2 * len(want) + sum(v == 3 for v in want.values())


def test_same_bytes_for_any_process_count_and_on_rerun(corpus: Path) -> None:
    a = corpus / "p1"
    b = corpus / "p2"
    run(corpus, "p1", recipe_text(corpus, "p1", sample=0.7, max_bytes=4000), processes=1)
    run(corpus, "p2", recipe_text(corpus, "p2", sample=0.7, max_bytes=4000), processes=2)
    first = output_bytes(a)
    assert len([k for k in first if k.endswith(".jsonl.gz")]) > SHARDS  # parts were rolled
    assert first == output_bytes(b)
    again = run(corpus, "p1", recipe_text(corpus, "p1", sample=0.7, max_bytes=4000), processes=1)
    assert {s.status for s in again.run.shards} == {"skipped"}
    assert output_bytes(a) == first
    forced = run(corpus, "p1", recipe_text(corpus, "p1", sample=0.7, max_bytes=4000), processes=1, force=True)
    assert {s.status for s in forced.run.shards} == {"done"}
    assert output_bytes(a) == first


def test_parts_roll_at_max_bytes_and_stale_parts_go(corpus: Path) -> None:
    run(corpus, "roll", recipe_text(corpus, "roll", max_bytes=3000), processes=1)
    manifest = json.loads((corpus / "roll" / "_mix" / "web" / "web" / "part-0000.json").read_text())
    parts = manifest["parts"]
    assert [p["path"] for p in parts] == [f"web/part-0000-{k:04d}.jsonl.gz" for k in range(len(parts))]
    assert len(parts) >= 3 and all(p["bytes"] <= 3000 for p in parts)
    for p in parts:
        lines = list(read_documents(str(corpus / "roll" / p["path"])))
        assert len(lines) == p["documents"]
    run(corpus, "roll", recipe_text(corpus, "roll", max_bytes=10**9), processes=1, force=True)
    assert sorted(p.name for p in (corpus / "roll" / "web").iterdir() if p.name.startswith("part-0000")) == [
        "part-0000-0000.jsonl.gz"
    ]


def test_resume_redoes_only_the_unfinished_shard(corpus: Path) -> None:
    out = corpus / "resume"
    text = recipe_text(corpus, "resume", max_bytes=3000)
    run(corpus, "resume", text, processes=1)
    clean = output_bytes(out)
    # what a kill leaves: shard 2 has one published part, a temp file, no manifest and no marker
    manifest = out / "_mix" / "web" / "web" / "part-0002.json"
    manifest.unlink()
    Path(str(manifest) + ".done").unlink()
    (out / "web" / "part-0002-0001.jsonl.gz").unlink()
    (out / "web" / ".part-0002-0002.jsonl.gz.tmp-1-deadbeef").write_bytes(b"partial")
    result = run(corpus, "resume", text, processes=1)
    assert [s.status for s in result.run.shards] == ["skipped", "skipped", "done", "skipped"]
    assert output_bytes(out) == clean
    assert result.streams[0]["documents_in"] == 400  # skipped shards' counts come from their markers


@pytest.mark.parametrize("fmt", ["jsonl.zst", "parquet"])
def test_other_output_formats(corpus: Path, fmt: str) -> None:
    name = fmt.replace(".", "_")
    run(corpus, name, recipe_text(corpus, name, extra=f", format: {fmt}"), processes=1)
    docs = [d for p in sorted((corpus / name / "web").iterdir()) for d in read_documents(str(p))]
    assert [d.id for d in docs] == filtered_ids()
    masked = [f"Document {i[1:]} says hello to |||EMAIL_ADDRESS||| and friends. " for i in filtered_ids()]
    assert [d.text for d in docs] == [
        m + "More words here. " * (int(i[1:]) % 5) for m, i in zip(masked, filtered_ids(), strict=True)
    ]


def test_misaligned_attributes_name_both_files(tmp_path: Path) -> None:
    docs = [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}]
    rows = [{"q__t__pass": whole("one", 1.0)}, {"q__t__pass": whole("two", 1.0)}]
    write_source(tmp_path, "web", docs, {"q": rows})
    write_schema(tmp_path, "q", NAMES)
    attr = tmp_path / "attributes" / "q" / "web" / "part-0000.jsonl.gz"
    write_source(tmp_path / "other", "web", list(reversed(docs)), {"q": rows})
    shutil.copy(tmp_path / "other" / "attributes" / "q" / "web" / "part-0000.jsonl.gz", attr)
    text = recipe_text(tmp_path, "out").replace("count(t.email) >= 2", "t.pass > 2")
    with pytest.raises(DolmaKitError) as info:
        run(tmp_path, "r", text, processes=1)
    message = str(info.value)
    assert f"{attr}:1: attribute id 'b' does not match document id 'a'" in message
    assert "documents/web/part-0000.jsonl.gz:1" in message
    assert not (tmp_path / "out" / "web").exists() or not list((tmp_path / "out" / "web").glob("*.jsonl.gz"))


def test_attribute_file_shorter_than_documents(tmp_path: Path) -> None:
    docs = [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}]
    write_source(tmp_path, "web", docs[:1], {"q": [{"q__t__pass": whole("one", 1.0)}]})
    write_source(tmp_path / "full", "web", docs, {})
    shutil.copy(
        tmp_path / "full/documents/web/part-0000.jsonl.gz", tmp_path / "documents/web/part-0000.jsonl.gz"
    )
    write_schema(tmp_path, "q", NAMES)
    text = recipe_text(tmp_path, "out").replace("count(t.email) >= 2", "t.pass > 2")
    with pytest.raises(
        DolmaKitError, match=r"part-0000.jsonl.gz: ends before .*part-0000.jsonl.gz:2 \(id 'b'\)"
    ):
        run(tmp_path, "r", text, processes=1)


def test_skip_bad_counts_rejects(tmp_path: Path) -> None:
    docs = [{"id": "a", "text": "one"}, {"id": "c", "text": "three"}]
    write_source(
        tmp_path, "web", docs, {"q": [{"q__t__pass": whole("one", 1.0)}, {"q__t__pass": whole("three", 1)}]}
    )
    write_schema(tmp_path, "q", NAMES)
    path = tmp_path / "documents" / "web" / "part-0000.jsonl"
    path.write_text('{"id": "a", "text": "one"}\n{"id": 2, "text": "bad id"}\n{"id": "c", "text": "three"}\n')
    (tmp_path / "documents" / "web" / "part-0000.jsonl.gz").unlink()
    attr = tmp_path / "attributes" / "q" / "web"
    (attr / "part-0000.jsonl.gz").rename(attr / "part-0000.jsonl.tmp")
    import gzip

    (attr / "part-0000.jsonl").write_bytes(gzip.decompress((attr / "part-0000.jsonl.tmp").read_bytes()))
    text = recipe_text(tmp_path, "out").replace("*.jsonl.gz", "*.jsonl")
    with pytest.raises(DolmaKitError, match=r"part-0000.jsonl:2: 'id' must be a string, got int"):
        run(tmp_path, "r", text, processes=1)
    (s,) = run(tmp_path, "r", text, processes=1, skip_bad=True).streams
    assert (s["documents_in"], s["kept"], s["rejected"]) == (3, 2, 1)
    assert (tmp_path / "out" / "_mix" / "rejects" / "web" / "web" / "part-0000.jsonl.gz").exists()


def test_parquet_documents_with_jsonl_attributes(tmp_path: Path) -> None:
    from dolma_kit.documents import Document, DocumentWriter

    texts = {"a": "keep me", "b": "drop me", "c": "keep me too"}
    write_source(tmp_path, "web", [{"id": k, "text": v} for k, v in texts.items()], {"q": [{"q__t__pass": whole(v, float(k != "b"))} for k, v in texts.items()]})  # fmt: skip
    (tmp_path / "documents" / "web" / "part-0000.jsonl.gz").unlink()
    with DocumentWriter(str(tmp_path / "documents" / "web" / "part-0000.parquet")) as out:
        for k, v in texts.items():
            out.write(Document(id=k, text=v, source="web", metadata={"n": k}))
    write_schema(tmp_path, "q", NAMES)
    text = (
        recipe_text(tmp_path, "out")
        .replace("*.jsonl.gz", "*.parquet")
        .replace("count(t.email) >= 2", "t.pass > 2")
    )
    run(tmp_path, "r", text, processes=1)
    assert [(d["id"], d["metadata"]) for d in read_output(tmp_path / "out")] == [
        ("a", {"n": "a"}),
        ("c", {"n": "c"}),
    ]


@pytest.mark.parametrize(
    "line",
    [
        {
            "id": "x",
            "source": "web",
            "attributes": {"q__t__pass": [[0, 3, 1.0]], "q__t__lang": [[0, 3, 0.5]]},
        },
        {
            "attributes": {"q__t__lang": [[0, 3, 0.5]], "q__t__pass": [[0, 3, 1.0]]},
            "id": "x",
        },  # another key order
        {
            "id": 'say "q__t__pass": [[0, 1, 0]]',
            "attributes": {"q__t__pass": [[0, 3, 1.0]]},
        },  # a key in the id
    ],
)
def test_pick_reads_only_the_needed_attributes(line: dict) -> None:
    keys = (("q__t__pass", '"q__t__pass":'), ("q__t__email", '"q__t__email":'))
    for text in (json.dumps(line), json.dumps(line, separators=(",", ":"))):  # Dolma's spacing and ours
        assert rows.pick(text, keys) == (line["id"], {"q__t__pass": [[0, 3, 1.0]]})
    assert rows.pick('{"id": 1, "attributes": {"q__t__pass": [[0, 3,', keys) is None  # cut short: full parse


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"id": "a", "text": "t\\u00e9"}', b'{"source":"web","id": "a", "text": "t\\u00e9"}'),
        (b"{}", b'{"source":"web"}'),
        (b'{"id": "a", "source": null}', None),  # present but empty: written anew, never two keys
    ],
)
def test_source_is_spliced_into_the_line(raw: bytes, expected: bytes | None) -> None:
    """A document without `source` is not re-serialised (issue 14: a 50 M-character one peaked at 670 MB)."""
    obj = json.loads(raw)
    assert rows.with_source(raw, obj, "web") == expected
    assert obj["source"] == "web"
    if expected is not None:
        assert json.loads(expected) == obj
