"""export-hf writes an OlmoForCausalLM checkpoint that transformers loads offline with our logits; averaging
checkpoints is the fp32 mean of their weights and stays loadable and exportable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dolma_kit.config import ConfigError
from train.export_hf import export_hf
from train.loop import Trainer
from train.weights import average_checkpoints, completed_checkpoints, load_model


@pytest.mark.parametrize("tied", [True, False])
def test_export_loads_in_transformers_with_equal_logits(tiny_config, tmp_path: Path, tied: bool) -> None:
    transformers = pytest.importorskip("transformers")
    cfg = tiny_config(
        "trainer.max_steps=2", "trainer.eval_every=0", f"model.weight_tying={str(tied).lower()}"
    )
    Trainer(cfg).fit()
    out = tmp_path / "hf"
    info = export_hf(cfg.trainer.run_dir, out)
    assert info["step"] == 2 and (out / "model.safetensors").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["OlmoForCausalLM"] and config["tie_word_embeddings"] is tied
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    assert type(hf).__name__ == "OlmoForCausalLM"
    _, ours, _ = load_model(cfg.trainer.run_dir)
    idx = torch.randint(0, 1024, (2, 32))
    with torch.no_grad():
        diff = (ours(idx) - hf(idx).logits).abs().max().item()
    assert diff <= 1e-4, diff
    # the tokenizer that made the data, usable through AutoTokenizer
    tok = transformers.AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert tok.eos_token_id == 0 and tok.decode(tok("hello world")["input_ids"]) == "hello world"


def test_export_refuses_layerwise_and_rmsnorm_models(tiny_config, tmp_path: Path) -> None:
    cfg = tiny_config(
        "trainer.max_steps=1",
        "trainer.eval_every=0",
        "model.norm=rmsnorm",
        "model.layerwise_scaling={alpha: [0.5, 1.0], beta: [1, 4], ffn_divisor: 64}",
    )
    Trainer(cfg).fit()
    with pytest.raises(ConfigError, match="layer-wise scaling"):
        export_hf(cfg.trainer.run_dir, tmp_path / "hf")


def test_average_of_checkpoints_is_the_fp32_mean(tiny_config, tmp_path: Path) -> None:
    overrides = [
        "trainer.max_steps=9",
        "trainer.eval_every=0",
        "trainer.checkpoint_every=3",
        "trainer.keep_last=5",
    ]
    cfg = tiny_config(*overrides)
    Trainer(cfg).fit()
    run = Path(cfg.trainer.run_dir)
    assert [s for s, _ in completed_checkpoints(run)] == [3, 6, 9]
    models = [load_model(run, s)[1].state_dict() for s in (6, 9)]
    info = average_checkpoints(run, 2, tmp_path / "avg")
    assert info["steps"] == [6, 9]
    _, avg, step = load_model(tmp_path / "avg")
    assert step == 9
    for name, value in avg.state_dict().items():
        torch.testing.assert_close(value, (models[0][name] + models[1][name]) / 2, rtol=0, atol=1e-7)
    assert not torch.equal(models[0]["wte.weight"], models[1]["wte.weight"])
    with pytest.raises(ConfigError, match="fewer than --last 4"):
        average_checkpoints(run, 4, tmp_path / "avg4")
    # the trainer resumes from the average (model-only: a fresh optimizer) in the average's run folder
    cont = Trainer(tiny_config(*overrides, run="avg"))
    cont.maybe_resume()
    assert cont.step == 9
    torch.testing.assert_close(cont.model.wte.weight, avg.wte.weight)  # one CPU rank: a plain module


def test_cli_average_export_and_memorization(tiny_config, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dolma_kit.cli import app

    overrides = [
        "trainer.max_steps=6",
        "trainer.eval_every=0",
        "trainer.checkpoint_every=3",
        "trainer.keep_last=3",
    ]
    Trainer(tiny_config(*overrides)).fit()
    run, runner = tmp_path / "run", CliRunner()
    result = runner.invoke(app, ["average-checkpoints", str(run), str(tmp_path / "avg"), "--last", "2"])
    assert result.exit_code == 0, result.output
    assert "averaged steps [3, 6]" in result.output
    result = runner.invoke(
        app, ["export-hf", str(tmp_path / "avg"), str(tmp_path / "hf"), "--dtype", "bfloat16"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["dtype"] == "bfloat16"
    assert (tmp_path / "hf" / "tokenizer.json").is_file() and (
        tmp_path / "hf" / "generation_config.json"
    ).is_file()
    args = ["memorization", str(run), "--step", "6", "--prompt", "8", "--continuation", "8", "--samples", "4"]
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "memo")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "memo" / "memorization-step6.png").is_file() and "by source" in result.output


def test_export_declares_a_context_longer_than_the_training_seq_len(tiny_config, tmp_path: Path) -> None:
    """The tiny config trains at seq 32; writing 32 as max_position_embeddings made HF and lm-eval truncate."""
    for declared, expected in ((None, 2048), (512, 512)):
        extra = [] if declared is None else [f"model.max_sequence_length={declared}"]
        cfg = tiny_config("trainer.max_steps=1", "trainer.eval_every=0", *extra, run=f"r{expected}")
        Trainer(cfg).fit()
        out = tmp_path / f"hf{expected}"
        export_hf(cfg.trainer.run_dir, out)
        assert json.loads((out / "config.json").read_text())["max_position_embeddings"] == expected
        assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == expected
    with pytest.raises(ConfigError, match=r"max_sequence_length=16 is shorter than data\.seq_len=32"):
        tiny_config("model.max_sequence_length=16")
