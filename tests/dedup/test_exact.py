"""Exact dedup end to end: planted duplicates, first-occurrence order, spans, determinism and resume."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from dolma_kit import storage
from dolma_kit.cli import app
from dolma_kit.dedup import exact_partition as part
from dolma_kit.dedup.exact import ExactDedupConfig, dedup_exact
from dolma_kit.dedup.normalize import normalize_text, normalize_url
from dolma_kit.documents import Document, DocumentWriter, iter_raw_lines, read_documents
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.text import paragraph_spans
from tests.conftest import write_lines

runner = CliRunner()


def write_shard(root: Path, source: str, name: str, docs: list[dict[str, Any]]) -> Path:
    """Documents given as dicts (`id`, `text`, optional `url`) → root/documents/<source>/<name>."""
    path = root / "documents" / source / name
    with DocumentWriter(str(path)) as out:
        for d in docs:
            metadata = {"url": d["url"]} if "url" in d else {}
            out.write(Document(id=d["id"], text=d["text"], source=source, metadata=metadata))
    return path


def run(root: Path, key: str, experiment: str | None = None, **options: Any):
    options.setdefault("processes", 1)
    config = ExactDedupConfig(
        documents=[f"{root}/documents/*/*"], experiment=experiment or key, key=key, **options
    )
    return dedup_exact(config)


def attributes(root: Path, experiment: str) -> dict[str, dict[str, Any]]:
    """id → attributes (names without the experiment prefix) over every attribute shard."""
    out = {}
    for path in sorted((root / "attributes" / experiment).glob("*/*.jsonl*")):
        if path.name.endswith(".done") or "_work" in path.parts:
            continue
        for _, line in iter_raw_lines(str(path)):
            row = json.loads(line)
            out[row["id"]] = {k.split("__", 1)[1]: v for k, v in row["attributes"].items()}
    return out


def summary(root: Path, experiment: str) -> dict[str, Any]:
    return json.loads((root / "attributes" / experiment / "dedup_exact_summary.json").read_text())


def attribute_bytes(root: Path, experiment: str) -> dict[str, bytes]:
    base = root / "attributes" / experiment
    return {
        str(p.relative_to(base)): p.read_bytes()
        for p in sorted(base.glob("*/*.jsonl*"))
        if not p.name.endswith(".done") and "_work" not in p.parts
    }


def planted(root: Path) -> Path:
    """Two sources, three shards; sorted order is a/0000, a/0001, b/0000."""
    write_shard(root, "b", "part-0000.jsonl.gz", [
        {"id": "b1", "text": "The quick brown fox jumps over the lazy dog.", "url": "https://www.x.example/fox/"},
        {"id": "b2", "text": "Entirely unique words live here.", "url": "http://x.example/unique"},
        {"id": "b3", "text": "the QUICK brown fox, jumps over the lazy dog!!", "url": "https://x.example/fox?utm_source=a"},
    ])  # fmt: skip
    write_shard(root, "a", "part-0001.jsonl.gz", [
        {"id": "a4", "text": "The quick brown fox jumps over the lazy cat.", "url": "https://x.example/cat"},
        {"id": "a5", "text": "Numbers 2024 and 1999 differ only in digits.", "url": "https://x.example/n"},
    ])  # fmt: skip
    write_shard(root, "a", "part-0000.jsonl.gz", [
        {"id": "a1", "text": "Numbers 1234 and 5678 differ only in digits", "url": "https://x.example/num"},
        {"id": "a2", "text": "  The quick   brown fox jumps over the lazy dog  ", "url": "https://x.example/dog"},
        {"id": "a3", "text": "No URL on this one."},
    ])  # fmt: skip
    return root


# --------------------------------------------------------------------------------------------- planted


def test_text_duplicates_first_occurrence_wins(tmp_path: Path) -> None:
    result = run(planted(tmp_path), "text")
    attrs = attributes(tmp_path, "text")
    dup = {i: a["exact_text__duplicate"][0][2] for i, a in attrs.items()}
    # a2 (a/part-0000 line 2) comes before b1 and b3; near-but-different a4 ("cat") is not a duplicate;
    # digits normalise to 0, so a5 duplicates a1.
    assert dup == {"a1": 0.0, "a2": 0.0, "a3": 0.0, "a4": 0.0, "a5": 1.0, "b1": 1.0, "b2": 0.0, "b3": 1.0}
    sizes = {i: a["exact_text__group_size"][0][2] for i, a in attrs.items()}
    assert sizes == {"a1": 2.0, "a2": 3.0, "a3": 1.0, "a4": 1.0, "a5": 2.0, "b1": 3.0, "b2": 1.0, "b3": 3.0}
    assert attrs["b3"]["exact_text__duplicate"] == [[0, 46, 1.0]]  # document-level: one span over the text
    total = result.total
    assert (total.documents_in, total.kept, total.removed) == (8, 5, 3)
    assert total.removed_by == {"exact_text_duplicate": 3}
    s = summary(tmp_path, "text")
    assert s["exact"]["duplicates"] == 3
    schema = json.loads((tmp_path / "attributes" / "text" / "attributes_schema.json").read_text())
    assert schema["attributes"] == ["text__exact_text__duplicate", "text__exact_text__group_size"]


def test_url_duplicates_and_documents_without_url(tmp_path: Path) -> None:
    result = run(planted(tmp_path), "url")
    attrs = attributes(tmp_path, "url")
    dup = {i: a["exact_url__duplicate"][0][2] for i, a in attrs.items()}
    # b1 and b3 are one page (www, trailing slash, scheme, tracking parameter); b2 is another
    assert dup == {"a1": 0.0, "a2": 0.0, "a3": 0.0, "a4": 0.0, "a5": 0.0, "b1": 0.0, "b2": 0.0, "b3": 1.0}
    assert "exact_url__group_size" not in attrs["a3"]  # no URL: not a duplicate, no group
    assert attrs["b1"]["exact_url__group_size"][0][2] == 2.0
    assert result.total.removed_by == {"exact_url_duplicate": 1}
    assert summary(tmp_path, "url")["exact"]["documents_without_key"] == 1


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".parquet"])
def test_any_document_format_gives_the_same_attributes(tmp_path: Path, suffix: str) -> None:
    planted(tmp_path / "gz")
    run(tmp_path / "gz", "text")
    for path in sorted((tmp_path / "gz" / "documents").glob("*/*")):
        docs = list(read_documents(str(path)))
        with DocumentWriter(
            str(tmp_path / "other" / "documents" / path.parent.name / f"{path.name[:9]}{suffix}")
        ) as out:
            for doc in docs:
                out.write(doc)
    run(tmp_path / "other", "text")
    assert attributes(tmp_path / "other", "text") == attributes(tmp_path / "gz", "text")


def test_url_field_nested(tmp_path: Path) -> None:
    path = tmp_path / "documents" / "web" / "0.jsonl"
    write_lines(path, [
        {"id": "1", "text": "a", "metadata": {"warc": {"uri": "http://e.example/x"}}},
        {"id": "2", "text": "b", "metadata": {"warc": {"uri": "https://e.example/x/"}}},
        {"id": "3", "text": "c", "metadata": {"warc": {"uri": 7}}},
    ])  # fmt: skip
    run(tmp_path, "url", url_field="warc.uri")
    attrs = attributes(tmp_path, "url")
    assert [attrs[i]["exact_url__duplicate"][0][2] for i in "123"] == [0.0, 1.0, 0.0]
    assert summary(tmp_path, "url")["exact"]["documents_without_key"] == 1


def test_duplicate_paragraphs_are_exact_spans(tmp_path: Path) -> None:
    first = "Subscribe to our newsletter!\nA paragraph that is only here.\n\nShared: see you soon."
    second = "Intro line\nsubscribe to our NEWSLETTER\nShared see you soon\nsubscribe to our newsletter..."
    write_shard(tmp_path, "web", "part-0000.jsonl", [{"id": "1", "text": first}, {"id": "2", "text": second}])
    result = run(tmp_path, "paragraphs")
    attrs = attributes(tmp_path, "paragraphs")
    assert "exact_paragraphs__duplicate_paragraph" not in attrs["1"]
    assert attrs["1"]["exact_paragraphs__duplicate_paragraph_fraction"] == [[0, len(first), 0.0]]
    spans = attrs["2"]["exact_paragraphs__duplicate_paragraph"]
    assert [second[s:e] for s, e, _ in spans] == [
        "subscribe to our NEWSLETTER",
        "Shared see you soon",
        "subscribe to our newsletter...",
    ]
    assert all(score == 1.0 and "\n" not in second[s:e] for s, e, score in spans)
    chars = sum(e - s for s, e, _ in spans)
    assert attrs["2"]["exact_paragraphs__duplicate_paragraph_fraction"] == [
        [0, len(second), round(chars / len(second), 6)]
    ]
    assert (result.total.kept, result.total.removed) == (2, 0)  # paragraph dedup never removes documents
    exact = summary(tmp_path, "paragraphs")["exact"]
    assert exact["documents_with_duplicate_paragraphs"] == 1
    assert (exact["duplicate_paragraphs"], exact["duplicate_chars"]) == (3, chars)


def test_paragraph_repeated_inside_one_document_and_min_chars(tmp_path: Path) -> None:
    text = "Click here\nClick here\nA longer paragraph repeated.\nOK\nOK\nA longer paragraph repeated!"
    write_shard(tmp_path, "web", "part-0000.jsonl", [{"id": "1", "text": text}])
    run(tmp_path, "paragraphs", min_paragraph_words=1)
    spans = attributes(tmp_path, "paragraphs")["1"]["exact_paragraphs__duplicate_paragraph"]
    assert [text[s:e] for s, e, _ in spans] == ["Click here", "OK", "A longer paragraph repeated!"]
    assert summary(tmp_path, "paragraphs")["exact"]["paragraphs_under_minimum"] == 0
    run(tmp_path, "paragraphs", experiment="long", min_paragraph_chars=11, min_paragraph_words=1)
    spans = attributes(tmp_path, "long")["1"]["exact_paragraphs__duplicate_paragraph"]
    assert [text[s:e] for s, e, _ in spans] == ["A longer paragraph repeated!"]
    assert summary(tmp_path, "long")["exact"]["paragraphs_under_minimum"] == 4


# --------------------------------------------------------------------------------------------- against a reference


def random_corpus(root: Path, seed: int = 0) -> list[Document]:
    """Shards in three sources with duplicated texts, paragraphs and URLs; returns documents in dedup order."""
    rng = random.Random(seed)
    pool = [f"Paragraph {w} about {rng.choice('xyz')}." for w in ("alpha", "beta", "gamma", "delta", "eps")]
    order = []
    for source in ("c", "a", "b"):
        for shard in range(3 if source != "b" else 1):
            docs = []
            for i in range(rng.randint(1, 25)):
                paras = [rng.choice(pool) if rng.random() < 0.5 else f"unique {source}{shard}{i}.{k}" for k in
                         range(rng.randint(1, 4))]  # fmt: skip
                url = f"https://{'www.' * rng.randint(0, 1)}s.example/{rng.randint(0, 30)}"
                docs.append({"id": f"{source}{shard}-{i}", "text": "\n".join(paras), "url": url})
            path = write_shard(root, source, f"part-{shard:04d}.jsonl", docs)
            order.append((f"{source}/{path.name}", docs))
    out = []
    for _, docs in sorted(order):
        out.extend(Document(id=d["id"], text=d["text"], metadata={"url": d["url"]}) for d in docs)
    return out


def reference(docs: list[Document], key: str) -> dict[str, Any]:
    """Brute force: one Python set over the whole corpus, in dedup order (paragraphs of 3 words or more, the
    default minimum)."""
    seen: dict[str, int] = {}
    out: dict[str, Any] = {}
    if key == "paragraphs":
        for doc in docs:
            spans = []
            for s, e in paragraph_spans(doc.text):
                norm = normalize_text(doc.text[s:e])
                if len(norm.split()) < 3:
                    continue
                if norm in seen:
                    spans.append([s, e, 1.0])
                seen[norm] = 1
            out[doc.id] = spans
        return out
    for doc in docs:
        k = normalize_url(doc.metadata["url"]) if key == "url" else normalize_text(doc.text)
        out[doc.id] = float(k in seen)
        seen[k] = seen.get(k, 0) + 1
    return out


@pytest.mark.parametrize("key", ["url", "text", "paragraphs"])
def test_matches_brute_force_reference(tmp_path: Path, key: str) -> None:
    docs = random_corpus(tmp_path)
    run(tmp_path, key, partitions=3)
    attrs = attributes(tmp_path, key)
    expected = reference(docs, key)
    if key == "paragraphs":
        got = {i: a.get("exact_paragraphs__duplicate_paragraph", []) for i, a in attrs.items()}
    else:
        got = {i: a[f"exact_{key}__duplicate"][0][2] for i, a in attrs.items()}
    assert got == expected
    assert any(expected.values())  # the corpus does plant duplicates


# --------------------------------------------------------------------------------------------- determinism, resume


def test_same_attributes_for_any_partition_count(tmp_path: Path) -> None:
    """Partitions change only the work files (process counts: see the kill test, whose clean run uses 2)."""
    random_corpus(tmp_path)
    runs = {}
    for partitions in (1, 7):
        run(tmp_path, "paragraphs", experiment=f"p{partitions}", partitions=partitions)
        runs[partitions] = {
            name: data.replace(b"p7__", b"p1__")
            for name, data in attribute_bytes(tmp_path, f"p{partitions}").items()
        }
    assert runs[1] == runs[7]
    assert len(runs[1]) == 7


def test_resume_skips_finished_passes(tmp_path: Path) -> None:
    random_corpus(tmp_path)
    run(tmp_path, "text", partitions=4, keep_work=True)
    before = attribute_bytes(tmp_path, "text")
    attr = tmp_path / "attributes" / "text" / "a" / "part-0001.jsonl"
    attr.unlink()  # a lost output (its marker alone does not count as done)
    run(tmp_path, "text", keep_work=True)  # partitions come from the work dir's plan
    passes = summary(tmp_path, "text")["passes"]
    assert (passes["hash"]["skipped"], passes["resolve"]["skipped"]) == (7, 4)
    assert (passes["attributes"]["shards"], passes["attributes"]["skipped"]) == (7, 6)
    assert attribute_bytes(tmp_path, "text") == before

    shutil.rmtree(tmp_path / "attributes" / "text" / "_work")  # every attribute shard done: nothing to redo
    result = run(tmp_path, "text")
    passes = summary(tmp_path, "text")["passes"]
    assert passes["hash"]["status"].startswith("not needed")
    assert all(s.status == "skipped" for s in result.shards)
    assert summary(tmp_path, "text")["exact"]["duplicates"] is None  # the per-shard counts went with _work
    assert attribute_bytes(tmp_path, "text") == before

    run(tmp_path, "text", force=True)
    passes = summary(tmp_path, "text")["passes"]
    assert passes["hash"]["skipped"] == passes["attributes"]["skipped"] == 0
    assert attribute_bytes(tmp_path, "text") == before


def test_rerun_with_other_settings_is_a_clear_error(tmp_path: Path) -> None:
    planted(tmp_path)
    run(tmp_path, "text", experiment="x", partitions=2)
    with pytest.raises(DolmaKitError, match="one per key"):
        run(tmp_path, "url", experiment="x")
    with pytest.raises(DolmaKitError, match=r"partitions \(2 vs 3\)"):
        run(tmp_path, "text", experiment="x", partitions=3)
    write_shard(tmp_path, "c", "part-0000.jsonl", [{"id": "c1", "text": "new"}])
    with pytest.raises(DolmaKitError, match="input shards differ"):
        run(tmp_path, "text", experiment="x")
    run(tmp_path, "text", experiment="x", force=True)
    assert summary(tmp_path, "x")["total"]["documents_in"] == 9


def test_skip_bad_keeps_lines_aligned(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "documents" / "web" / "0.jsonl", [
        {"id": "1", "text": "Same text."},
        b"{broken",
        {"id": "3", "text": "other text"},
        {"id": "4"},
        {"id": "5", "text": "same TEXT"},
    ])  # fmt: skip
    with pytest.raises(BadRecordError, match=f"{path}:2: malformed JSON"):
        run(tmp_path, "text")
    result = run(tmp_path, "text", skip_bad=True)
    rows = [
        json.loads(x) for x in (tmp_path / "attributes" / "text" / "web" / "0.jsonl").read_text().splitlines()
    ]
    assert [(r["id"], r["attributes"]["text__exact_text__duplicate"][0][2]) for r in rows] == [
        ("1", 0.0),
        ("3", 0.0),
        ("5", 1.0),
    ]
    total = result.total
    assert (total.documents_in, total.kept, total.removed, total.rejected) == (5, 2, 1, 2)
    assert (tmp_path / "attributes" / "text" / "rejects" / "web" / "0.jsonl.gz").exists()


# --------------------------------------------------------------------------------------------- CLI, internals


def test_cli(tmp_path: Path) -> None:
    planted(tmp_path)
    args = ["dedup", "exact", "-d", f"{tmp_path}/documents/a/*", f"{tmp_path}/documents/b/*", "-e", "cli",
            "--key", "text", "-p", "1", "--partitions", "2", "--work-dir", str(tmp_path / "work")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "exact_text_duplicate: 3" in result.output
    assert (tmp_path / "work" / "exact" / "plan.json").exists()
    assert len(attributes(tmp_path, "cli")) == 8
    bad = runner.invoke(
        app, ["dedup", "exact", "-d", f"{tmp_path}/documents/*/*", "-e", "cli", "--key", "words"]
    )
    assert bad.exit_code != 0


def test_resolve_marks_later_occurrences_in_order() -> None:
    records = np.zeros(6, dtype=part.DOC_DTYPE)
    records["hi"] = [5, 5, 9, 5, 9, 1]
    records["lo"] = [1, 1, 1, 2, 1, 1]  # (5, 2) differs from (5, 1) in the low word only
    records["line"] = [7, 3, 1, 1, 2, 1]
    shards = np.array([0, 0, 1, 0, 0, 2], dtype="<u4")
    out, duplicates = part.resolve(records, shards)
    assert duplicates == 2
    rows = [(int(r["shard"]), int(r["line"]), int(r["dup"]), int(r["group_size"])) for r in out]
    # hash (5,1): shard 0 lines 3 and 7 → line 7 is the later one; hash 9: shard 0 line 2 before shard 1 line 1
    assert rows == [(0, 2, 0, 2), (0, 3, 0, 2), (0, 7, 1, 2), (1, 1, 1, 2)]


def test_read_rows_reads_a_slice(tmp_path: Path) -> None:
    path = str(tmp_path / "x.npy")
    part.write_npy(path, np.arange(100, dtype="<u8"))
    assert part.read_rows(path, 10, 13).tolist() == [10, 11, 12]
    assert part.read_rows(path, 5, 5).tolist() == []


# --------------------------------------------------------------------------------------------- kill and resume


def kill_corpus(root: Path) -> None:
    rng = random.Random(1)
    shared = [f"A paragraph shared across shards, number {i}." for i in range(50)]
    for shard in range(8):
        docs = []
        for i in range(200):
            paras = [rng.choice(shared) if rng.random() < 0.3 else f"Doc {shard}-{i} part {k}: " + "words " * 40
                     for k in range(6)]  # fmt: skip
            docs.append({"id": f"{shard}-{i}", "text": "\n".join(paras)})
        write_shard(root, "web", f"part-{shard:04d}.jsonl", docs)


def dedup_command(root: Path, processes: int = 1, partitions: int = 8) -> list[str]:
    return [sys.executable, "-m", "dolma_kit", "dedup", "exact", "-d", f"{root}/documents/web/*.jsonl",
            "-e", "k", "--key", "paragraphs", "-p", str(processes), "--partitions", str(partitions)]  # fmt: skip


@pytest.mark.slow
def test_kill_and_resume_is_byte_identical(tmp_path: Path) -> None:
    """SIGKILL in the hash pass, then a re-run: the attributes equal those of a run that never stopped."""
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    kill_corpus(clean)
    shutil.copytree(clean / "documents", killed / "documents")
    # the clean run uses other process and partition counts: the attribute bytes must not depend on them
    subprocess.run(dedup_command(clean, processes=2, partitions=3), check=True, capture_output=True)

    proc = subprocess.Popen(dedup_command(killed), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    hash_dir = killed / "attributes" / "k" / "_work" / "exact" / "hash" / "web"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (hash_dir.exists() and list(hash_dir.glob("*.done"))):
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(hash_dir.glob("*.done")))
    assert 1 <= finished < 8, "the kill must land in the hash pass for this test to mean anything"

    subprocess.run(dedup_command(killed), check=True, capture_output=True)
    assert attribute_bytes(killed, "k") == attribute_bytes(clean, "k")
    assert len(attribute_bytes(clean, "k")) == 8
    passes = summary(killed, "k")["passes"]
    assert passes["hash"]["skipped"] == finished


# --------------------------------------------------------------------------------------------- remote


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A bucket on a local moto server (as tests/test_s3.py)."""
    moto_server = pytest.importorskip("moto.server")
    from tests.test_s3 import free_port

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"dedup-{uuid.uuid4().hex[:12]}"
    storage.s3_client().create_bucket(Bucket=bucket)
    try:
        yield f"s3://{bucket}"
    finally:
        server.stop()


