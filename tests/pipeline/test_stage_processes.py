"""`dolma-kit run` runs each stage in a process of its own: what a stage loads and allocates is returned when it
ends (nothing of it stays in the pipeline's process), and errors, output and counts come back as before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dolma_kit.errors import DolmaKitError
from tests.pipeline.conftest import ROOT, run_cli

PIPELINE = """\
work_dir: {work}
stages:
  - name: corpus
    command: demo-corpus
    docs: 60
  - command: tag
    documents: ["${{work_dir}}/documents/*/*.jsonl.gz"]
    experiment: e
    taggers: [{taggers}]
    tagger_modules: [{modules}]
    processes: 1
"""
DYING = ROOT / "tests" / "robustness" / "dying_taggers.py"


def write(tmp_path: Path, taggers: str = "char_length") -> Path:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.format(work=tmp_path / "w", taggers=taggers, modules=DYING))
    return path


def test_a_stage_s_memory_is_returned_when_it_ends(tmp_path: Path) -> None:
    """A tagger keeps 300 MB (as a model cache does): the pipeline's own process never holds it, unless the
    stages run in it (DOLMA_KIT_STAGES_IN_PROCESS=1, as before)."""
    code = (
        "import sys; from dolma_kit.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the (large) forked test process
        "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0]\n"
        "print('peak MB', int(hwm.split()[1]) // 1024)"
    )
    peaks = {}
    for flag in ("0", "1"):
        path = write(tmp_path / flag, taggers="'hog_v1:mb=300'")
        done = subprocess.run([sys.executable, "-c", code, "run", str(path)], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "DOLMA_KIT_STAGES_IN_PROCESS": flag})  # fmt: skip
        assert done.returncode == 0, done.stderr
        peaks[flag] = int(done.stdout.rsplit("peak MB", 1)[1])
    assert peaks["1"] > 300 > peaks["0"], peaks


def test_output_errors_and_counts_come_back_through_the_child(tmp_path: Path) -> None:
    result = run_cli(["run", str(write(tmp_path))])
    assert result.exit_code == 0, result.output
    assert (
        "shards" in result.output or "shard" in result.output
    )  # the tag stage's table, printed by the child
    assert "documents in = kept + removed (or marked) + rejected" in " ".join(result.output.split())
    # a user error in the stage is raised in the pipeline with its message
    result = run_cli(["run", str(write(tmp_path, taggers="no_such_tagger")), "--force"])
    assert isinstance(result.exception, DolmaKitError) and "no_such_tagger" in str(result.exception)


def test_a_stage_process_that_dies_is_one_line(tmp_path: Path) -> None:
    """The tagger SIGKILLs its process (the stage's own: `processes: 1`), as the OOM killer would."""
    (tmp_path / "state").mkdir()
    result = run_cli(["run", str(write(tmp_path, taggers=f"'dies_v1:state={tmp_path / 'state'}'"))])
    assert isinstance(result.exception, DolmaKitError), (result.exception, result.output)
    assert str(result.exception) == (
        "stage 'tag': its process died (signal 9 (SIGKILL); out of memory? killed?); finished shards are kept: "
        "re-run to resume"
    )


def test_sigterm_reaches_the_stage_process_and_the_line_comes_back(tmp_path: Path) -> None:
    """`kill PID` on the pipeline: its stage process ends its workers and says how far it got; the pipeline
    prints that one line, exits 143, and leaves no process behind."""
    import signal
    import time

    from tests.test_signals import alive, descendants

    path = write(tmp_path, taggers="char_length, 'slow_echo_v1:seconds=0.01'")
    text = path.read_text().replace(str(DYING), str(ROOT / "tests" / "fixtures" / "user_taggers.py"))
    path.write_text(
        text.replace("processes: 1", "processes: 2").replace("docs: 60", "docs: 400\n    shard_docs: 50")
    )
    proc = subprocess.Popen([sys.executable, "-m", "dolma_kit", "run", str(path)], cwd=ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    markers = tmp_path / "w" / "attributes" / "e"
    deadline = time.monotonic() + 120
    while not list(markers.glob("*/*.done")) and time.monotonic() < deadline:
        time.sleep(0.02)
    processes = descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    time.sleep(1)
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("interrupted: ") and lines[0].endswith("re-run to resume")
    ), err
    assert len(processes) >= 3 and not [p for p in processes if alive(p)]
