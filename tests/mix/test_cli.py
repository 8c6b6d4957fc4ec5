"""`dolma-kit mix` through the CLI: the table, --explain without reading data, errors as one line + exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app, main
from tests.mix.helpers import read_output, write_recipe
from tests.mix.test_mix import filtered_ids, make_corpus, recipe_text


def test_cli_run_explain_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_corpus(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", recipe_text(tmp_path, "out"))
    runner = CliRunner()

    explained = runner.invoke(app, ["mix", str(recipe), "--explain"], terminal_width=200)
    assert explained.exit_code == 0, explained.output
    assert "q__t__pass == 0" in explained.output  # names shown resolved
    assert "count(q__t__email) >= 2" in explained.output
    assert not (tmp_path / "out").exists()  # --explain reads and writes no document

    ran = runner.invoke(app, ["mix", str(recipe), "--processes", "1"], terminal_width=200)
    assert ran.exit_code == 0, ran.output
    for row in ("in (4 shards)", "removed: t.pass == 0", "removed: two emails", "replaced: t.email", "out"):
        assert row in ran.output
    assert [d["id"] for d in read_output(tmp_path / "out")] == filtered_ids()

    bad = write_recipe(
        tmp_path / "bad.yaml", recipe_text(tmp_path, "out").replace("t.pass == 0", "t.pas == 0")
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["mix", str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad}:8:11: unknown attribute 't.pas'" in err.replace("\n", "")
    assert "Traceback" not in err
