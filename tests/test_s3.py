"""Remote storage: documents and attributes on s3:// through a local moto server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dolma_kit import storage
from dolma_kit.documents import Document, DocumentWriter, read_documents
from dolma_kit.taggers.stage import TagConfig, tag
from tests.conftest import corpus_documents, write_corpus

moto_server = pytest.importorskip("moto.server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"corpus-{uuid.uuid4().hex[:12]}"  # moto keeps buckets process-wide across server instances
    storage.s3_client().create_bucket(Bucket=bucket)
    try:
        yield f"s3://{bucket}"
    finally:
        server.stop()


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst", ".parquet"])
def test_documents_round_trip_on_s3(s3_bucket: str, suffix: str) -> None:
    url = f"{s3_bucket}/documents/web/part-0{suffix}"
    docs = [Document(id=str(i), text=f"text {i} ü", source="web", metadata={"i": i}) for i in range(50)]
    with DocumentWriter(url) as out:
        for doc in docs:
            out.write(doc)
    back = list(read_documents(url))
    assert [(d.id, d.text, d.metadata) for d in back] == [(d.id, d.text, d.metadata) for d in docs]
    assert [f.path for f in storage.expand([f"{s3_bucket}/documents/*/*{suffix}"])] == [url]


def test_tag_reads_and_writes_s3(s3_bucket: str, tmp_path: Path) -> None:
    local = write_corpus(tmp_path / "local", ".jsonl.gz")
    client = storage.s3_client()
    bucket = s3_bucket.removeprefix("s3://")
    for path in sorted(local.glob("documents/*/*.jsonl.gz")):
        client.upload_file(str(path), bucket, str(path.relative_to(local)))
    remote = tag(TagConfig(documents=[f"{s3_bucket}/documents/*/*.jsonl.gz"], experiment="e",
                           taggers=["char_length", "paragraph_count"], processes=2))  # fmt: skip
    here = tag(TagConfig(documents=[f"{local}/documents/*/*.jsonl.gz"], experiment="e",
                         taggers=["char_length", "paragraph_count"], processes=1))  # fmt: skip
    assert remote.total.documents_in == here.total.documents_in == 12
    for source in corpus_documents():
        key = f"attributes/e/{source}/part-0000.jsonl.gz"
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == (local / key).read_bytes()
        assert storage.exists(f"{s3_bucket}/{key}.done")
    summary = json.loads(client.get_object(Bucket=bucket, Key="attributes/e/tag_summary.json")["Body"].read())
    assert summary["total"]["kept"] == 12
    # resume on S3: a second run skips every shard
    again = tag(TagConfig(documents=[f"{s3_bucket}/documents/*/*.jsonl.gz"], experiment="e",
                          taggers=["char_length", "paragraph_count"], processes=1))  # fmt: skip
    assert {s.status for s in again.shards} == {"skipped"}
