"""Dataclasses from YAML mappings, with checked keys and types: the one loader behind every trainer config.

Kept apart from train/config.py so that readers of a run (train/trace.py) can load config sections without
importing torch (the model config lives beside the model, in a module that does).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import yaml

from train.errors import ConfigError


def apply_override(raw: dict[str, Any], item: str) -> None:
    """`optim.lr=3e-4` (a leading `--` is allowed) sets raw["optim"]["lr"] = 3e-4."""
    key, sep, value = item.removeprefix("--").partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like --section.key=value (e.g. --optim.lr=3e-4)")
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    node[leaf] = yaml.safe_load(value) if value else None


def from_dict(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass `cls` from a mapping, checking keys and value types; errors name the dotted key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key {_join(where, unknown[0])}; valid keys of {where or 'the config'}: "
            + ", ".join(sorted(fields))
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in raw.items():
        kwargs[name] = _convert(hints[name], value, _join(where, name))
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"missing config key {_join(where, missing[0])}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from exc


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except ConfigError:
                if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                    raise  # a section given as a mapping: its own error names the bad key
                continue
        raise ConfigError(f"{where}: {value!r} is not a {_name(tp)}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)[:1]
        return origin(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {str(k): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads `3e-4` (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp in (int, str, bool) and (type(value) is tp):
        return value
    raise ConfigError(f"{where}: {value!r} is not a {_name(tp)}")


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
