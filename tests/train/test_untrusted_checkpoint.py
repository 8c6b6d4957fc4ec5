"""A downloaded run folder is data, not code: a crafted checkpoint (a `.metadata` pickle, or a non-tensor entry
in a shard file, that would run a payload when unpickled) is refused with a one-line `ConfigError` by every
command that loads checkpoints, and the payload never runs; real checkpoints still load to the same tensors."""

from __future__ import annotations

import io
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.metadata import BytesStorageMetadata, MetadataIndex

from dolma_kit.cli import main
from dolma_kit.config import RUN_CONFIG_NAME, ConfigError, plain, read_run_config
from train.config import TrainConfig, load_config
from train.loop import Trainer
from train.weights import average_checkpoints, load_model

from .conftest import FAST, TINY

STEPS = ["trainer.max_steps=2", "trainer.eval_every=0", "trainer.checkpoint_every=2"]


class Touch:
    """Unpickles as `Path(marker).touch()`: the stand-in for a payload (a real one would run a shell)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def run_config(tokens: Path, run: Path) -> TrainConfig:
    return load_config(TINY, [f"data.paths=[{tokens}]", f"trainer.run_dir={run}", *FAST, *STEPS])


@pytest.fixture(scope="module")
def trained(tokenized_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    """One finished two-step run (its checkpoint is step 2); tests copy its folder before changing it."""
    trainer = Trainer(run_config(tokenized_demo, tmp_path_factory.mktemp("trusted") / "run"))
    trainer.fit()
    return trainer


def copy_run(trained: Trainer, dest: Path) -> Path:
    """The trained run folder under `dest`, its config.yaml pointing at the copy (so the trainer resumes it)."""
    shutil.copytree(trained.run_dir, dest)
    raw = plain(read_run_config(dest))
    raw["trainer"]["run_dir"] = str(dest)
    (dest / RUN_CONFIG_NAME).write_text(yaml.safe_dump(raw, sort_keys=False))
    return dest


def plant_in_metadata(checkpoint: Path, marker: Path) -> str:
    """Hide the payload in an otherwise valid `.metadata` (plain pickle would run it and load on); returns
    the start of the error expected (a regex)."""
    meta = pickle.loads((checkpoint / ".metadata").read_bytes())  # our own file, written by the fixture
    meta.storage_meta.modules = [Touch(marker)]
    (checkpoint / ".metadata").write_bytes(pickle.dumps(meta))
    return re.escape(f"{checkpoint / '.metadata'}: refuses to load 'pathlib.Path.touch' (")


def plant_in_shard(checkpoint: Path, marker: Path) -> str:
    """Declare the embedding a non-tensor entry whose bytes (appended to the shard) pickle the payload; DCP's
    default planner reads such entries with `torch.load(weights_only=False)`. The metadata stays clean. The
    refused name is torch's (protocol 2 pickles `Path.touch` as `getattr(Path, "touch")`)."""
    fqn, shard = "model.wte.weight", checkpoint / "__0_0.distcp"
    meta = pickle.loads((checkpoint / ".metadata").read_bytes())
    blob = io.BytesIO()
    torch.save(Touch(marker), blob)
    offset = shard.stat().st_size
    with shard.open("ab") as fh:
        fh.write(blob.getvalue())
    meta.state_dict_metadata[fqn] = BytesStorageMetadata()
    meta.storage_data = {k: v for k, v in meta.storage_data.items() if k.fqn != fqn}
    meta.storage_data[MetadataIndex(fqn)] = _StorageInfo(shard.name, offset, len(blob.getvalue()))
    (checkpoint / ".metadata").write_bytes(pickle.dumps(meta))
    return re.escape(f"{shard}: refuses to load '") + r"[\w.]+' in entry 'model.wte.weight' \("


def tokens_of(run: Path) -> Path:
    return Path(read_run_config(run)["data"]["paths"][0])


def cli(*args: str) -> Callable[[Path, Path], None]:
    def call(run: Path, tmp: Path) -> None:
        main([a.format(run=run, tmp=tmp) for a in args])

    return call


