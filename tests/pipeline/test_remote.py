"""pipelines/demo.yaml with its work dir on S3 (a moto server on 127.0.0.1): the data stages read and write
`s3://`, tokens and the training run go to the pipeline's `local_dir`, and every output equals the local run's."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dolma_kit import storage
from dolma_kit.config import ConfigError
from dolma_kit.pipeline import load_pipeline
from tests.pipeline.conftest import DEMO, run_demo
from tests.test_s3 import s3_bucket  # noqa: F401  (the moto server fixture)

# Files that record their own absolute paths (work files, plans, mix's per-shard records, reports) or timings
# are left out; what the
# stages made (documents, attributes, mixed documents, tokenizer, tokens) is compared byte for byte.
_SKIP = (".done", "_summary.json", ".html", "stats.json", "publish_plan.json", "demo_corpus.json")


def _kept(relative: str) -> bool:
    parts = relative.split("/")
    return not relative.endswith(_SKIP) and not {"_work", "_mix", "_pipeline"} & set(parts)


def _s3_files(url: str) -> dict[str, bytes]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = storage.s3_client()
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            relative = obj["Key"].removeprefix(prefix + "/")
            if _kept(relative):
                out[relative] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def _local_files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and _kept(str(p.relative_to(root))) and not str(p.relative_to(root)).startswith(skip)
    }


def _rows(path: Path, work: str) -> str:
    """A parquet index's rows as JSON, the work dir in its paths written as WORK."""
    import pyarrow.parquet as pq

    return json.dumps(pq.read_table(path).to_pylist(), default=str).replace(work, "WORK")


@pytest.mark.slow
def test_demo_pipeline_on_s3(demo_run: tuple[Path, str], s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    clean, _ = demo_run
    work, local = f"{s3_bucket}/demo", tmp_path / "local"
    run_demo(Path("unused"), f"--work_dir={work}", f"--local_dir={local}")
    data = json.loads(storage.read_text(f"{work}/pipeline_summary.json"))
    assert all(r["status"] == "ran" for r in data["stages"]), data["stages"]
    assert data["report"] == f"{work}/report/report.html" and storage.exists(data["report"])

    remote = _s3_files(work)
    reference = _local_files(clean, skip=("tokens/", "train/"))
    assert any(k.startswith("mixed/documents/") for k in reference) and "tokenizer.json" in reference
    assert any(k.startswith("attributes/dedup_minhash/") for k in reference)
    assert remote.keys() - {"report/report.html"} >= reference.keys()  # nothing local-only but tokens/train
    # files that name their inputs name them under either work dir
    remote = {k: v.replace(work.encode(), b"WORK") for k, v in remote.items()}
    reference = {k: v.replace(str(clean).encode(), b"WORK") for k, v in reference.items()}
    assert [k for k in reference if remote[k] != reference[k]] == []
    assert not any(k.startswith(("tokens/", "train/")) for k in remote)
    tokens, reference = _local_files(local / "tokens"), _local_files(clean / "tokens")
    assert tokens.keys() == reference.keys() and "part-00000.npy" in tokens
    for name in tokens:  # the manifest and the id index name the input files (and the tokenizer)
        if name.endswith(".parquet"):
            assert _rows(local / "tokens" / name, work) == _rows(clean / "tokens" / name, str(clean)), name
        else:
            ours, theirs = tokens[name], reference[name]
            if name.endswith(".gz"):  # Dolma's metadata CSVs
                ours, theirs = gzip.decompress(ours), gzip.decompress(theirs)
            ours = ours.replace(f"{work}/".encode(), b"WORK/")
            assert ours == theirs.replace(f"{clean}/".encode(), b"WORK/"), name
    losses = [
        json.loads(line).get("loss") for line in (local / "train/tiny/metrics.jsonl").read_text().splitlines()
    ]
    ref = [
        json.loads(line).get("loss") for line in (clean / "train/tiny/metrics.jsonl").read_text().splitlines()
    ]
    assert losses == ref and any(loss is not None for loss in losses)

    # resume on S3: every stage's markers and proofs are read back from the bucket, nothing runs again
    run_demo(Path("unused"), f"--work_dir={work}", f"--local_dir={local}")
    data = json.loads(storage.read_text(f"{work}/pipeline_summary.json"))
    assert {r["status"] for r in data["stages"]} == {"skipped (done)"}


def test_remote_work_dir_needs_a_local_dir(s3_bucket: str) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match=r"work_dir s3://.* is remote: set `local_dir:`"):
        load_pipeline(str(DEMO), [f"--work_dir={s3_bucket}/demo"])
    with pytest.raises(ConfigError, match="local_dir must be a local folder"):
        load_pipeline(str(DEMO), [f"--work_dir={s3_bucket}/demo", f"--local_dir={s3_bucket}/x"])
    pipe = load_pipeline(str(DEMO), ["--work_dir=work/x"])  # a local work_dir is its own local_dir
    options = {s.name: s.options for s in pipe.stages}
    assert options["tokenize"]["destination"] == "work/x/tokens"
