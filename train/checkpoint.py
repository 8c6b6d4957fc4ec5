"""Sharded, atomic, resumable checkpoints with torch.distributed.checkpoint (DCP).

Layout: `<run>/checkpoints/step<N>/` holds DCP's shard files (`__<rank>_0.distcp`, `.metadata`) for the model
and optimizer, `rng-rank<r>.pt` (each rank's torch RNG state), `train_state.json` (step, examples and tokens
seen: the data position; the schedule's state, which is the step alone since the LR is a function of it) and,
written last, the `.complete` marker.

Atomicity: everything is written into `step<N>.tmp/`; after every rank has finished, rank 0 writes the marker
and renames the folder. A folder without a marker (a kill mid-write) is never loaded and is removed at the
next save. DCP reshards on load, so a run can resume on a different number of ranks; the data order does not
depend on the rank count either.

Loading never unpickles with plain pickle: a run folder may come from anyone (train/safe_load.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_model_state_dict, set_state_dict

from train.parallelize import barrier
from train.safe_load import load_dcp, load_plain

MARKER = ".complete"
_STEP_DIR = re.compile(r"^step(\d+)$")


class Checkpointer:
    """Saves and finds checkpoints of one run; every rank calls `save`/`load`, rank 0 does the bookkeeping."""

    def __init__(self, run_dir: Path, *, keep_last: int, rank: int) -> None:
        self.root = Path(run_dir) / "checkpoints"
        self.keep_last = keep_last
        self.rank = rank
        self.kill_at: int | None = None
        """debug.kill_in_checkpoint: SIGKILL this process mid-write of that step's checkpoint, once per run."""

    def completed(self) -> list[tuple[int, Path]]:
        """(step, folder) of every complete checkpoint, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for p in self.root.iterdir():
            m = _STEP_DIR.match(p.name)
            if m and (p / MARKER).is_file():
                found.append((int(m.group(1)), p))
        return sorted(found)

    def latest(self) -> Path | None:
        done = self.completed()
        return done[-1][1] if done else None

    def save(
        self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
    ) -> Path:
        """Write checkpoint `step` atomically; `state` (JSON) is the trainer's position. Collective."""
        final = self.root / f"step{step}"
        tmp = self.root / f"step{step}.tmp"
        if self.rank == 0:
            self.root.mkdir(parents=True, exist_ok=True)
            for stale in self.root.glob("step*"):  # .tmp folders and any folder without its marker
                if stale.is_dir() and not (stale / MARKER).is_file():
                    shutil.rmtree(stale)
            if final.exists():  # a complete checkpoint of this step (a rerun): replace it
                shutil.rmtree(final)
        barrier()
        model_sd, optim_sd = get_state_dict(model, optimizer)
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp)
        torch.save(torch.get_rng_state(), tmp / f"rng-rank{self.rank}.pt")
        self._maybe_die(step)
        barrier()
        if self.rank == 0:
            (tmp / "train_state.json").write_text(json.dumps(state, indent=2) + "\n")
            (tmp / MARKER).write_text(f"{step}\n")
            tmp.rename(final)
            for _, old in self.completed()[: -self.keep_last] if self.keep_last > 0 else []:
                shutil.rmtree(old)
        barrier()
        return final

    def _maybe_die(self, step: int) -> None:
        """Fault injection (tests): the shards are on disk, the marker is not: exactly a kill mid-write."""
        if self.kill_at != step:
            return
        flag = self.root.parent / f".debug-killed-step{step}"
        if not flag.exists():
            flag.write_text("killed inside the checkpoint write by debug.kill_in_checkpoint\n")
            os.kill(os.getpid(), signal.SIGKILL)

    def load(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Restore model and optimizer shards (resharding as needed) and this rank's RNG; return the state.
        A model-only checkpoint (`dolma-kit average-checkpoints`) restores the weights and leaves the
        optimizer as it is (fresh), so training can continue from an average."""
        state = json.loads((path / "train_state.json").read_text())
        model_sd, optim_sd = get_state_dict(model, optimizer)
        if state.get("model_only"):
            sd = {"model": model_sd}
            load_dcp(sd, path)
            set_model_state_dict(model, sd["model"])
            return state
        sd = {"model": model_sd, "optim": optim_sd}
        load_dcp(sd, path)
        set_state_dict(model, optimizer, model_state_dict=sd["model"], optim_state_dict=sd["optim"])
        rng = path / f"rng-rank{self.rank}.pt"
        if rng.is_file():
            torch.set_rng_state(load_plain(rng))
        return state
