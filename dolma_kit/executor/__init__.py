"""Runs a stage's per-shard function over many shards: locally or on Ray, with progress, resume and counts.

The face of the family: `shards` (the contract: `ShardTask`, `ShardStats`, `run_one`, `RunResult`, the
`ExecutorConfig`), `local` (`run_shards`: in-process or a pool forked from a forkserver; Ray when configured;
stopping on SIGINT / SIGTERM), `lock` (one run per destination), `ray` (the Ray backend, an optional extra, imported only when
chosen), `report` (summary table and JSON, rejects files).
"""

from dolma_kit.executor.local import Interrupted, default_processes, run_shards, stop_on_signals
from dolma_kit.executor.lock import DestinationInUse
from dolma_kit.executor.report import RejectsWriter, summary_table, write_summary
from dolma_kit.executor.shards import (
    EXECUTORS,
    MARKER_SUFFIX,
    ExecutorConfig,
    RunResult,
    ShardFn,
    ShardStats,
    ShardTask,
    per_task,
    run_one,
)

__all__ = [
    "EXECUTORS",
    "MARKER_SUFFIX",
    "DestinationInUse",
    "ExecutorConfig",
    "Interrupted",
    "RejectsWriter",
    "RunResult",
    "ShardFn",
    "ShardStats",
    "ShardTask",
    "default_processes",
    "per_task",
    "run_one",
    "run_shards",
    "stop_on_signals",
    "summary_table",
    "write_summary",
]
