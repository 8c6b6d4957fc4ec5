"""The layout holds: no import circles, no module over 500 lines, lower layers never import a stage, and every
stage in the registry has its declaration and its subcommand (bench/layout.py prints the same figures)."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _layout():
    spec = importlib.util.spec_from_file_location("bench_layout", ROOT / "bench" / "layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_layout"] = module
    spec.loader.exec_module(module)
    return module


layout = _layout()

#: modules every stage builds on; none of them may import a stage family, the CLI or the trainer
LOWER = (
    "dolma_kit.errors",
    "dolma_kit.storage",
    "dolma_kit.config",
    "dolma_kit.documents",
    "dolma_kit.text",
    "dolma_kit.executor",
    "dolma_kit.attributes",
    "dolma_kit.provenance",
    "dolma_kit.stages",
)
STAGE_FAMILIES = (
    "dolma_kit.cli",
    "dolma_kit.pipeline",
    "dolma_kit.mix",
    "dolma_kit.tokenize",
    "dolma_kit.taggers",
    "dolma_kit.dedup",
    "dolma_kit.analysis",
    "dolma_kit.demo",
    "dolma_kit.index",
    "train",
)


def test_no_import_circles() -> None:
    assert layout.circles(layout.graph()) == []


def test_the_graph_sees_lazy_imports(tmp_path: Path) -> None:
    """The check would pass vacuously if it missed imports inside functions: it must see this known one."""
    edges = layout.graph()
    assert "train.loop" in edges["train.stage"]  # imported inside the stage's run function


def test_no_module_over_500_lines() -> None:
    assert layout.long_modules() == []


def test_lower_layers_import_no_stage() -> None:
    edges = layout.graph()
    for low in (m for m in edges if m.startswith(LOWER)):
        bad = sorted(t for t in edges[low] if t.startswith(STAGE_FAMILIES))
        assert not bad, f"{low} imports {bad}"


def test_every_registered_stage_declares_itself_and_has_a_subcommand() -> None:
    from dolma_kit.cli import app  # noqa: F401  (loading the CLI registers the stage subcommands)
    from dolma_kit.cli.options import STAGE_COMMANDS
    from dolma_kit.stages import MODULES, find_stage

    assert set(STAGE_COMMANDS) == set(MODULES)
    for name in MODULES:
        assert find_stage(name).name == name


def _stage_options() -> list[tuple[str, str, object]]:
    """(stage, option, the subcommand's default) for every option a stage subcommand declares itself."""
    from dolma_kit.cli import app  # noqa: F401
    from dolma_kit.cli.options import SHARED, STAGE_COMMANDS

    out = []
    for name, (command, _) in STAGE_COMMANDS.items():
        for param in inspect.signature(command).parameters.values():
            if param.name not in SHARED and param.default is not inspect.Parameter.empty:
                out.append((name, param.name, param.default))
    return out


@pytest.mark.parametrize(("stage", "option", "default"), _stage_options())
def test_subcommand_defaults_are_the_config_defaults(stage: str, option: str, default: object) -> None:
    """A default written in a subcommand's signature (Typer shows it in --help) must be the config field's:
    the config declares it, the CLI may only repeat it."""
    import dataclasses
    import enum

    from dolma_kit.config import config_keys
    from dolma_kit.stages import find_stage

    declared = find_stage(stage)
    if declared.config is None:
        pytest.skip(f"{stage} builds its own config")
    keys = config_keys(declared.config, flat=True)
    if option not in keys:
        pytest.skip(f"--{option} is not a config key of {stage}")
    cls = declared.config
    for part in keys[option][:-1]:
        cls = dataclasses.fields(cls)[[f.name for f in dataclasses.fields(cls)].index(part)].default_factory
    field = next(f for f in dataclasses.fields(cls) if f.name == keys[option][-1])
    expected = field.default_factory() if field.default is dataclasses.MISSING else field.default
    value = default.value if isinstance(default, enum.Enum) else default
    assert value == expected or (value is None and expected == []), (stage, option, value, expected)
