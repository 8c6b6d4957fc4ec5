"""`dolma-kit train --auto-resume`: a process SIGKILLed inside a checkpoint write is restarted, resumes from the
newest complete checkpoint (never the half-written one) and produces the losses of an uninterrupted run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from train.loop import Trainer

from .conftest import FAST, TINY
from .test_loop import losses, read_metrics


def test_killed_during_a_checkpoint_write_and_resumed_equals_an_uninterrupted_run(
    tokenized_demo: Path, tmp_path: Path, tiny_config
) -> None:
    Trainer(tiny_config(run="straight")).fit()
    run = tmp_path / "killed"
    overrides = [f"--data.paths=[{tokenized_demo}]", f"--trainer.run_dir={run}", *(f"--{o}" for o in FAST)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "dolma_kit", "train", str(TINY), *overrides]
    done = subprocess.run(
        [*cmd, "--debug.kill_in_checkpoint=8", "--auto-resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training died (signal 9); restart 1 from step 4" in done.stderr
    assert (run / ".debug-killed-step8").is_file()  # the kill happened, inside checkpoint 8's write
    restarts = [r for r in read_metrics(run) if r["kind"] == "restart"]
    assert restarts == [{"kind": "restart", "step": 4, "reason": "signal 9", "restart": 1}]
    assert losses(run) == losses(tmp_path / "straight")  # restart records are not losses
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step12", "step8"]
    assert "restart 1: the training process died (signal 9)" in (run / "logbook.md").read_text()
