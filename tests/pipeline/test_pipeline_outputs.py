"""The plan check on outputs: two stages writing one folder are refused by `--dry-run`, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolma_kit.config import ConfigError
from dolma_kit.pipeline import load_pipeline
from tests.pipeline.conftest import DEMO, run_cli

HEAD = """\
work_dir: {work}
stages:
  - name: corpus
    command: demo-corpus
    docs: 60
"""
EXACT = """\
  - name: {name}
    command: dedup exact
    documents: ["${{work_dir}}/documents/*/*.jsonl.gz"]
    experiment: {experiment}
    key: {key}
{extra}"""


def write(tmp_path: Path, *stages: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD.format(work=tmp_path / "w") + "".join(stages))
    return path


def dry_run_error(path: Path) -> str:
    result = run_cli(["run", str(path), "--dry-run"])
    assert isinstance(result.exception, ConfigError), (result.exception, result.output)
    return str(result.exception)


def test_two_dedup_stages_sharing_a_work_dir_fail_the_dry_run(tmp_path: Path) -> None:
    scratch = "    work_dir: ${work_dir}/scratch\n"
    path = write(
        tmp_path,
        EXACT.format(name="text", experiment="t", key="text", extra=scratch),
        EXACT.format(name="para", experiment="p", key="paragraphs", extra=scratch),
    )
    message = dry_run_error(path)
    assert (
        f"{path}:17:15: stage 'para': work_dir {tmp_path / 'w' / 'scratch'} is also the work_dir of "
        in message
    )
    assert "stage 'text': two 'dedup exact' stages would mix their intermediate files" in message
    assert not (tmp_path / "w").exists()  # refused before anything ran


def test_one_attribute_folder_for_two_stages_is_refused(tmp_path: Path) -> None:
    tag = '  - command: tag\n    documents: ["${work_dir}/documents/*/*.jsonl.gz"]\n    experiment: e\n'
    tag += "    taggers: [char_length]\n"
    message = dry_run_error(
        write(tmp_path, tag, EXACT.format(name="dups", experiment="e", key="text", extra=""))
    )
    assert "stage 'dups': attribute folder (experiment 'e')" in message
    assert (
        f"{tmp_path / 'w' / 'attributes' / 'e'} is also the attribute folder (experiment 'e') of stage 'tag'"
        in message
    )
    # the same folder reached through --destination is the same clash
    extra = f"    destination: {tmp_path / 'w' / 'attributes' / 'e'}\n"
    message = dry_run_error(
        write(tmp_path, tag, EXACT.format(name="dups", experiment="x", key="text", extra=extra))
    )
    assert "stage 'dups': attribute folder (experiment 'x')" in message


def test_shared_destinations_and_run_dirs_are_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"stage 'report': output /data/t is also the destination of stage 'tokenize'"
    ):
        load_pipeline(str(DEMO), ["work_dir=/data", "tokenize.destination=/data/t", "report.output=/data/t"])
    with pytest.raises(
        ConfigError, match=r"stage 'train': run_dir /data/tokens is also the destination of stage 'tokenize'"
    ):
        load_pipeline(str(DEMO), ["work_dir=/data", "train.trainer.run_dir=/data/tokens"])


def test_different_commands_may_share_a_work_dir_and_the_demo_passes(tmp_path: Path) -> None:
    """`dedup exact` keeps its files in `<work_dir>/exact/`, `dedup minhash` in `<work_dir>/minhash/`."""
    minhash = EXACT.format(name="near", experiment="n", key="text", extra="    work_dir: /s\n")
    minhash = minhash.replace("dedup exact", "dedup minhash").replace("    key: text\n", "")
    path = write(
        tmp_path, EXACT.format(name="text", experiment="t", key="text", extra="    work_dir: /s\n"), minhash
    )
    assert [s.name for s in load_pipeline(str(path)).stages] == ["corpus", "text", "near"]
    assert len(load_pipeline(str(DEMO), ["work_dir=/data"]).stages) == 11


def test_a_stage_that_declares_its_outputs_is_taken_at_its_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from dolma_kit import stages

    for name in ("tag", "dedup exact"):
        declared = dataclasses.replace(stages.stage(name), outputs=lambda config: ["/shared/out"])
        monkeypatch.setitem(stages._LOADED, name, declared)
    tag = '  - command: tag\n    documents: ["${work_dir}/documents/*/*.jsonl.gz"]\n    experiment: a\n'
    tag += "    taggers: [char_length]\n"
    path = write(tmp_path, tag, EXACT.format(name="dups", experiment="b", key="text", extra=""))
    with pytest.raises(
        ConfigError, match=r"stage 'dups': output /shared/out is also the output of stage 'tag'"
    ):
        load_pipeline(str(path))
