"""CLI habits (issue 16, item 7): Dolma's spellings, did-you-mean, readable help, errors printed alone."""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dolma_kit.cli import app, main
from dolma_kit.cli.variadic import dolma_spellings
from dolma_kit.config import ConfigError, Where, from_dict, load_yaml
from dolma_kit.errors import DolmaKitError
from tests.conftest import CORPUS, FIXTURES

ROOT = Path(__file__).resolve().parents[2]


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`dolma-kit ARGS` through the console-script entry point: (exit code, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def all_commands() -> list[tuple[str, ...]]:
    """Every leaf command's path (`("dedup", "exact")`)."""
    paths: list[tuple[str, ...]] = []

    def walk(cmd: typing.Any, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        else:
            paths.append(path)

    walk(typer.main.get_command(app), ())
    return paths


# ------------------------------------------------------------------------------------ Dolma's spellings


def test_underscore_spellings_are_rewritten_to_declared_options() -> None:
    declared = {"--tagger-modules", "--skip-bad", "--no-skip-bad", "--work-dir"}
    args = ["--tagger_modules=m.py", "--skip_bad", "--no_skip_bad", "--work_dir", "w", "--train.max_steps=3"]
    assert dolma_spellings(args, declared) == [
        "--tagger-modules=m.py",
        "--skip-bad",
        "--no-skip-bad",
        "--work-dir",
        "w",
        "--train.max_steps=3",  # not declared: an override, left alone
    ]
    assert dolma_spellings(["--", "--skip_bad"], declared) == ["--", "--skip_bad"]


def test_tag_takes_dolma_spellings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tag", "--documents", str(CORPUS / "documents" / "*" / "*.jsonl"), "--experiment", "x"]
    args += ["--taggers", "whitespace_words", "--tagger_modules", str(FIXTURES / "user_taggers.py")]
    args += ["--skip_bad", "--processes", "1", "--destination", str(tmp_path / "attrs")]
    code, _, err = run_main(args, capsys)
    assert code == 0, err
    assert list((tmp_path / "attrs").glob("*/*.jsonl*"))


def test_run_help_lists_dirs_and_overrides() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("--work-dir", "--work_dir", "--local-dir", "--local_dir", "--STAGE.key=VALUE"):
        assert text in result.output, text


def test_run_work_dir_option_in_both_spellings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--work-dir", "--work_dir"):
        code, out, err = run_main(
            ["run", str(ROOT / "pipelines" / "demo.yaml"), "--dry-run", f"{flag}={tmp_path / flag}"], capsys
        )
        assert code == 0, err
        assert str(tmp_path / flag) in out.replace("\n", "")


# ------------------------------------------------------------------------------------ did you mean


def test_unknown_tagger_suggests_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(
        ["tag", "-d", str(CORPUS / "documents" / "*" / "*.jsonl"), "-e", "x", "-t", "gophr"], capsys
    )
    assert code == 2
    assert "unknown tagger 'gophr' (did you mean 'gopher'?)" in err
    assert "Traceback" not in err


def test_unknown_config_key_suggests_the_closest_with_its_line(tmp_path: Path) -> None:
    from dolma_kit.tokenize.stage import TokenizeConfig

    path = tmp_path / "c.yaml"
    path.write_text("documents: [a]\ndestination: out\ntokeniser: gpt2\n")
    with pytest.raises(ConfigError) as info:
        from_dict(TokenizeConfig, load_yaml(str(path)), Where(file=str(path)))
    assert str(info.value).startswith(f"{path}:3:1: tokeniser: unknown key 'tokeniser'; valid keys: ")
    assert str(info.value).endswith("did you mean 'tokenizer'?")


def test_training_config_typo_names_file_line_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tiny.yaml"
    text = (ROOT / "configs" / "tiny.yaml").read_text().replace("  max_steps: 200", "  max_step: 200")
    config.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "max_step:" in s)
    code, _, err = run_main(["train", str(config), "--dry-run"], capsys)
    assert code == 2
    assert f"{config}:{line}:3: trainer.max_step: unknown key 'max_step'" in err
    assert "did you mean 'max_steps'?" in err


def test_no_suggestion_when_nothing_is_close() -> None:
    from dolma_kit.taggers.registry import resolve_name

    with pytest.raises(DolmaKitError) as info:
        resolve_name("zzzzzz")
    assert "did you mean" not in str(info.value)


# ------------------------------------------------------------------------------------ readable help


@pytest.mark.parametrize("path", all_commands(), ids=" ".join)
def test_help_names_values_as_written(path: tuple[str, ...]) -> None:
    """`RECIPE`, not `{recipe}`; `N`, `TEXT`, `exact|estimate`, never `<str>`, `<int>`, `<bool>`."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage
    for raw in ("<str>", "<int>", "<float>", "<bool>", "<list[", "<Path>", "<path>"):
        assert raw not in result.output, (raw, result.output)


def test_fixed_values_are_listed_as_the_config_allows() -> None:
    from dolma_kit.dedup.minhash import Verify
    from dolma_kit.dedup.minhash_stage import Stage

    result = CliRunner().invoke(app, ["dedup", "minhash", "--help"], env={"COLUMNS": "200"})
    assert "|".join(typing.get_args(Verify)) in result.output
    assert "|".join(typing.get_args(Stage)) in result.output
    usage = CliRunner().invoke(app, ["mix", "--help"]).output.split("Usage:")[1].splitlines()[0]
    assert usage.split() == ["root", "mix", "[OPTIONS]", "RECIPE"]


def test_ray_install_hint_is_printed_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(app, ["tag", "--help"], env={"COLUMNS": "200"})
    assert "pip install 'dolma-kit[ray]'" in result.output
    monkeypatch.setitem(sys.modules, "ray", None)  # as where Ray is not installed
    args = ["tag", "-d", str(CORPUS / "documents" / "*" / "*.jsonl"), "-e", "x", "-t", "char_length"]
    code, _, err = run_main([*args, "--executor", "ray", "--destination", str(tmp_path / "a")], capsys)
    assert code == 2
    assert "pip install 'dolma-kit[ray]'" in err


# ------------------------------------------------------------------------------------ errors alone


def test_provenance_unknown_document_prints_only_the_error(
    tokenized_demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in ([], ["--json"]):
        code, out, err = run_main(["provenance", str(tokenized_demo), "--doc", "no-such-doc", *extra], capsys)
        assert code == 2
        assert out == ""
        assert err.strip() == f"error: {tokenized_demo}: no document 'no-such-doc'"
    code, out, _ = run_main(["provenance", str(tokenized_demo), "--doc", "web-0001", "--json"], capsys)
    assert code == 0 and json.loads(out)[0]["id"] == "web-0001"
