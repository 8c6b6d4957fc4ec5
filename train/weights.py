"""A run's model weights outside training: load a checkpoint into a plain (unsharded) model, write model-only
checkpoints, and average the last K checkpoints (OpenELM averages its last five).

Checkpoints are DCP folders written by the trainer under FSDP; DCP reshards on load, so one process with no
process group reads any world size's shards into an ordinary `Transformer` (the model keys are the same FQNs
with or without FSDP). Everything here runs on one CPU process: export, averaging and memorization use it.
Checkpoints are read with train/safe_load.py, so a downloaded run folder cannot run code here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
import yaml

from dolma_kit.config import RUN_CONFIG_NAME, ConfigError, Where, from_dict, plain, read_run_config
from train.checkpoint import MARKER, Checkpointer
from train.config import TrainConfig
from train.model import Transformer, build_model
from train.safe_load import load_dcp


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config a run was trained with (`RUN/config.yaml`, vocabulary size filled in)."""
    raw = read_run_config(run_dir)
    return from_dict(TrainConfig, raw, Where(file=str(Path(run_dir) / RUN_CONFIG_NAME)))


def completed_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint of the run, oldest first (half-written ones never appear)."""
    return Checkpointer(Path(run_dir), keep_last=0, rank=0).completed()


def find_checkpoint(run_dir: str | Path, step: int | None) -> tuple[int, Path]:
    """The checkpoint at `step`, or the newest one when step is None; errors list what exists."""
    done = completed_checkpoints(run_dir)
    if not done:
        raise ConfigError(
            f"{run_dir} has no complete checkpoint (checkpoints/step<N>/ with a {MARKER} marker)"
        )
    if step is None:
        return done[-1]
    for s, path in done:
        if s == step:
            return s, path
    raise ConfigError(f"{run_dir} has no complete checkpoint of step {step}; it has {[s for s, _ in done]}")


def load_model(
    run_dir: str | Path, step: int | None = None, device: str = "cpu"
) -> tuple[TrainConfig, Transformer, int]:
    """(config, model in eval mode with the checkpoint's fp32 weights, the checkpoint's step)."""
    cfg = load_run_config(run_dir)
    step, path = find_checkpoint(run_dir, step)
    model = build_model(cfg.model, device)
    sd = {"model": model.state_dict()}
    load_dcp(sd, path)  # fills the tensors in place, resharding from any world size
    model.load_state_dict(sd["model"])
    return cfg, model.eval(), step


def save_model_only(
    out_dir: str | Path, run_dir: str | Path, step: int, state_dict: dict[str, torch.Tensor], info: dict
) -> Path:
    """Write OUT as a run folder holding one model-only checkpoint: config.yaml (run_dir set to OUT), the
    run's data order and held-out list (so trace and memorization work on it), checkpoints/step<N>/.

    The trainer resumes from a model-only checkpoint with a fresh optimizer (see `Checkpointer.load`), and
    export-hf reads it like any checkpoint. Written atomically like the trainer's checkpoints."""
    out, run = Path(out_dir), Path(run_dir)
    raw = plain(read_run_config(run))
    raw["trainer"]["run_dir"] = str(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_CONFIG_NAME).write_text(yaml.safe_dump(raw, sort_keys=False))
    for name in ("data_order.npy", "eval_instances.npy", "recovery.json"):
        if (run / name).is_file():
            shutil.copyfile(run / name, out / name)
    final = out / "checkpoints" / f"step{step}"
    tmp = final.with_name(final.name + ".tmp")
    for stale in (tmp, final):
        if stale.exists():
            shutil.rmtree(stale)
    dcp.save({"model": state_dict}, checkpoint_id=tmp)
    state = {"step": step, "model_only": True, **info}
    (tmp / "train_state.json").write_text(json.dumps(state, indent=2) + "\n")
    (tmp / MARKER).write_text(f"{step}\n")
    tmp.rename(final)
    return final


def average_checkpoints(run_dir: str | Path, last: int, out_dir: str | Path) -> dict[str, Any]:
    """Average the model weights of the run's last `last` complete checkpoints in fp32 and write them to OUT
    (a run folder, see `save_model_only`) at the newest averaged step. Returns what was averaged."""
    if last < 1:
        raise ConfigError("--last must be at least 1")
    done = completed_checkpoints(run_dir)
    if len(done) < last:
        raise ConfigError(
            f"{run_dir} has {len(done)} complete checkpoints ({[s for s, _ in done]}), fewer than --last {last}; "
            "raise trainer.keep_last to keep more"
        )
    chosen = done[-last:]
    total: dict[str, torch.Tensor] | None = None
    for step, _ in chosen:
        _, model, _ = load_model(run_dir, step)
        sd = {k: v.detach().float() for k, v in model.state_dict().items()}
        total = sd if total is None else {k: total[k] + v for k, v in sd.items()}
    assert total is not None
    averaged = {k: v / last for k, v in total.items()}
    steps = [s for s, _ in chosen]
    save_model_only(
        out_dir, run_dir, steps[-1], averaged, {"averaged_from": steps, "source_run": str(run_dir)}
    )
    return {"steps": steps, "out": str(out_dir), "step": steps[-1]}