def resume(run: Path, tmp: Path) -> None:
    Trainer(run_config(tokens_of(run), run)).maybe_resume()


ENTRY_POINTS = {
    "export-hf": cli("export-hf", "{run}", "{tmp}/hf"),
    "average-checkpoints": cli("average-checkpoints", "{run}", "{tmp}/avg", "--last", "1"),
    "memorization": cli(
        "memorization",
        "{run}",
        "--step",
        "2",
        "--prompt",
        "8",
        "--continuation",
        "8",
        "--samples",
        "2",
        "--out",
        "{tmp}/memo",
    ),
    "load_model": lambda run, tmp: load_model(run),
    "resume": resume,
}


@pytest.mark.parametrize("plant", [plant_in_metadata, plant_in_shard], ids=["metadata", "shard"])
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_crafted_checkpoint_is_refused_and_runs_nothing(
    trained: Trainer, tmp_path: Path, capsys: pytest.CaptureFixture, entry: str, plant: Callable
) -> None:
    run = copy_run(trained, tmp_path / "foreign")
    marker = tmp_path / "payload-ran"
    expected = plant(run / "checkpoints" / "step2", marker)
    call = ENTRY_POINTS[entry]
    if call.__name__ == "call":  # the CLI: one red line on stderr, exit status 2
        with pytest.raises(SystemExit) as exit_info:
            call(run, tmp_path)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        message = err
    else:
        with pytest.raises(ConfigError) as error:
            call(run, tmp_path)
        message = str(error.value)
    assert re.search(expected, message), message
    assert "may run code" in message
    assert not marker.exists()


def test_a_metadata_file_that_is_not_dcp_metadata_is_a_clear_error(trained: Trainer, tmp_path: Path) -> None:
    run = copy_run(trained, tmp_path / "foreign")
    meta = run / "checkpoints" / "step2" / ".metadata"
    meta.write_bytes(pickle.dumps({"not": "metadata"}))
    with pytest.raises(ConfigError, match=r"\.metadata: holds a dict, not DCP checkpoint metadata"):
        load_model(run)
    meta.write_bytes(b"\x80\x04garbage")
    with pytest.raises(ConfigError, match=r"\.metadata: not a DCP metadata file"):
        load_model(run)


def full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a parameter or moment: FSDP's DTensor (several ranks, GPU) or a plain tensor."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def test_trusted_checkpoints_load_the_same_tensors(trained: Trainer, tmp_path: Path) -> None:
    """The safe reader changes nothing for real checkpoints: weights, optimizer moments and hyper-parameters
    (the non-tensor entries) come back as the run left them, through load_model and through resume."""
    _, model, step = load_model(trained.run_dir)
    assert step == 2
    for name, value in trained.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], full(value), rtol=0, atol=0)
    run = copy_run(trained, tmp_path / "copy")
    again = Trainer(run_config(tokens_of(run), run))
    again.maybe_resume()
    assert again.step == 2
    for (name, value), resumed in zip(
        trained.model.named_parameters(), again.model.parameters(), strict=True
    ):
        torch.testing.assert_close(full(resumed), full(value), rtol=0, atol=0, msg=name)
        for key in ("exp_avg", "exp_avg_sq"):
            old, new = trained.optimizer.state[value][key], again.optimizer.state[resumed][key]
            torch.testing.assert_close(full(new), full(old), rtol=0, atol=0)
    old_groups, new_groups = (
        trained.optimizer.state_dict()["param_groups"],
        again.optimizer.state_dict()["param_groups"],
    )
    assert new_groups == old_groups
    assert average_checkpoints(run, 1, tmp_path / "avg")["steps"] == [2]


def test_a_crafted_rng_file_is_refused_on_resume(trained: Trainer, tmp_path: Path) -> None:
    run = copy_run(trained, tmp_path / "foreign")
    marker = tmp_path / "payload-ran"
    torch.save(Touch(marker), run / "checkpoints" / "step2" / "rng-rank0.pt")
    with pytest.raises(ConfigError, match=r"rng-rank0\.pt: refuses to load '[\w.]+' \(.*may run code"):
        resume(run, tmp_path)
    assert not marker.exists()