def test_documents_attributes_and_work_dir_on_s3(s3_bucket: str, tmp_path: Path) -> None:
    local = planted(tmp_path / "local")
    client = storage.s3_client()
    bucket = s3_bucket.removeprefix("s3://")
    for path in sorted(local.glob("documents/*/*")):
        client.upload_file(str(path), bucket, str(path.relative_to(local)))
    remote = ExactDedupConfig(documents=[f"{s3_bucket}/documents/*/*"], experiment="e", key="paragraphs",
                              partitions=2, processes=1)  # fmt: skip
    dedup_exact(remote)  # ranged reads of the work dir's .npy files go through smart_open
    run(local, "paragraphs", experiment="e", partitions=2)
    for key in attribute_bytes(local, "e"):
        body = client.get_object(Bucket=bucket, Key=f"attributes/e/{key}")["Body"].read()
        assert body == (local / "attributes" / "e" / key).read_bytes()
    assert storage.exists(f"{s3_bucket}/attributes/e/_work/exact/plan.json")  # a re-run's check stays
    assert not storage.exists(f"{s3_bucket}/attributes/e/_work/exact/resolve/part-00001.npy.done")
    assert not storage.exists(f"{s3_bucket}/attributes/e/_work/exact/resolve/part-00001.npy")


def test_work_is_removed_after_success_unless_keep_work(tmp_path: Path) -> None:
    """The hash and resolve files go after a successful run (the plan and counts stay, so the summary of a
    re-run still counts); a re-run that needs them redoes both passes and writes the same attributes."""
    random_corpus(tmp_path)
    run(tmp_path, "paragraphs", experiment="kept", partitions=4, keep_work=True)
    run(tmp_path, "paragraphs", experiment="clean", partitions=4)
    kept = tmp_path / "attributes" / "kept" / "_work" / "exact"
    clean = tmp_path / "attributes" / "clean" / "_work" / "exact"
    assert (kept / "hash").is_dir() and (kept / "resolve").is_dir()
    assert sorted(p.name for p in clean.iterdir()) == ["counts", "plan.json"]

    def same_attributes() -> bool:
        kept_bytes = {
            k: v.replace(b'"kept__', b'"clean__') for k, v in attribute_bytes(tmp_path, "kept").items()
        }
        return kept_bytes == attribute_bytes(tmp_path, "clean")

    assert same_attributes()
    counted = summary(tmp_path, "clean")["exact"]
    assert counted == {**summary(tmp_path, "kept")["exact"], "work_dir": counted["work_dir"]}

    (tmp_path / "attributes" / "clean" / "a" / "part-0001.jsonl").unlink()
    run(tmp_path, "paragraphs", experiment="clean")
    passes = summary(tmp_path, "clean")["passes"]
    assert passes["hash"]["skipped"] == 0 and passes["attributes"]["skipped"] == 6
    assert same_attributes()
    assert summary(tmp_path, "clean")["exact"]["duplicate_paragraphs"] == counted["duplicate_paragraphs"]


