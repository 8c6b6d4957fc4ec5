"""The demo pipeline on a cut-down corpus (200 documents, 10 training steps), run once and shared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pipelines" / "demo.yaml"
SMALL = [
    "--corpus.docs=200",
    "--train.trainer.max_steps=10",
    "--train.trainer.log_every=1",
    "--processes",
    "1",
]


def run_cli(args: list[str]) -> Any:
    """`dolma-kit ARGS` in this process (paths in the pipeline files are relative to the repository root)."""
    return CliRunner().invoke(app, args, catch_exceptions=True)


def run_demo(work: Path, *extra: str) -> Any:
    result = run_cli(["run", str(DEMO), f"--work_dir={work}", *SMALL, *extra])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="session", autouse=True)
def _repo_root_cwd() -> Any:
    """Pipeline files name configs/ and mixers/ relative to the repository root, as `make demo` runs them."""
    import os

    before = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(before)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(work dir, CLI output) of one uninterrupted run of pipelines/demo.yaml, cut down."""
    work = tmp_path_factory.mktemp("pipeline") / "clean"
    result = run_demo(work)
    return work, result.output


def summary(work: Path) -> dict[str, Any]:
    return json.loads((work / "pipeline_summary.json").read_text())
