"""`run --dry-run` checks what it can without data (issue 16 item 4): tagger names and options, recipe attribute
names against what earlier stages will write, tokenizer paths, training config keys; every problem at once,
each with its stage, file:line and a did-you-mean. Nothing runs: each test is a dry run of a copy of
pipelines/demo.yaml with one typo planted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dolma_kit.cli import main
from dolma_kit.config import ConfigError
from dolma_kit.pipeline import load_pipeline
from tests.pipeline.conftest import DEMO, ROOT, run_cli

RECIPE = ROOT / "mixers" / "demo-pipeline.yaml"
TINY = ROOT / "configs" / "tiny.yaml"


def _planted(tmp_path: Path, name: str, text: str, old: str, new: str) -> tuple[Path, int]:
    """`text` with `old` replaced by `new`, written to tmp_path/name; returns (path, the 1-based line)."""
    assert text.count(old) >= 1, old
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path, text[: text.index(old)].count("\n") + 1


def _line(path: Path, text: str) -> int:
    content = path.read_text()
    return content[: content.index(text)].count("\n") + 1


def _pipeline(tmp_path: Path, old: str = "", new: str = "", text: str | None = None) -> tuple[Path, int]:
    return _planted(tmp_path, "pipe.yaml", text or DEMO.read_text(), old or "stages:", new or "stages:")


def _dry_run_fails(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`dolma-kit run PATH --dry-run` through the entry point: exit 2, one error message, nothing run."""
    with pytest.raises(SystemExit) as exit_:  # anything else (a traceback) fails the test
        main(["run", str(path), "--dry-run", f"--work_dir={tmp_path / 'work'}"])
    assert exit_.value.code == 2
    assert not (tmp_path / "work").exists()
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    return " ".join(err.split())


def test_a_tagger_typo_names_the_stage_line_and_the_tagger_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, line = _pipeline(
        tmp_path, "taggers: [ft_lang_id, gopher, c4, pii]", "taggers: [ft_lang_id, gopher, c4, pi]"
    )
    out = _dry_run_fails(path, tmp_path, capsys)
    assert f"{path}:{line}:" in out
    assert "stage 'tag'" in out and "unknown tagger 'pi'" in out and "did you mean 'pii'?" in out


def test_tagger_options_and_model_paths_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, _ = _planted(tmp_path, "recipe.yaml", RECIPE.read_text(), "gopher.pass == 0}", "gopher.pas == 0}")
    text = DEMO.read_text().replace("recipe: mixers/demo-pipeline.yaml", f"recipe: {recipe}")
    path, line = _pipeline(
        tmp_path,
        "taggers: [ft_lang_id, gopher, c4, pii]",
        'taggers: [ft_lang_id, "gopher:min_wrds=3", c4, pii, "ft_lang_id_paragraph:model=/no/lid.bin"]',
        text=text,
    )
    out = _dry_run_fails(path, tmp_path, capsys)
    assert "3 problems" in out  # each, not only the first
    assert f"{path}:{line}:" in out and "stage 'tag'" in out
    assert "min_wrds" in out and "did you mean 'min_words'?" in out
    assert "/no/lid.bin does not exist" in out
    # a known tagger with a bad option still says what it writes: the recipe is checked against it too
    assert "unknown attribute 'gopher.pas'" in out


def test_a_recipe_attribute_typo_fails_with_both_files_and_the_name_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, recipe_line = _planted(
        tmp_path, "recipe.yaml", RECIPE.read_text(), "gopher.pass == 0}", "gopher.pas == 0}"
    )
    path, _ = _pipeline(tmp_path, "recipe: mixers/demo-pipeline.yaml", f"recipe: {recipe}")
    out = _dry_run_fails(path, tmp_path, capsys)
    assert f"{path}:{_line(path, '- command: mix')}:" in out and "stage 'mix'" in out
    assert f"{recipe}:{recipe_line}:" in out
    assert "unknown attribute 'gopher.pas'" in out and "gopher.pass?" in out


def test_an_experiment_no_stage_writes_is_named_with_the_ones_that_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, _ = _planted(
        tmp_path,
        "recipe.yaml",
        RECIPE.read_text(),
        "attributes: [demo, dedup_text, dedup_minhash, decontam]",
        "attributes: [demo, dedup_txt, dedup_minhash, decontam]",
    )
    path, _ = _pipeline(tmp_path, "recipe: mixers/demo-pipeline.yaml", f"recipe: {recipe}")
    out = _dry_run_fails(path, tmp_path, capsys)
    assert f"{path}:{_line(path, '- command: mix')}:" in out and "stage 'mix'" in out
    assert "experiment 'dedup_txt'" in out and "did you mean 'dedup_text'?" in out


