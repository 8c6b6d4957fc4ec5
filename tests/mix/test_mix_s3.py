"""`mix` with documents, attributes and output on s3:// (a local moto server): same bytes as a local run."""

from __future__ import annotations

from pathlib import Path

from dolma_kit import storage
from dolma_kit.mix import stage as mix
from dolma_kit.mix.recipe import load_recipe
from tests.mix.helpers import output_bytes, write_recipe
from tests.mix.test_mix import make_corpus, recipe_text
from tests.test_s3 import s3_bucket  # noqa: F401  (the fixture)


def test_mix_reads_and_writes_s3(s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    local = tmp_path / "local"
    make_corpus(local)
    local_recipe = write_recipe(tmp_path / "local.yaml", recipe_text(local, "out", max_bytes=20000))
    mix.mix(load_recipe(str(local_recipe)), processes=1)
    client, bucket = storage.s3_client(), s3_bucket.removeprefix("s3://")
    for path in sorted(p for p in local.rglob("*") if p.is_file() and "out" not in p.parts):
        client.upload_file(str(path), bucket, str(path.relative_to(local)))
    remote = write_recipe(tmp_path / "remote.yaml", recipe_text(local, "out", max_bytes=20000).replace(str(local), s3_bucket))  # fmt: skip
    result = mix.mix(load_recipe(str(remote)), processes=1)
    assert result.streams[0]["documents_in"] == 400
    want = {k: v for k, v in output_bytes(local / "out").items() if not k.startswith("_mix")}
    for key, data in want.items():
        with storage.open_raw(f"{s3_bucket}/out/{key}") as fh:
            assert fh.read() == data, key
    assert storage.exists(f"{s3_bucket}/out/_mix/web/web/part-0000.json.done")
    assert storage.exists(f"{s3_bucket}/out/{mix.SUMMARY_NAME}")
