"""A pipeline killed with SIGKILL in the middle of a stage resumes: finished stages are skipped, the stage that
was running picks up from its shard markers, and the final outputs equal those of a run that never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipeline.conftest import DEMO, ROOT, SMALL, run_demo, summary


def outputs(work: Path) -> dict[str, bytes]:
    """What the pipeline made, minus files that name their own paths or hold timings."""
    files = [
        *sorted((work / "mixed" / "documents").glob("*/*.jsonl.gz")),
        *sorted((work / "tokens").glob("part-*.npy")),
        work / "tokenizer.json",
    ]
    out = {str(p.relative_to(work)): p.read_bytes() for p in files}
    metrics = [
        json.loads(line) for line in (work / "train" / "tiny" / "metrics.jsonl").read_text().splitlines()
    ]
    out["losses"] = json.dumps([r.get("loss", r.get("eval_loss")) for r in metrics]).encode()
    return out


@pytest.mark.slow
def test_sigkill_mid_stage_then_resume(demo_run: tuple[Path, str], tmp_path: Path) -> None:
    clean, _ = demo_run
    work = tmp_path / "killed"
    command = [sys.executable, "-m", "dolma_kit", "run", str(DEMO), f"--work_dir={work}", *SMALL]
    proc = subprocess.Popen(
        command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    running = work / "_pipeline" / "dedup_minhash.running"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not running.exists() and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert running.exists() and not (work / "_pipeline" / "dedup_minhash.done").exists(), (
        "kill landed mid-stage"
    )
    assert not (work / "pipeline_summary.json").exists()

    run_demo(work)
    statuses = {r["stage"]: r["status"] for r in summary(work)["stages"]}
    assert [statuses[s] for s in ("corpus", "tag", "dedup_text", "dedup_para")] == ["skipped (done)"] * 4
    assert statuses["dedup_minhash"] == "ran (resume)"
    assert statuses["mix"] == statuses["report"] == "ran"
    assert not running.exists()
    assert outputs(work) == outputs(clean)

    # killed in `train` (simulated: its .running marker back, .done gone): resuming keeps the run folder, so
    # the trainer continues from its last checkpoint instead of training again from step 0
    done = work / "_pipeline" / "train.done"
    marker = json.loads(done.read_text())
    done.unlink()
    (work / "_pipeline" / "train.running").write_text(
        json.dumps({"digest": marker["digest"], "forced": False})
    )
    checkpoint = next((work / "train" / "tiny" / "checkpoints").iterdir())
    written = checkpoint.stat().st_mtime_ns
    run_demo(work)
    statuses = {r["stage"]: r["status"] for r in summary(work)["stages"]}
    assert statuses["train"] == "ran (resume)" and statuses["report"] == "skipped (done)"
    assert checkpoint.stat().st_mtime_ns == written