def test_key_id_marks_a_repeated_id_within_a_source(tmp_path: Path) -> None:
    """Ids must be unique within a source; `--key id` finds the ones that are not (later occurrences marked,
    so the summary counts them and mix can drop them), across shards, and not across sources."""
    from typer.testing import CliRunner

    from dolma_kit.cli import app
    from tests.conftest import write_lines

    write_lines(
        tmp_path / "documents" / "web" / "part-0000.jsonl",
        [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}],
    )
    write_lines(tmp_path / "documents" / "web" / "part-0001.jsonl", [{"id": "a", "text": "three"}])
    write_lines(tmp_path / "documents" / "wiki" / "part-0000.jsonl", [{"id": "a", "text": "four"}])
    result = CliRunner().invoke(
        app, ["dedup", "exact", "-d", f"{tmp_path}/documents/*/*", "-e", "ids", "--key", "id", "-p", "1"]
    )
    assert result.exit_code == 0, (result.exception, result.output)
    assert "exact_id_duplicate: 1" in result.output.replace("│", " ")
    marked = {}
    for path in sorted((tmp_path / "attributes" / "ids").glob("*/*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            marked[(path.parent.name, path.name, row["id"])] = row["attributes"]["ids__exact_id__duplicate"][
                0
            ][2]
    assert marked == {
        ("web", "part-0000.jsonl", "a"): 0.0,
        ("web", "part-0000.jsonl", "b"): 0.0,
        ("web", "part-0001.jsonl", "a"): 1.0,
        ("wiki", "part-0000.jsonl", "a"): 0.0,
    }
