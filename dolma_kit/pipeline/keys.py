"""Every unknown key of a stage at once, each with its file:line and a did-you-mean.

`config.from_dict` stops at the first unknown key, which is right for building a config but makes a user fix
a training config typo by typo, a run each. Before a pipeline builds a stage, `stage_key_errors` walks the
stage's keys against its config dataclass (nested sections and lists of sections too) and returns them all;
`load_pipeline` reports them with the rest of the plan check. For `train` the keys are the training config
file's merged with the stage's sections, checked against the trainer's `TrainConfig` (torch-free).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from dolma_kit.config import (
    ConfigError,
    Where,
    config_keys,
    describe_keys,
    did_you_mean,
    load_yaml,
    merge,
    normalise_key,
)
from dolma_kit.stages import Stage


def _section(tp: Any) -> tuple[type | None, bool]:
    """(the dataclass a field holds, whether it is a list of them), through `X | None`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _section(args[0]) if len(args) == 1 else (None, False)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        inner, _ = _section(args[0]) if args else (None, False)
        return inner, inner is not None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp, False
    return None, False


def _at(where: Where, key: Any, stage: Where) -> Where:
    """`where.child(key)`; a key written in another file (a training config) also names where the `stage` is."""
    at = where.child(key)
    context = stage.context
    if at.file != stage.file and stage.line:
        context = f"{stage.context} ({stage.file}:{stage.line})"
    return dataclasses.replace(at, context=context)


def unknown_keys(
    cls: type, raw: Any, where: Where, *, flat: bool = False, stage: Where | None = None
) -> list[ConfigError]:
    """Every key of `raw` (and of its nested sections) that `cls` does not take, as `from_dict` words it.
    `stage`: where the stage is written (default `where`), named too for a key in another file."""
    stage = stage or where
    if not isinstance(raw, dict):
        return []
    keys = config_keys(cls, flat=flat)
    out: list[ConfigError] = []
    for key, value in raw.items():
        name = normalise_key(key)
        if name not in keys:
            hint = did_you_mean(name, keys)
            out.append(
                _at(where, key, stage).error(
                    f"unknown key '{key}'; valid keys: {describe_keys(cls, flat=flat)}"
                    + (f"; did you mean {hint}?" if hint else "")
                )
            )
            continue
        owner = cls
        for part in keys[name][:-1]:
            owner = _section(typing.get_type_hints(owner)[part])[0] or owner
        inner, many = _section(typing.get_type_hints(owner)[keys[name][-1]])
        if inner is None:
            continue
        if many and isinstance(value, list):
            for i, item in enumerate(value):
                out += unknown_keys(inner, item, _at(where, key, stage).child(f"[{i}]"), stage=stage)
        else:
            out += unknown_keys(inner, value, _at(where, key, stage), stage=stage)
    return out


def _train_keys(stage: Stage, raw: dict[str, Any], where: Where) -> list[ConfigError]:
    """The stage's own keys (`config` and the sections it may set), then the merged training config's."""
    from train.config import TrainConfig  # the dataclasses only: no torch

    top = sorted(stage.accepts())
    out = []
    for key in raw:
        if normalise_key(key) not in top:
            hint = did_you_mean(normalise_key(key), top)
            out.append(
                where.child(key).error(
                    f"unknown key '{key}' for `train`; known: {', '.join(top)}"
                    + (f"; did you mean {hint}?" if hint else "")
                )
            )
    base: Any = {}
    if raw.get("config"):
        file = Path(str(raw["config"]))
        if not file.is_file():
            return out  # the stage's build says so, at the key
        try:
            base = load_yaml(str(file), "training config") or {}
        except ConfigError as exc:
            return [*out, exc]
    if not isinstance(base, dict):
        return out
    sections = {k: v for k, v in raw.items() if normalise_key(k) in top and normalise_key(k) != "config"}
    return out + unknown_keys(TrainConfig, merge(base, sections), where)


def stage_key_errors(stage: Stage, raw: dict[str, Any], where: Where) -> list[ConfigError]:
    """All unknown keys of one stage's entry (empty: let the stage build its config as usual)."""
    if stage.name == "train":
        return _train_keys(stage, raw, where)
    if stage.config is None or stage.keys is not None:
        return []  # a stage that declares its own keys: its build checks them
    return unknown_keys(stage.config, raw, where, flat=True)
