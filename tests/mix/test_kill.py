"""A mix killed with SIGKILL mid-run and run again gives the bytes of a run that never stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dolma_kit.mix import stage as mix
from dolma_kit.mix.recipe import load_recipe
from tests.mix.helpers import output_bytes, whole, write_recipe, write_schema, write_source

SHARDS, PER_SHARD = 8, 1000


def make(root: Path) -> Path:
    for shard in range(SHARDS):
        docs = [
            {"id": f"{shard}-{i}", "text": f"Doc {i} of {shard}, mail x{i}@example.org. " * (1 + i % 4)}
            for i in range(PER_SHARD)
        ]
        rows = []
        for i, d in enumerate(docs):
            at = d["text"].index("x")
            rows.append({"k__t__keep": whole(d["text"], float(i % 3 != 0)), "k__t__email": [[at, at + len(f"x{i}@example.org"), 1.0]]})  # fmt: skip
        write_source(root, "web", docs, {"k": rows}, shard=f"part-{shard:04d}")
    write_schema(root, "k", ["k__t__keep", "k__t__email"])
    text = f"""
streams:
  - name: web
    documents: ["{root}/documents/web/*.jsonl.gz"]
    attributes: [k]
    filter: {{exclude: [t.keep == 0]}}
    replace: [{{attribute: t.email, replacement: "|||EMAIL_ADDRESS|||"}}]
    sample: 0.8
    output: {{path: "{root}/out", max_bytes: 40000}}
"""
    return write_recipe(root / "r.yaml", text)


@pytest.mark.slow
def test_sigkill_then_resume_is_byte_identical(tmp_path: Path) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    mix.mix(load_recipe(str(make(clean))), processes=1)
    recipe = make(killed)
    command = [sys.executable, "-m", "dolma_kit", "mix", str(recipe), "--processes", "1"]
    proc = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    markers = killed / "out" / "_mix" / "web" / "web"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (markers.exists() and list(markers.glob("*.done"))):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(markers.glob("*.done")))
    assert 1 <= finished < SHARDS, "the kill must land mid-run for this test to mean anything"

    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "in (8 shards)" in resumed.stdout
    got = {
        k: v.replace(str(killed).encode(), str(clean).encode())
        for k, v in output_bytes(killed / "out").items()
    }
    assert got == output_bytes(clean / "out")  # parts and manifests (manifests name their input path)
