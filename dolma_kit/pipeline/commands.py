"""The later commands a pipeline stage can run (tokens, train, report) and the registry of every command.

The data stages (demo-corpus, tag, dedup, decontaminate, mix) and the `Command` contract are in
`pipeline_stages`. `train` and `stats` import their modules inside the functions: torch is heavy, and
`dolma_kit` imports the trainer only lazily (this is the one library module that does, as the engine of
`dolma-kit run`; the dependency rule in docs/design.md).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import summary_table, write_summary
from dolma_kit.pipeline.references import PipelineError, Where, local_dir
from dolma_kit.pipeline.stages import Built, Command, Outcome, counts_of, data_commands, dataclass_command

# --------------------------------------------------------------------------------------------- tokens


def _train_tokenizer_cls() -> type:
    from dolma_kit.tokenize.training import TrainTokenizerConfig

    return TrainTokenizerConfig


def _run_train_tokenizer(config: Any, force: bool, console: Console) -> Outcome:
    from dolma_kit.tokenize.training import train_tokenizer

    result = train_tokenizer(config)
    console.print(
        f"tokenizer: {result.vocab_size:,} ids from {result.documents:,} documents → {result.output}"
    )
    n = result.documents
    return Outcome(
        None,
        {
            "documents": n,
            "characters": result.characters,
            "vocab_size": result.vocab_size,
            "output": config.output,
        },
    )


def _tokenize_cls() -> type:
    from dolma_kit.tokenize.stage import TokenizeConfig

    return TokenizeConfig


def _run_tokenize(config: Any, force: bool, console: Console) -> Outcome:
    from dolma_kit.tokenize.stage import tokenize

    config.force = force
    result, manifest = tokenize(config)
    write_summary(result, storage.join(config.destination, "tokenize_summary.json"))  # as the CLI does
    console.print(summary_table(result))
    extra = {"tokens": manifest["tokens"], "parts": len(manifest["parts"]), "destination": config.destination}
    return Outcome(counts_of(result), extra)


def _tokenize_proofs(config: Any) -> list[str]:
    return [storage.join(config.destination, name) for name in ("manifest.json", "tokenize_summary.json")]


# --------------------------------------------------------------------------------------------- train


@dataclass(kw_only=True)
class TrainStage:
    """`dolma-kit train CONFIG` as a stage: the trainer's own `TrainConfig`, built by the trainer's loader."""

    train: Any
    """`train.config.TrainConfig`."""
    work_dir: str
    """The pipeline's local folder: the only place where the pipeline deletes a run folder it did not make."""


_TRAIN_SECTIONS = ("model", "data", "trainer", "optim")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _build_train(path: str, scope: dict[str, Any], raw: dict[str, Any], where: Where) -> Built:
    """`config: configs/tiny.yaml` (optional) plus the trainer's sections, merged over it; the trainer's loader
        checks every key and type. Default run folder: `<local_dir>/train/<config stem>` (checkpoints and the data
    memmaps are local files)."""
    import yaml

    from dolma_kit.config import ConfigError
    from train.config import load_config

    raw = {str(k): v for k, v in raw.items()}
    for key in raw:
        if key not in ("config", *_TRAIN_SECTIONS):
            known = ", ".join(("config", *_TRAIN_SECTIONS))
            raise PipelineError(f"{where(key, '')}: unknown key '{key}' for `train`; known: {known}")
    base: dict[str, Any] = {}
    stem = "run"
    if raw.get("config"):
        file = Path(str(raw["config"]))
        if not file.is_file():
            raise PipelineError(f"{where(raw['config'], 'config')}: training config {file} not found")
        base = yaml.safe_load(file.read_text()) or {}
        stem = file.stem
    merged = _merge(base, {k: v for k, v in raw.items() if k != "config"})
    trainer = merged.setdefault("trainer", {})
    if "run_dir" not in trainer:
        trainer["run_dir"] = storage.join(local_dir(scope, where(None, "trainer.run_dir")), "train", stem)
    try:
        config = load_config(None, [], **json.loads(json.dumps(merged, default=str)))
    except ConfigError as exc:
        raise PipelineError(f"{where(None, '')}: {exc}") from None
    options = {"config": str(raw.get("config") or ""), **config.to_dict()}
    home = scope.get("local_dir") or config.trainer.run_dir  # remote work_dir, run_dir given: only its own
    return Built(TrainStage(train=config, work_dir=home), options)


def _reset_train(stage: TrainStage) -> None:
    """A run folder the pipeline did not start (or one made with other options) is removed, inside the work
    dir only; elsewhere the pipeline stops rather than delete a run it does not own."""
    run_dir = Path(stage.train.trainer.run_dir)
    if not run_dir.exists():
        return
    if Path(stage.work_dir).resolve() not in run_dir.resolve().parents:
        raise PipelineError(
            f"{run_dir} holds a run this pipeline did not make; remove it or set trainer.run_dir elsewhere "
            "(the pipeline only deletes run folders inside its local_dir)"
        )
    shutil.rmtree(run_dir)


