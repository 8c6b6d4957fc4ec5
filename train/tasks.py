"""Multiple-choice task files and their configuration, torch-free: `train/config.py` (and so every pipeline
plan, `trace` and `--dry-run`) reads them without importing torch; the scoring is train/downstream.py.

Task files are JSON Lines, one item a line: `{"context": "...", "choices": ["...", "..."], "label": 1}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dolma_kit.config import ConfigError

NORMALIZATIONS = ("none", "token", "char", "pmi")


@dataclass(kw_only=True)
class TaskConfig:
    """One multiple-choice task file and how its options are compared."""

    name: str
    """Key of the task's accuracy in metrics.jsonl (`downstream.<name>`)."""
    path: str
    """JSON Lines with context, choices, label per line (see train/downstream.py)."""
    normalization: str = "none"
    """none, token, char or pmi (see train/downstream.py)."""
    limit: int | None = None
    """Score only the first this many items (a fixed subset, the same at every evaluation)."""
    unconditional_context: str = ""
    """pmi only: the context of the unconditional probability (after EOS), e.g. "Answer:"."""

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"downstream task {self.name}: normalization must be one of {', '.join(NORMALIZATIONS)}, "
                f"got {self.normalization!r}"
            )


@dataclass(frozen=True)
class Item:
    context: list[int]
    choices: list[list[int]]
    chars: list[int]
    label: int


def load_task(cfg: TaskConfig, encode, eos_id: int) -> list[Item]:
    """Read and tokenize a task file (`encode`: str → list of ids); errors name the file and line."""
    path = Path(cfg.path)
    if not path.is_file():
        raise ConfigError(f"downstream task {cfg.name}: {path} does not exist")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            context, choices, label = str(raw["context"]), [str(c) for c in raw["choices"]], int(raw["label"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{n}: not a {{context, choices, label}} item ({exc})") from None
        if len(choices) < 2 or not 0 <= label < len(choices) or any(not c for c in choices):
            raise ConfigError(f"{path}:{n}: needs ≥ 2 non-empty choices and 0 ≤ label < len(choices)")
        ctx = [eos_id, *encode(context)]
        items.append(Item(ctx, [encode(c) for c in choices], [len(c) for c in choices], label))
        if cfg.limit is not None and len(items) >= cfg.limit:
            break
    if not items:
        raise ConfigError(f"downstream task {cfg.name}: {path} holds no items")
    return items
