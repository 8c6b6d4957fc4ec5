"""Without the infini-gram engine every index command is one line saying how to install it; this module runs
whether the engine is installed or not (it hides it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dolma_kit.cli import main


@pytest.mark.parametrize("command", [["index", "{tokens}"], ["find", "--index", "{tokens}", "--tokens", "5"]])
def test_without_the_engine_every_command_is_one_install_line(
    command: list[str], demo_tokens: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "infini_gram", None)
    monkeypatch.setitem(sys.modules, "infini_gram.engine", None)
    with pytest.raises(SystemExit) as exit_info:
        main([c.format(tokens=demo_tokens) for c in command])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "pip install 'dolma-kit[index]'" in err and "Traceback" not in err
