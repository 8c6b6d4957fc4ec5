"""Configs: YAML + dotted overrides into the dataclasses; bad configs fail with messages that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app
from dolma_kit.cli.train import overrides_from_args
from train.config import ConfigError, load_config
from train.loop import Trainer

from .conftest import TINY


def test_overrides_types_and_spellings(tokenized_demo: Path) -> None:
    cfg = load_config(
        TINY, ["optim.lr=3e-4", "optim.betas=[0.9, 0.99]", "trainer.stop_at=null", "data.paths=[x]"]
    )
    assert cfg.optim.lr == 3e-4 and cfg.optim.betas == (0.9, 0.99) and cfg.data.paths == ["x"]
    assert cfg.trainer.run_dir == "runs/tiny"
    assert overrides_from_args(["--optim.lr=3e-4", "--trainer.seed", "3"]) == [
        "optim.lr=3e-4",
        "trainer.seed=3",
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1e-3", r"optim\.lrr: unknown key .lrr.; valid keys: betas, eps, final_lr_ratio"),
        ("trainer.max_steps=ten", r"trainer\.max_steps: must be an integer, got .ten."),
        ("model.n_heads=5", r"model\.d_model \(64\) must be divisible by model\.n_heads \(5\)"),
        ("trainer.device=tpu", "trainer.device must be auto, cpu or cuda"),
        ("optim", "must look like --section.key=value"),
    ],
)
def test_bad_keys_and_values(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(TINY, [override])


def test_bad_data_gives_clear_errors(tiny_config, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.paths\[0\]: tokenized directory .*nowhere does not exist"):
        Trainer(tiny_config(f"data.paths=[{tmp_path / 'nowhere'}]"))
    with pytest.raises(ConfigError, match=r"data\.seq_len=4096 is larger than every part file"):
        Trainer(tiny_config("data.seq_len=4096"))
    with pytest.raises(ConfigError, match="must be divisible by world size 1"):
        Trainer(tiny_config("trainer.micro_batch=3"))
    with pytest.raises(ConfigError, match=r"data\.eos_id=5 but the tokenized data's manifest says 0"):
        Trainer(tiny_config("data.eos_id=5"))
    with pytest.raises(ConfigError, match=r"model\.vocab_size=100 is smaller than the data.s vocabulary"):
        Trainer(tiny_config("model.vocab_size=100"))


def test_eos_is_checked_against_the_tokenizer_file(tiny_config) -> None:
    from tests.conftest import DEMO_TOKENIZER
    from train.data import check_tokenizer_eos

    assert tiny_config(f"data.tokenizer={DEMO_TOKENIZER}").data.build().eos_id == 0
    with pytest.raises(ConfigError, match=r"EOS id 300 is .* not a special token"):
        check_tokenizer_eos(str(DEMO_TOKENIZER), 300, 1024)  # a byte pair, not a special token
    with pytest.raises(ConfigError, match="has 1,024 ids but the data manifest says 512"):
        check_tokenizer_eos(str(DEMO_TOKENIZER), 0, 512)


def test_cli_dry_run_and_unknown_key(tokenized_demo: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["train", str(TINY), f"--data.paths=[{tokenized_demo}]", "--trainer.run_dir", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "196,608 parameters" in result.output and "sources ['forum', 'web', 'wiki']" in result.output
    assert not (tmp_path / "r").exists()  # a dry run writes nothing
    result = runner.invoke(app, [*args, "--optim.lrr=1", "--dry-run"])
    assert result.exit_code != 0 and "optim.lrr: unknown key" in str(result.exception)


def test_cli_and_trace_do_not_import_torch() -> None:
    """DESIGN §1: torch is heavy; `dolma-kit tag --help` and `dolma-kit trace` must not load it."""
    import subprocess
    import sys

    code = (
        "import sys, dolma_kit.cli, dolma_kit.cli.train_tools, train.trace, train.data, train.recovery; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=TINY.parents[1]).returncode == 0


def test_a_yaml_tag_in_a_training_config_is_a_positioned_error(tmp_path: Path) -> None:
    """Training configs are read by the one config loader: a Python tag is refused with file:line:col (it used
    to be a raw ConstructorError traceback), and nothing is constructed."""
    path = tmp_path / "tagged.yaml"
    path.write_text("model: !!python/object:os.system {}\n")
    with pytest.raises(
        ConfigError, match=r"tagged\.yaml:1:8: not valid YAML: could not determine a constructor"
    ):
        load_config(path)
