"""Pipeline files → the stage config dataclasses the subcommands build: `${…}` references, checked keys and types.

One declaration: a stage's YAML keys are the fields of the config dataclass its subcommand fills (`TagConfig`,
`ExactDedupConfig`, …), so there is no second list of options to drift. A field that is itself a dataclass
also takes its fields at the stage's top level, as the subcommand's flat options do (`threshold` for
`minhash.threshold`, `ray_address` for `executor.ray_address`), and `executor: ray` is short for
`executor: {kind: ray}`. Keys may be written with `-` or `_` (`skip-bad`, `skip_bad`).

References (`${…}` in any string; a string that is only a reference takes the referenced value's type):
- `${work_dir}`: the pipeline's work directory (local or `s3://`);
- `${local_dir}`: a local folder for outputs that must be local files (tokens are memmaps moved in place,
  training reads them and writes checkpoints): the pipeline's `local_dir:`, by default the work directory when
  that is local (a remote work directory needs one set);
- `${STAGE.key}` (dotted further for nested values): an earlier stage's resolved option, e.g.
  `${tokenize.destination}`;
- `${NAME}` for any other name: the environment variable, as mix recipes read them (unset: an error).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from dolma_kit.errors import DolmaKitError
from dolma_kit.mix.recipe import at


class PipelineError(DolmaKitError):
    """A pipeline file that cannot run as written; the message names the file (and line), stage and key."""


_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\}")

Where = Callable[[Any, str], str]
"""(value, key) → `file:line:col: stage 'NAME': key` for an error message."""


def _keep_position(original: Any, new: str) -> str:
    """A substituted string keeps the line and column of the YAML string it came from (for error messages)."""
    if hasattr(original, "line") and type(original) is not str:
        out = type(original)(new)
        out.line, out.column = original.line, original.column  # type: ignore[attr-defined]
        return out
    return new


def lookup(name: str, scope: dict[str, Any], where: str) -> Any:
    """The value of one reference (see the module docstring)."""
    if name == "work_dir":
        return scope["work_dir"]
    if name == "local_dir":
        return local_dir(scope, where)
    if "." not in name:
        if name not in os.environ:
            raise PipelineError(
                f"{where}: ${{{name}}}: no such environment variable (and not work_dir or local_dir)"
            )
        return os.environ[name]
    stage, *keys = name.split(".")
    stages = scope["stages"]
    if stage not in stages:
        known = ", ".join(stages) or "none yet"
        raise PipelineError(f"{where}: ${{{name}}}: no earlier stage '{stage}' (earlier stages: {known})")
    value = stages[stage]
    for key in keys:
        key = key.replace("-", "_")
        if not isinstance(value, dict) or key not in value:
            raise PipelineError(f"{where}: ${{{name}}}: stage '{stage}' has no option '{key}'")
        value = value[key]
    return value


def local_dir(scope: dict[str, Any], where: str) -> str:
    """The pipeline's local folder; an error names the fix when the work directory is remote and none is set."""
    found = scope.get("local_dir")
    if not found:
        raise PipelineError(
            f"{where}: work_dir {scope['work_dir']} is remote: set `local_dir:` (or --local_dir=DIR), a local "
            "folder for what must be local files (tokens, training runs)"
        )
    return str(found)


