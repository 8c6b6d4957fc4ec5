"""The training loop: one `Trainer` that owns the model, optimizer, data order and run folder.

Per optimizer step s (1-based): the global batch order[(s-1)·G : s·G] is split into W contiguous rank slices,
each consumed in micro-batches whose gradients accumulate (each micro-loss is its token-summed cross-entropy
over the rank's tokens for the step, and FSDP averages over ranks, so the gradient is that of the global
mean loss); then the LR for step s is set, the global grad norm clipped, the spike detector looks at the
all-reduced loss and norm (train/recovery.py: a rejected step is rolled back, never applied), AdamW steps.
Everything that decides the numbers is a function of (config, seed, step, recovery.json), which is why a
resumed run repeats a never-stopped one exactly on CPU.

On GPU with precision bf16, FSDP's MixedPrecisionPolicy computes in bf16 over fp32 master weights; the
cross-entropy is always taken in fp32.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from rich.console import Console

from dolma_kit.config import RUN_CONFIG_NAME, ConfigError, plain, read_run_config
from train.callbacks import Callback, CheckpointSaver, Evaluator, MetricsFile, ProgressLine
from train.checkpoint import Checkpointer
from train.config import TrainConfig
from train.data import check_saved, save_array
from train.errors import TrainingDiverged
from train.model import build_model
from train.optim import set_lr
from train.parallelize import (
    DistInfo,
    all_reduce_sum,
    barrier,
    init_distributed,
    parallelize,
    set_cpu_threads,
)
from train.recovery import RecoveryState, SpikeDetector, append_logbook

SESSION_KEYS = ("cpu_threads", "activation_checkpointing")
"""trainer keys that change how fast a session runs, never its numbers: a resume may change them."""


class SpikeDetected(Exception):
    """Raised inside a step that must not be applied (its gradients are discarded)."""

    def __init__(self, step: int, reason: str, loss: float, grad_norm: float) -> None:
        super().__init__(f"step {step}: {reason}")
        self.step, self.reason, self.loss, self.grad_norm = step, reason, loss, grad_norm


# dense bf16 peak FLOP/s by device name, for the MFU estimate (H100/H200 SXM; A100)
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def peak_flops(device: torch.device, configured: float | None) -> float | None:
    if configured is not None:
        return configured
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in PEAK_FLOPS.items():
            if key in name:
                return value
    return None  # CPU: no meaningful peak unless configured


class Trainer:
    """Builds everything from a `TrainConfig` and runs `fit()`. Call from every rank."""

    def __init__(self, cfg: TrainConfig, callbacks: list[Callback] | None = None) -> None:
        self.cfg = cfg
        tc = cfg.trainer
        if tc.run_dir is None:
            raise ConfigError("trainer.run_dir is not set")
        self.run_dir = Path(tc.run_dir)
        self.dist: DistInfo = init_distributed(tc.device)
        W = self.dist.world_size
        if tc.global_batch % (W * tc.micro_batch):
            raise ConfigError(
                f"trainer.global_batch={tc.global_batch} must be divisible by world size {W} × "
                f"trainer.micro_batch={tc.micro_batch}"
            )
        self.per_rank = tc.global_batch // W
        self.cpu_threads: int | None = None
        if self.dist.device.type == "cpu":
            local = int(os.environ.get("LOCAL_WORLD_SIZE", W))
            self.cpu_threads, warning = set_cpu_threads(tc.cpu_threads, local)
            if warning and self.dist.is_main:
                Console(stderr=True).print(f"[yellow]warning:[/] {warning}", highlight=False)
        self.bf16 = tc.precision == "bf16" or (tc.precision == "auto" and self.dist.device.type == "cuda")
        if self.bf16 and self.dist.device.type != "cuda":
            raise ConfigError("trainer.precision=bf16 is for GPU runs; CPU runs train in fp32")

        self.data = cfg.data.build()
        if cfg.model.vocab_size is None:
            cfg.model.vocab_size = self.data.vocab_size
        if cfg.model.vocab_size < self.data.vocab_size:
            raise ConfigError(
                f"model.vocab_size={cfg.model.vocab_size} is smaller than the data's vocabulary "
                f"({self.data.vocab_size}); token ids would fall outside the embedding"
            )
        self.sources = self.data.sources
        self.order = self.data.data_order(tc.seed, tc.max_steps * tc.global_batch)
        self.eval_ids = self.data.eval_instances()
        self._prepare_run_dir()

        model = build_model(cfg.model, "meta")
        # FSDP2 whenever there is more than one rank or a GPU (bf16 comes from its mixed-precision policy); a
        # single CPU process trains the plain module: there one-rank all-gathers are only copies and
        # DTensor gradient clipping is slower than the plain foreach path
        self.sharded = W > 1 or self.dist.device.type == "cuda"
        parallelize(
            model,
            bf16=self.bf16,
            compile=tc.compile,
            shard=self.sharded,
            activation_checkpointing=tc.activation_checkpointing,
        )
        model.to_empty(device=self.dist.device)
        model.init_weights(tc.seed)
        self.model = model
        self.optimizer = cfg.optim.build(model)
        self.checkpointer = Checkpointer(self.run_dir, keep_last=tc.keep_last, rank=self.dist.rank)
        self.checkpointer.kill_at = cfg.debug.kill_in_checkpoint
        self.recovery = RecoveryState.load(self.run_dir)
        self.detector = SpikeDetector(cfg.recovery)
        self.rollbacks = 0
        self.downstream = self._load_downstream()
        self.flops_per_token = cfg.model.flops_per_token(cfg.data.seq_len)
        self.peak = peak_flops(self.dist.device, tc.peak_flops)
        self.step = 0
        self.last_step = tc.max_steps if tc.stop_at is None else min(tc.stop_at, tc.max_steps)
        self.metrics_file = MetricsFile(self.run_dir / "metrics.jsonl")
        self.callbacks = callbacks or [
            self.metrics_file,
            ProgressLine(),
            Evaluator(self.metrics_file),
            CheckpointSaver(),
        ]

    def _prepare_run_dir(self) -> None:
        """config.yaml, data_order.npy, eval_instances.npy. Every rank first checks what an earlier session left
        (so a mismatch fails on all ranks, none waits at a barrier for a failed rank 0); then rank 0 writes."""
        config_path = self.run_dir / RUN_CONFIG_NAME
        saved = read_run_config(self.run_dir, required=False)
        if saved is not None:
            old, resolved = plain(saved), self.cfg.to_dict()
            for section in (old, resolved):  # where to stop, log and checkpoint may change between sessions
                for key in (
                    "stop_at",
                    "log_every",
                    "eval_every",
                    "checkpoint_every",
                    "keep_last",
                    *SESSION_KEYS,
                ):
                    section["trainer"].pop(key, None)
                section.pop("debug", None)  # fault injection is not part of the run's identity
            if old != resolved:
                raise ConfigError(
                    f"{config_path} holds a different config; resume with the same one or a new run_dir"
                )
        arrays = {"data_order.npy": self.order, "eval_instances.npy": self.eval_ids}
        for name, array in arrays.items():
            check_saved(self.run_dir / name, array)
        barrier()
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            config_path.write_text(yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
            for name, array in arrays.items():
                save_array(self.run_dir / name, array)
        barrier()

    # --- state ------------------------------------------------------------------------------------
    def save_checkpoint(self, step: int) -> Path:
        G, T = self.cfg.trainer.global_batch, self.cfg.data.seq_len
        state = {
            "step": step,
            "examples_seen": step * G,
            "tokens_seen": step * G * T,
            "world_size": self.dist.world_size,
            "scheduler": {"step": step, "lr": self.cfg.optim.lr_at(step, self.cfg.trainer.max_steps)},
            "spike_detector": self.detector.state(),
        }
        return self.checkpointer.save(step, self.model, self.optimizer, state)

    def _restore_detector(self, state: dict[str, Any] | None, step: int) -> None:
        """The spike detector as it was when checkpoint `step` was written (its window is in
        train_state.json), so a resumed or rolled-back run takes the decisions an uninterrupted one takes.
        metrics.jsonl holds only every log_every-th loss: it is the fallback for checkpoints without the
        window (model-only checkpoints, older runs) only."""
        if state is not None and "spike_detector" in state:
            self.detector.load_state(state["spike_detector"])
        elif step == 0:
            self.detector.load_state([])
        else:
            self.detector.reset(self.metrics_file.train_losses(step))

    def maybe_resume(self) -> None:
        latest = self.checkpointer.latest()
        state = None
        if latest is not None:
            state = self.checkpointer.load(latest, self.model, self.optimizer)
            self.step = int(state["step"])
        self._restore_detector(state, self.step)

    def _load_downstream(self) -> list:
        """Tokenize the configured multiple-choice tasks once (train/downstream.py)."""
        if not self.cfg.downstream:
            return []
        from train.data import data_tokenizer
        from train.downstream import load_task

        tok = data_tokenizer(self.data).tokenizer

        def encode(text: str) -> list[int]:
            return tok.encode(text, add_special_tokens=False).ids

        eos = self.data.eos_id
        return [
            (t, load_task(t, encode, eos), [eos, *encode(t.unconditional_context)])
            for t in self.cfg.downstream
        ]

    def evaluate_downstream(self) -> dict[str, dict[str, float]]:
        from train.downstream import evaluate_tasks

        pad = self.data.dirs[0].pad_id
        return evaluate_tasks(
            self.model,
            self.downstream,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            seq_len=self.cfg.data.seq_len,
            batch_size=max(1, self.cfg.trainer.micro_batch),
            device=self.dist.device,
            vocab_size=int(self.cfg.model.vocab_size or 0),
            pad_id=self.data.eos_id if pad is None else pad,
        )

    # --- recovery ---------------------------------------------------------------------------------
    def recover(self, spike: SpikeDetected) -> None:
        """Roll back to the newest complete checkpoint before the bad step (or the initial weights), mark the
        step's batch as skipped and apply the LR factor from there on; log the event. Collective."""
        rc = self.cfg.recovery
        self.rollbacks += 1
        if self.rollbacks > rc.max_rollbacks:
            raise TrainingDiverged(
                f"{spike}; more than recovery.max_rollbacks={rc.max_rollbacks} rollbacks in this session: "
                f"the run needs a human (see {self.run_dir / 'logbook.md'})"
            )
        good = [(s, p) for s, p in self.checkpointer.completed() if s < spike.step]
        state = None
        if good:
            back_to, path = good[-1]
            state = self.checkpointer.load(path, self.model, self.optimizer)
        else:  # before the first checkpoint: the initial weights are a function of the seed
            back_to = 0
            self.model.init_weights(self.cfg.trainer.seed)
            self.optimizer = self.cfg.optim.build(self.model)
        self.step = back_to
        self._restore_detector(state, back_to)
        G = self.cfg.trainer.global_batch
        skipped_ids = self.order[(spike.step - 1) * G : spike.step * G].tolist()
        self.recovery.skipped.add(spike.step)
        event = {
            "kind": "recovery",
            "step": spike.step,
            "reason": spike.reason,
            "loss": spike.loss if math.isfinite(spike.loss) else str(spike.loss),
            "grad_norm": spike.grad_norm if math.isfinite(spike.grad_norm) else str(spike.grad_norm),
            "rolled_back_to": back_to,
            "skipped_step": spike.step,
            "skipped_instances": skipped_ids,
            "lr_factor": rc.lr_factor,
        }
        self.recovery.events.append(event)
        if self.dist.is_main:
            self.recovery.save(self.run_dir)
            self.metrics_file.cut_back(back_to)
            self.metrics_file.write(self, {**event, "lr_scale": self.recovery.lr_scale(spike.step)})
            append_logbook(
                self.run_dir,
                f"step {spike.step}: {spike.reason}",
                [
                    f"rolled back to {'checkpoint step ' + str(back_to) if back_to else 'the initial weights'}",
                    f"skipped step {spike.step}'s batch: {len(skipped_ids)} instances "
                    f"(ids in recovery.json; `dolma-kit trace RUN --step {spike.step}` lists its documents)",
                    f"learning rate × {self.recovery.lr_scale(spike.step):g} from step {back_to + 1} on",
                    f"rollback {self.rollbacks} of at most {rc.max_rollbacks} in this session",
                ],
            )
        barrier()

    def skipped_step(self, step: int) -> dict[str, Any]:
        """The record of a step whose batch recovery skipped: the schedule moves on, nothing is trained."""
        G, T = self.cfg.trainer.global_batch, self.cfg.data.seq_len
        return {  # its own kind, so readers of train records never meet a null loss
            "kind": "skipped",
            "step": step,
            "examples_seen": step * G,
            "tokens_seen": step * G * T,
            "skipped": True,
            "loss": None,
            "lr": None,
            "grad_norm": None,
        }

    # --- compute ----------------------------------------------------------------------------------
    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """A batch array onto the training device; on CUDA through pinned memory, so the copy is truly
        asynchronous (non_blocking from pageable memory is a synchronous copy)."""
        t = torch.from_numpy(array)
        if self.dist.device.type == "cuda":
            return t.pin_memory().to(self.dist.device, non_blocking=True)
        return t

    def _losses(
        self, tokens: np.ndarray, sources: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token-summed loss, and per-source loss sums and token counts (fp32), for one micro-batch.

        Targets are the tokens shifted left with the last position ignored (HF's label padding), and the
        model fuses its output layer with the cross-entropy (train/loss.py): slicing logits[:, :-1] copied
        the (B, T, V) logits, and the plain loss kept and zero-filled as many again, about a third of a CPU
        step at vocabulary 50,304 and gigabytes of GPU memory."""
        dev = self.dist.device
        idx_BT = self._to_device(tokens)
        src_BT = self._to_device(np.ascontiguousarray(sources[:, 1:]))
        targets_BT = F.pad(idx_BT[:, 1:], (0, 1), value=-100)
        loss_sum, ce_BT = self.model(idx_BT, targets_BT)
        ce_N = ce_BT[:, :-1].reshape(-1)  # (B·(T-1),) token losses, for the per-source sums
        S = len(self.sources)
        flat = src_BT.reshape(-1)
        sums_S = torch.zeros(S, device=dev).index_add_(0, flat, ce_N)
        counts_S = torch.zeros(S, device=dev).index_add_(0, flat, torch.ones_like(ce_N))
        return loss_sum, sums_S, counts_S

    def _rank_slice(self, ids: np.ndarray) -> np.ndarray:
        r = self.dist.rank
        return ids[r * self.per_rank : (r + 1) * self.per_rank]

    def train_step(self, step: int) -> dict[str, Any]:
        tc, T = self.cfg.trainer, self.cfg.data.seq_len
        t0 = time.perf_counter()
        G = tc.global_batch
        ids = self._rank_slice(self.order[(step - 1) * G : step * G])
        rank_tokens = len(ids) * (T - 1)
        S = len(self.sources)
        stats = torch.zeros(1 + 2 * S, dtype=torch.float64, device=self.dist.device)
        self.model.train()
        poison = self._poison(step)
        for m0 in range(0, len(ids), tc.micro_batch):
            tokens, sources = self.data.batch(ids[m0 : m0 + tc.micro_batch])
            loss_sum, sums_S, counts_S = self._losses(tokens, sources)
            if poison is not None:
                loss_sum, sums_S = loss_sum * poison, sums_S * poison
            (loss_sum / rank_tokens).backward()
            stats += torch.cat([loss_sum.detach().reshape(1), sums_S, counts_S]).double()
        lr = self.cfg.optim.lr_at(step, tc.max_steps) * self.recovery.lr_scale(step)
        set_lr(self.optimizer, lr)
        clip = self.cfg.optim.clip_at(step)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip > 0 else math.inf)
        grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        all_reduce_sum(stats)  # every rank sees the same loss and norm, so all take the same decision
        reason = self.detector.check(float(stats[0]) / (G * (T - 1)), grad_norm)
        if reason is not None:
            self.optimizer.zero_grad(set_to_none=True)
            raise SpikeDetected(step, reason, float(stats[0]) / (G * (T - 1)), grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.dist.device.type == "cuda":
            torch.cuda.synchronize(self.dist.device)
        dt = time.perf_counter() - t0
        tokens_per_s = G * T / dt
        mfu = None
        if self.peak:
            mfu = self.flops_per_token * tokens_per_s / (self.peak * self.dist.world_size)
        sums, counts = stats[1 : 1 + S].tolist(), stats[1 + S :].tolist()
        return {
            "kind": "train",
            "step": step,
            "examples_seen": step * G,
            "tokens_seen": step * G * T,
            "loss": float(stats[0]) / (G * (T - 1)),
            "loss_by_source": {
                s: (sums[i] / counts[i] if counts[i] else None) for i, s in enumerate(self.sources)
            },
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens_per_s": tokens_per_s,
            "mfu": mfu,
            "step_time": dt,
        }

    def _poison(self, step: int) -> float | None:
        """debug.poison_steps: the factor that poisons this step's loss (a test's bad batch), or None."""
        dbg = self.cfg.debug
        if step not in dbg.poison_steps:
            return None
        return math.nan if dbg.poison == "nan" else dbg.poison_scale

    def eval_subset(self) -> np.ndarray:
        """The held-out instances every evaluation reads: all of them, or the first `trainer.eval_instances`
        of the drawn (random) order. A function of the data and config alone, never of the world size."""
        n = self.cfg.trainer.eval_instances
        return self.eval_ids if n is None else self.eval_ids[:n]

    @torch.no_grad()
    def eval_sums(self) -> torch.Tensor:
        """(2·S,) float64 on the training device, all-reduced: per-source loss sums, then per-source predicted
        token counts, over `eval_subset()`. Rank r takes instances r, r+W, …; every rank runs the same number
        of forwards (FSDP's all-gathers are collective), a rank out of instances repeats one with weight 0.
        Everything stays on the device (a CPU scalar stacked with a CUDA loss was a crash at the first
        evaluation on GPU); the token count is the sum of the per-source counts, since each predicted token
        has exactly one source."""
        mb, W = self.cfg.trainer.micro_batch, self.dist.world_size
        ids = self.eval_subset()
        mine = ids[self.dist.rank :: W]
        per_rank = -(-len(ids) // W)  # the most any rank has
        S = len(self.sources)
        stats = torch.zeros(2 * S, dtype=torch.float64, device=self.dist.device)
        self.model.eval()
        for m0 in range(0, per_rank, mb):
            chunk, weight = mine[m0 : m0 + mb], 1.0
            if len(chunk) == 0:
                chunk, weight = ids[:1], 0.0
            tokens, sources = self.data.batch(chunk)
            _, sums_S, counts_S = self._losses(tokens, sources)
            stats += weight * torch.cat([sums_S, counts_S]).double()
        return all_reduce_sum(stats)

    def evaluate(self) -> tuple[float, dict[str, dict[str, float | int | None]]]:
        """Held-out loss (mean over predicted tokens) and, for every source of the data, its loss, perplexity
        and token count (loss and ppl null for a source with no held-out token), over `eval_subset()`: the
        same instances at every evaluation and for any number of ranks."""
        S = len(self.sources)
        stats = self.eval_sums().tolist()
        sums, counts = stats[:S], stats[S:]
        loss = sum(sums) / sum(counts)
        by_source: dict[str, dict[str, float | int | None]] = {}
        for i, s in enumerate(self.sources):
            mean = sums[i] / counts[i] if counts[i] else None
            ppl = math.exp(mean) if mean is not None else None
            by_source[s] = {"loss": mean, "ppl": ppl, "tokens": int(counts[i])}
        return loss, by_source

    def fit(self, *, resume: bool = True) -> list[dict[str, Any]]:
        """Resume if the run has a checkpoint (unless the caller already called `maybe_resume`: resume=False),
        then train to max_steps (or trainer.stop_at). Returns this process's train records."""
        if resume:
            self.maybe_resume()
        for cb in self.callbacks:
            cb.on_start(self)
        records: list[dict[str, Any]] = []
        while self.step < self.last_step:
            step = self.step + 1
            if step in self.recovery.skipped:
                metrics = self.skipped_step(step)
            else:
                try:
                    metrics = self.train_step(step)
                except SpikeDetected as spike:
                    self.recover(spike)
                    records = [r for r in records if r["step"] <= self.step]
                    continue
                self.detector.record(step, metrics["loss"])
            self.step = step
            records.append(metrics)
            for cb in self.callbacks:
                cb.on_step(self, step, metrics)
        for cb in self.callbacks:
            cb.on_end(self, self.step)
        return records


def train(cfg: TrainConfig) -> list[dict[str, Any]]:
    """Run (or resume) the training described by `cfg` in this process; see `Trainer`."""
    return Trainer(cfg).fit()
