"""Mixed output that Hugging Face `datasets` loads whole (test-only extra: `pip install datasets`).

`datasets.load_dataset("json", …)` infers one schema from the first part and fails on a part whose `metadata`
has other keys (dedup's `duplicate_of` on some documents only). `output.format: parquet` writes one fixed schema,
`metadata` as a JSON string, so every part loads as one table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dolma_kit.mix import stage as mix
from dolma_kit.mix.recipe import load_recipe
from tests.mix.helpers import write_recipe, write_source


def test_parquet_parts_load_whole_in_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    write_source(
        tmp_path, "web", [{"id": f"a{i}", "text": "one", "metadata": {"url": "u"}} for i in range(3)], {}
    )
    dups = [{"id": f"b{i}", "text": "two", "metadata": {"url": "v", "duplicate_of": "a1"}} for i in range(2)]
    write_source(tmp_path, "wiki", dups, {}, shard="part-0001")
    text = f"streams:\n  - name: all\n    documents: ['{tmp_path}/documents/*/*']\n"
    text += f"    output: {{path: {tmp_path}/mixed, format: parquet}}\n"
    mix.mix(load_recipe(str(write_recipe(tmp_path / "r.yaml", text))), processes=1)
    parts = sorted(str(p) for p in (tmp_path / "mixed").glob("*/*.parquet"))
    assert len(parts) == 2
    table = datasets.load_dataset("parquet", data_files=parts, split="train", cache_dir=str(tmp_path / "hf"))
    assert table.num_rows == 5
    assert sorted(table["id"]) == ["a0", "a1", "a2", "b0", "b1"]
    assert json.loads(table[table["id"].index("b0")]["metadata"]) == {"url": "v", "duplicate_of": "a1"}