def substitute(value: Any, scope: dict[str, Any], where: Where, key: str = "") -> Any:
    """Resolve `${…}` in every string of a loaded YAML value (lists and mappings walked)."""
    if isinstance(value, dict):
        return {k: substitute(v, scope, where, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, scope, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _REF.fullmatch(value)
    if whole:
        found = lookup(whole.group(1), scope, where(value, key))
        return _keep_position(value, found) if isinstance(found, str) else found

    def one(m: re.Match[str]) -> str:
        found = lookup(m.group(1), scope, where(value, key))
        if isinstance(found, dict | list):
            raise PipelineError(
                f"{where(value, key)}: ${{{m.group(1)}}} is a {type(found).__name__}, not text"
            )
        return str(found)

    return _keep_position(value, _REF.sub(one, value))


# --------------------------------------------------------------------------------------------- dataclasses


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def accepted_keys(cls: type) -> dict[str, tuple[str, ...]]:
    """Every key a stage of this config accepts → the field path it sets (flattened nested dataclasses)."""
    keys: dict[str, tuple[str, ...]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.init:
            keys[f.name] = (f.name,)
    for f in dataclasses.fields(cls):
        if f.init and _is_dataclass_type(hints[f.name]):
            for sub in dataclasses.fields(hints[f.name]):
                keys.setdefault(sub.name, (f.name, sub.name))
    return keys


def known_keys(keys: dict[str, tuple[str, ...]]) -> str:
    """The keys an error lists: the stage's own options, then which nested options it also takes flat."""
    own = sorted(k for k, path in keys.items() if len(path) == 1 and k != "force")
    nested = sorted({path[0] for path in keys.values() if len(path) == 2})
    return ", ".join(own) + (f" (and the fields of {', '.join(nested)})" if nested else "")


def normalise_key(key: Any) -> str:
    return str(key).replace("-", "_")


def build_dataclass(cls: type, raw: dict[str, Any], where: Where, what: str) -> Any:
    """`cls(**raw)` with checked keys and types; `what` names the stage command in errors."""
    keys = accepted_keys(cls)
    nested: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for key, value in raw.items():
        name = normalise_key(key)
        if name not in keys:
            raise PipelineError(
                f"{where(key, '')}: unknown key '{key}' for `{what}`; known: {known_keys(keys)}"
            )
        path = keys[name]
        if len(path) == 2:
            nested.setdefault(path[0], {})[path[1]] = value
        else:
            kwargs[name] = convert(hints[name], value, where, str(key))
    for name, sub in nested.items():
        given = kwargs.get(name)
        if given is not None and not isinstance(given, dict) and dataclasses.is_dataclass(given):
            given = {f.name: getattr(given, f.name) for f in dataclasses.fields(given)}
        kwargs[name] = convert(hints[name], {**(given or {}), **sub}, where, name)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise PipelineError(f"{where(None, '')}: `{what}` needs '{missing[0]}'")
    try:
        return cls(**kwargs)
    except (DolmaKitError, TypeError, ValueError) as exc:
        raise PipelineError(f"{where(None, '')}: {exc}") from None


def convert(tp: Any, value: Any, where: Where, key: str) -> Any:
    """A YAML value as the field type asks: str, int, float, bool, X | None, list, tuple, dict, Literal,
    a dataclass (from a mapping; `ExecutorConfig` also from its kind)."""
    origin = typing.get_origin(tp)
    if _is_dataclass_type(tp):
        if isinstance(value, str):  # `executor: ray`
            first = dataclasses.fields(tp)[0].name
            value = {first: value}
        if not isinstance(value, dict):
            raise PipelineError(f"{where(value, key)}: expected a mapping, got {value!r}")
        return build_dataclass(tp, value, lambda v, k: where(v, f"{key}.{k}" if k else key), key)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(arg, value, where, key)
            except PipelineError:
                continue
        raise PipelineError(f"{where(value, key)}: {value!r} is not {_name(tp)}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(map(str, typing.get_args(tp)))
            raise PipelineError(f"{where(value, key)}: {value!r} is not one of {choices}")
        return str(value) if isinstance(value, str) else value
    if origin in (list, tuple):
        items = [value] if isinstance(value, str) and origin is list else value
        if not isinstance(items, list | tuple):
            raise PipelineError(f"{where(value, key)}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return origin(convert(item, v, where, f"{key}[{i}]") for i, v in enumerate(items))
    if origin is dict:
        if not isinstance(value, dict):
            raise PipelineError(f"{where(value, key)}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {str(k): convert(vt, v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is Any or tp is object:
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is str and isinstance(value, str):
        return str(value)
    if tp in (int, bool) and type(value) is tp:
        return value
    raise PipelineError(f"{where(value, key)}: {value!r} is not {_name(tp)}")


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def location(path: str, stage: str) -> Where:
    """The `Where` of one stage of a pipeline file: `file:line:col: stage 'NAME': key`."""

    def where(value: Any, key: str) -> str:
        head = at(path, value) if value is not None else path
        return f"{head}: stage '{stage}'" + (f": {key}" if key else "")

    return where