def test_a_tokenizer_path_no_stage_writes_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, line = _pipeline(
        tmp_path, "tokenizer: ${train-tokenizer.output}", "tokenizer: ${work_dir}/tokenizr.json"
    )
    out = _dry_run_fails(path, tmp_path, capsys)
    assert f"{path}:{line}:" in out and "stage 'tokenize'" in out
    assert "tokenizr.json does not exist" in out
    assert "tokenizer.json' (written by stage 'train-tokenizer')?" in out


def test_training_config_typos_in_both_files_are_reported_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, config_line = _planted(tmp_path, "tiny.yaml", TINY.read_text(), "d_model:", "d_modle:")
    text = DEMO.read_text().replace("config: configs/tiny.yaml", f"config: {config}")
    path, line = _pipeline(tmp_path, "max_steps: 200", "max_step: 200", text=text)
    out = _dry_run_fails(path, tmp_path, capsys)
    assert "2 problems" in out
    assert f"{path}:{line}:" in out and "did you mean 'max_steps'?" in out
    assert f"{config}:{config_line}:" in out and "did you mean 'd_model'?" in out
    assert out.count("stage 'train'") == 2


def test_every_kind_at_once_and_no_echo_from_stages_that_depend_on_a_broken_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEMO.read_text().replace("taggers: [ft_lang_id, gopher, c4, pii]", "taggers: [ft_lang_id, pi]")
    text = text.replace("key: paragraphs", "key: paragraphs\n    thresold: 3")
    text = text.replace("tokenizer: ${train-tokenizer.output}", "tokenizer: /no/tokenizer.json")
    text = text.replace("    experiment: demo\n", "    experimnt: demo\n")  # the dedups read ${tag.documents}
    path, _ = _pipeline(tmp_path, text=text)
    out = _dry_run_fails(path, tmp_path, capsys)
    assert "2 problems" in out  # tag's key and the tokenizer; the stages reading ${tag.…} are not echoes
    assert "unknown key 'experimnt'" in out and "did you mean 'experiment'?" in out
    assert "/no/tokenizer.json does not exist" in out


def test_an_experiment_already_on_disk_is_checked_against_its_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    schema_dir = work / "attributes" / "old"
    schema_dir.mkdir(parents=True)
    (schema_dir / "attributes_schema.json").write_text(json.dumps({"attributes": ["old__q__score"]}))
    recipe = tmp_path / "recipe.yaml"
    rule = "q.scor < 0.5"
    recipe.write_text(
        "streams:\n  - name: s\n    documents: ['${work_dir}/documents/s/*.jsonl.gz']\n    attributes: [old]\n"
        f"    output: {{path: '${{work_dir}}/mixed'}}\n    filter: {{exclude: ['{rule}']}}\n"
    )
    path = tmp_path / "pipe.yaml"
    path.write_text(f"work_dir: {work}\nstages:\n  - command: mix\n    recipe: {recipe}\n")
    with pytest.raises(ConfigError, match=r"unknown attribute 'q.scor' \(did you mean old.q.score\?\)"):
        load_pipeline(str(path))
    recipe.write_text(recipe.read_text().replace(rule, "q.score < 0.5"))
    assert [s.name for s in load_pipeline(str(path)).stages] == ["mix"]


def test_a_dolma_mixer_name_nobody_writes_is_a_warning_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    config = tmp_path / "dolma.json"
    config.write_text(
        json.dumps(
            {
                "streams": [
                    {
                        "name": "s",
                        "documents": [f"{work}/documents/*/*.jsonl.gz"],
                        "attributes": ["demo"],
                        "output": {"path": f"{work}/mixed", "max_size_in_bytes": 100000},
                        "filter": {"exclude": ["$.attributes[?(@.demo__gopher__pas[0][2] < 1)]"]},
                    }
                ]
            }
        )
    )
    text = DEMO.read_text().replace("recipe: mixers/demo-pipeline.yaml", f"recipe: {config}")
    path = _pipeline(tmp_path, text=text)[0]
    pipe = load_pipeline(str(path), [f"work_dir={work}"])
    assert len(pipe.warnings) == 1
    assert "demo__gopher__pas" in pipe.warnings[0] and "never matches" in pipe.warnings[0]
    assert "did you mean 'demo__gopher__pass'?" in pipe.warnings[0]
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(path), "--dry-run", f"--work_dir={work}"])
    assert not exit_.value.code  # the plan is printed, after the warning
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "never matches" in err


@pytest.mark.parametrize("shipped", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_the_shipped_pipelines_pass_the_dry_run(shipped: Path, tmp_path: Path) -> None:
    result = run_cli(["run", str(shipped), "--dry-run", f"--work_dir={tmp_path / 'work'}"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


def test_the_dry_run_imports_no_torch(tmp_path: Path) -> None:
    """The training config is checked with the trainer's config dataclasses only (torch takes seconds)."""
    code = (
        "import sys; from dolma_kit.cli import main\n"
        f"try:\n    main(['run', {str(DEMO)!r}, '--dry-run', '--work_dir={tmp_path}'])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("False"), done.stdout[-300:]