def _run_train(stage: TrainStage, force: bool, console: Console) -> Outcome:
    """Not forced, an existing run folder is this pipeline's own killed run: the trainer resumes it from its
    last checkpoint."""
    from train.loop import train

    if force:
        _reset_train(stage)
    train(stage.train)
    return Outcome(None, train_metrics(Path(stage.train.trainer.run_dir)))


def train_metrics(run_dir: Path) -> dict[str, Any]:
    """First and last logged loss, last held-out loss, steps and tokens, from the run's metrics.jsonl."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    train_rows = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    out: dict[str, Any] = {"run_dir": str(run_dir)}
    if train_rows:
        out.update(
            steps=train_rows[-1]["step"],
            tokens_seen=train_rows[-1].get("tokens_seen"),
            first_loss=round(train_rows[0]["loss"], 4),
            last_loss=round(train_rows[-1]["loss"], 4),
        )
    if evals:
        out["eval_loss"] = round(evals[-1]["eval_loss"], 4)
    return out


def _train_proofs(stage: TrainStage) -> list[str]:
    run_dir = Path(stage.train.trainer.run_dir)
    return [str(run_dir / "metrics.jsonl"), str(run_dir / "config.yaml")]


def _train_accepts() -> set[str]:
    return {"config", *_TRAIN_SECTIONS}


# --------------------------------------------------------------------------------------------- report


def _stats_cls() -> type:
    from dolma_kit.analysis.stats import StatsConfig

    return StatsConfig


def _with_run(command: Command) -> Command:
    """The report of a pipeline with a train stage shows that training: `run` defaults to the run folder of the
    last earlier train stage (recognised by its options, which are the trainer's sections)."""
    build = command.build

    def build_stats(path: str, scope: dict[str, Any], raw: dict[str, Any], where: Where) -> Built:
        if "run" not in raw:
            runs = [
                o["trainer"]["run_dir"]
                for o in scope["stages"].values()
                if {"config", *_TRAIN_SECTIONS} <= set(o) and isinstance(o.get("trainer"), dict)
            ]
            if runs:
                raw = {**raw, "run": runs[-1]}
        return build(path, scope, raw, where)

    return replace(command, build=build_stats)


def trained_source_tokens(run_dir: str) -> dict[str, int] | None:
    """Tokens trained per source in a run's logged steps (`dolma-kit trace --sources`), for the report; None when
    the trainer or the run's data cannot be read (the report then says so). Imports `train` (numpy only)."""
    try:
        from train.trace import RunTrace

        records = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if x]
        steps = [r["step"] for r in records if r.get("kind") == "train"]
        return RunTrace(run_dir).source_tokens(max(steps)) if steps else None
    except (ImportError, OSError, ValueError, KeyError, DolmaKitError):
        return None


def _run_stats(config: Any, force: bool, console: Console) -> Outcome:
    from dolma_kit.analysis.report import build_report

    config.force = force
    trained = trained_source_tokens(config.run) if config.run else None
    report = build_report(config, trained_tokens=trained)
    total = report.data["total"]
    console.print(f"report: {total['documents']:,} documents in {len(report.data['sources'])} sources")
    stages = report.data.get("stages", [])
    extra = {
        "html": report.html_path,
        "stats": report.stats_path,
        "documents": total["documents"],
        "stage_rows": len(stages),
        "unbalanced_rows": sum(not r.get("balanced", True) for r in stages),
    }
    return Outcome(None, extra)


def _stats_proofs(config: Any) -> list[str]:
    from dolma_kit.analysis.report import REPORT_NAME
    from dolma_kit.analysis.stats import STATS_NAME

    return [storage.join(config.out, STATS_NAME), storage.join(config.out, REPORT_NAME)]


# --------------------------------------------------------------------------------------------- registry


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        *data_commands(),
        dataclass_command(
            "train-tokenizer", _train_tokenizer_cls, _run_train_tokenizer, lambda c: [c.output]
        ),
        dataclass_command("tokenize", _tokenize_cls, _run_tokenize, _tokenize_proofs),
        Command(
            name="train",
            build=_build_train,
            run=_run_train,
            proofs=_train_proofs,
            accepts=_train_accepts,
            volatile=frozenset({"trainer.device", "trainer.compile", "trainer.cpu_threads"}),
            reset=_reset_train,
        ),
        _with_run(dataclass_command("stats", _stats_cls, _run_stats, _stats_proofs, lambda w: {"root": w})),
    )
}
ALIASES = {"report": "stats"}


def find_command(name: str) -> Command | None:
    """A command by its CLI name; `-`, `_` and spaces are interchangeable (`dedup_exact`), `report` = stats."""
    key = " ".join(str(name).replace("_", " ").replace("-", " ").split())
    key = ALIASES.get(key, key)
    for command in COMMANDS.values():
        if command.name.replace("-", " ") == key:
            return command
    return None
