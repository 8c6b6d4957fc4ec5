"""`dolma-kit list` (issue 16, item 3): each tagger's attribute names as a recipe writes them, readable at 80
columns and piped (the old table wrapped its cells to one word a line)."""

from __future__ import annotations

from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.taggers.registry import default_attribute_names, resolve_name
from tests.conftest import FIXTURES


def list_output(*args: str) -> str:
    result = CliRunner().invoke(app, ["list", *args], env={"COLUMNS": "80"})  # not a terminal: as piped
    assert result.exit_code == 0, result.output
    return result.output


def test_list_shows_attribute_names_as_a_recipe_writes_them() -> None:
    out = list_output()
    for name in ("gopher.pass", "c4.pass", "pii.email_address", "char_length.length", "gopher_dolma.pass"):
        assert name in out, name
    assert "ft_lang_id.LABEL, one per label (176)" in out  # the model's labels, counted, not 176 lines
    assert "fasttext_classifier_v1 needs name=PREFIX" in out  # what it needs before it has names


def test_list_reads_at_80_columns_and_piped() -> None:
    lines = list_output().splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert not [line for line in lines if line != line.rstrip()]  # no padding to the terminal width
    options = next(i for i, line in enumerate(lines) if line.startswith("gopher_v1"))
    block = lines[options:]
    opening = next(line for line in block if line.lstrip().startswith("options"))
    assert opening.count("=") >= 3, opening  # several options a line, not a word a line


def test_user_taggers_list_their_names() -> None:
    out = list_output("--tagger_modules", str(FIXTURES / "user_taggers.py"))
    assert "whitespace_words.count" in out


def test_default_attribute_names_without_data() -> None:
    names, why = default_attribute_names(resolve_name("gopher"))
    assert names is not None and "pass" in names and why == ""
    names, why = default_attribute_names(resolve_name("fasttext_classifier"))
    assert names is None and "name=" in why
