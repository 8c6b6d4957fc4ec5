"""The run configuration: one dataclass per component, loaded from YAML, overridden with `--a.b=value`.

One declaration: the dataclasses below *are* the schema. YAML files load into them, unknown keys are errors
that list the valid ones, and values are checked against the field types, so a typo never trains silently
with a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dolma_kit.config import ConfigError, Where, from_dict, load_yaml, set_dotted, to_dict
from train.data import DataConfig
from train.model_config import ModelConfig
from train.optim import OptimConfig
from train.recovery import DebugConfig, RecoveryConfig
from train.tasks import TaskConfig

__all__ = ["ConfigError", "TrainConfig", "TrainerConfig", "load_config"]


@dataclass(kw_only=True)
class TrainerConfig:
    """How long, how big a batch, how often to log, evaluate and checkpoint, on what hardware."""

    max_steps: int
    """Optimizer steps in the schedule (the LR decays to its floor at this step)."""
    global_batch: int
    """Instances (sequences of data.seq_len tokens) per optimizer step, summed over all ranks."""
    micro_batch: int
    """Instances per rank per forward/backward; global_batch / (world size × micro_batch) micro-steps are
    accumulated before each optimizer step."""
    seed: int = 0
    """Seeds the data order (PCG64(seed + epoch)), the held-out split and the weight init."""
    run_dir: str | None = None
    """Where config.yaml, metrics.jsonl, data_order.npy and checkpoints/ go. None: runs/<config file stem>."""
    log_every: int = 1
    """Write a metrics.jsonl line and the progress line every this many steps."""
    eval_every: int = 0
    """Evaluate on the held-out split every this many steps (0: only after the last step)."""
    eval_instances: int | None = None
    """Held-out instances read at each evaluation: None = all of them, else the first this many of the drawn
    (random) held-out order. The same set for any world size, so 1 and N ranks report the same loss."""
    checkpoint_every: int = 0
    """Checkpoint every this many steps (0: only after the last step)."""
    keep_last: int = 2
    """Completed checkpoints to keep; older ones are removed after a new one is complete."""
    stop_at: int | None = None
    """Stop after this step (checkpointing it) without changing the schedule; rerun to continue."""
    device: str = "auto"
    """auto (cuda when available), cpu or cuda."""
    precision: str = "auto"
    """auto (bf16 on cuda, fp32 on cpu), bf16 (bf16 compute, fp32 master weights and reductions) or fp32."""
    cpu_threads: int | None = None
    """torch intra-op threads per process on CPU. None: OMP_NUM_THREADS when set (torchrun sets 1), else the
    cores not busy with other work (1-minute load average) shared by this machine's ranks. A warning says
    when ranks × threads + load exceed the cores: oversubscribed threads train several times slower."""
    compile: bool = False
    """torch.compile each block (GPU runs)."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in backward instead of keeping them: about a third more compute
    for a fraction of the activation memory (a larger micro_batch fits on a GPU)."""
    peak_flops: float | None = None
    """Dense peak FLOP/s of one device for the MFU estimate; None: known GPUs by name, else MFU is null."""

    def __post_init__(self) -> None:
        if self.max_steps <= 0 or self.global_batch <= 0 or self.micro_batch <= 0:
            raise ConfigError(
                "trainer.max_steps, trainer.global_batch and trainer.micro_batch must be positive"
            )
        if self.cpu_threads is not None and self.cpu_threads <= 0:
            raise ConfigError(
                f"trainer.cpu_threads must be positive (or null: automatic), got {self.cpu_threads}"
            )
        if self.eval_instances is not None and self.eval_instances <= 0:
            raise ConfigError(
                f"trainer.eval_instances must be positive (or null for all held-out instances), "
                f"got {self.eval_instances}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"trainer.device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"trainer.precision must be auto, bf16 or fp32, got {self.precision!r}")


@dataclass(kw_only=True)
class TrainConfig:
    """A whole run: `dolma-kit train` loads one of these from configs/NAME.yaml."""

    model: ModelConfig
    data: DataConfig
    trainer: TrainerConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    """Loss-spike / NaN detection and rollback (train/recovery.py)."""
    downstream: list[TaskConfig] = field(default_factory=list)
    """Multiple-choice tasks scored at every evaluation (train/downstream.py)."""
    debug: DebugConfig = field(default_factory=DebugConfig)
    """Fault injection for tests (poisoned steps, a kill inside a checkpoint write)."""

    def __post_init__(self) -> None:
        declared = self.model.max_sequence_length
        if declared is not None and declared < self.data.seq_len:
            raise ConfigError(
                f"model.max_sequence_length={declared} is shorter than data.seq_len={self.data.seq_len}: the "
                "model would declare a context shorter than the one it is trained on"
            )

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, **base: Any
) -> TrainConfig:
    """YAML file (optional) + `a.b=value` overrides (values parsed as YAML) → a checked `TrainConfig`."""
    raw: dict[str, Any] = dict(base)
    where = Where()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        raw = load_yaml(str(path), "training config") or {}
        where = Where(file=str(path))
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{path}: a training config is a mapping of sections (model, data, trainer, optim)"
            )
    for item in overrides or []:
        set_dotted(raw, item)
    cfg = from_dict(TrainConfig, raw, where)
    if cfg.trainer.run_dir is None and path is not None:
        cfg.trainer.run_dir = str(Path("runs") / path.stem)
    return cfg
