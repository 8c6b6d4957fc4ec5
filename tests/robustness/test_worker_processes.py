"""Worker processes come from a forkserver (one per driver, started with the command's modules imported), yet
behave as freshly spawned ones: the driver's environment as it is now, its working directory, its counts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dolma_kit import storage
from dolma_kit.executor import ShardStats, ShardTask, run_shards


def _write_environment(task: ShardTask, stats: ShardStats) -> None:
    """A shard function: writes what the worker sees (an environment variable, its parent, its cwd)."""
    seen = {"value": os.environ.get("DOLMA_KIT_TEST_VALUE"), "parent": os.getppid(), "cwd": os.getcwd()}
    storage.write_text(task.output, json.dumps(seen))
    stats.keep()


def tasks(root: Path, n: int) -> list[ShardTask]:
    return [ShardTask(key=f"s{i}.json", input="-", output=str(root / f"s{i}.json")) for i in range(n)]


def test_workers_see_the_environment_of_each_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    for value in ("first", "second"):  # the second run's pool is forked from the server the first one started
        monkeypatch.setenv("DOLMA_KIT_TEST_VALUE", value)
        (tmp_path / value).mkdir()
        monkeypatch.chdir(tmp_path / value)
        result = run_shards(_write_environment, tasks(tmp_path / value, 4), title=value, processes=2)
        assert result.total.documents_in == result.total.kept == 4
        rows = [json.loads((tmp_path / value / f"s{i}.json").read_text()) for i in range(4)]
        assert {r["value"] for r in rows} == {value}
        assert {r["cwd"] for r in rows} == {str(tmp_path / value)}
        seen.append({r["parent"] for r in rows})
    assert seen[0] == seen[1] and os.getpid() not in seen[0], "both pools forked from one forkserver"
