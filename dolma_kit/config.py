"""The one way configuration gets in: YAML read with positions, checked dataclasses, dotted overrides, `${…}`.

Every config a user writes goes through here: mix recipes, pipeline files, training configs and a run's saved
`config.yaml`, tagger specs (`gopher:min_words=30`) and the options of stage subcommands. The dataclasses *are*
the schema (one declaration: keys are field names, defaults live in the fields), so there is no second list of
keys to drift, and every error names where the bad value was written:

- `load_yaml(path)` parses YAML (or JSON) with every string, key included, a `Text` that remembers its file,
  line and column; syntax errors say `file:line:col`.
- `from_dict(cls, raw, where)` is the only path from untyped data to a config dataclass: unknown keys (listing
  the valid ones), missing keys, and values that are not of the field's type (`X | None`, `Literal`, lists,
  tuples, mappings, nested dataclasses) are `ConfigError`s at the value's (or its key's) position.
- `set_dotted(raw, "optim.lr=3e-4")` is the one `--a.b=value` override parser (the value read as YAML).
- `substitute(value, lookup, where)` is the one `${NAME}` expander; `environment` is the lookup that reads
  environment variables (OmegaConf's `${oc.env:NAME}`, which Dolma configs use, too).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError

T = TypeVar("T")


class ConfigError(DolmaKitError):
    """A config (recipe, pipeline, training config, tagger spec, option) that cannot run as written; the
    message starts with where it was written (`file:line:col`, and the key) and says what is valid."""


# --------------------------------------------------------------------------------------------- YAML with marks


class Text(str):
    """A string read from a file that knows where it was written (1-based line and column of its first
    character). `origin` is the text it was translated from, when a loader rewrote it (a Dolma JSONPath)."""

    file: str = ""
    line: int = 0
    column: int = 0
    origin: str = ""

    @classmethod
    def at(cls, value: str, file: str, line: int, column: int, origin: str = "") -> Text:
        out = cls(value)
        out.file, out.line, out.column, out.origin = file, line, column, origin
        return out

    def like(self, value: str) -> Text:
        """`value` at this string's position (a substituted string keeps the place it was written)."""
        return Text.at(value, self.file, self.line, self.column, self.origin)


def _loader(path: str) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):  # a SafeLoader: plain data only
        pass

    def construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Text:
        quoted = 1 if node.style in ("'", '"') else 0
        mark = node.start_mark
        return Text.at(loader.construct_scalar(node), path, mark.line + 1, mark.column + 1 + quoted)

    Loader.add_constructor("tag:yaml.org,2002:str", construct_str)
    return Loader


def parse_yaml(text: str, path: str) -> Any:
    """YAML (or JSON) text → plain data with positioned strings; a syntax error says `path:line:col`."""
    try:
        return yaml.load(text, Loader=_loader(path))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ConfigError(f"{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_yaml(path: str, what: str = "config file") -> Any:
    """Read and parse a config file, local or remote (see `parse_yaml`)."""
    try:
        text = storage.read_text(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc}") from None
    return parse_yaml(text, path)


def plain(value: Any) -> Any:
    """Loaded data with positions dropped (plain `str`), for JSON, digests and saved copies."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


# --------------------------------------------------------------------------------------------- where


@dataclass(frozen=True)
class Where:
    """Where a value sits: the file, the nearest known position in it, what it configures, and the key path.

    Renders as `file:line:col: context: key`, the head of every `ConfigError` message."""

    file: str = ""
    line: int = 0
    column: int = 0
    context: str = ""
    """What the file part configures, e.g. `stage 'tag'` in a pipeline file."""
    key: str = ""
    """Dotted key path inside it (`streams[0].output.format`)."""
    options: bool = False
    """Keys are command-line options: a key renders as its flag (`--url-field`), nested or not."""

    def child(self, key: Any) -> Where:
        """The place of `key` below this one (its own position when it was read from a file)."""
        if self.options:
            name = self.key if str(key).startswith("[") else "--" + str(key).replace("_", "-")
        elif str(key).startswith("["):
            name = f"{self.key}{key}"
        else:
            name = f"{self.key}.{key}" if self.key else str(key)
        return dataclasses.replace(self.of(key), key=name)

    def of(self, value: Any) -> Where:
        """This place, at `value`'s position when it has one."""
        if isinstance(value, Text) and value.line:
            return dataclasses.replace(
                self, file=value.file or self.file, line=value.line, column=value.column
            )
        return self

    def __str__(self) -> str:
        head = f"{self.file}:{self.line}:{self.column}" if self.file and self.line else self.file
        return ": ".join(p for p in (head, self.context, self.key) if p)

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self}: {message}" if str(self) else message)


def _where(where: Where | str) -> Where:
    return where if isinstance(where, Where) else Where(context=where)


# --------------------------------------------------------------------------------------------- dataclasses


def is_config_field(f: dataclasses.Field[Any]) -> bool:
    """A field a config may set: init fields not marked `metadata={"config": False}` (derived values)."""
    return f.init and f.metadata.get("config", True)


def normalise_key(key: Any) -> str:
    """Keys may be written with `-` or `_` (`skip-bad`, `skip_bad`), as on the command line."""
    return str(key).replace("-", "_")


def config_keys(cls: type, *, flat: bool = False) -> dict[str, tuple[str, ...]]:
    """Every key `cls` takes → the field path it sets. `flat`: a field that is itself a dataclass also takes
    its fields at the top level, as a subcommand's flat options do (`threshold` for `minhash.threshold`)."""
    keys = {f.name: (f.name,) for f in dataclasses.fields(cls) if is_config_field(f)}
    if flat:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if is_config_field(f) and _dataclass_type(hints[f.name]):
                for sub in dataclasses.fields(hints[f.name]):
                    if is_config_field(sub):
                        keys.setdefault(sub.name, (f.name, sub.name))
    return keys


def did_you_mean(name: str, known: Any) -> str:
    """The closest of `known` names to a misspelt `name`, quoted (`'max_steps'`), or `""` when none is close:
    a typo is found by reading one suggestion, not by scanning a list of thirty keys."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f"'{close[0]}'" if close else ""


def describe_keys(cls: type, *, flat: bool = False) -> str:
    """The keys an error lists: the config's own, then which nested configs it also takes flat."""
    keys = config_keys(cls, flat=flat)
    own = sorted(k for k, path in keys.items() if len(path) == 1)
    nested = sorted({path[0] for path in keys.values() if len(path) == 2})
    return ", ".join(own) + (f" (and the fields of {', '.join(nested)})" if nested else "")


def from_dict(
    cls: type[T], raw: Any, where: Where | str = "", *, flat: bool = False, text: bool = False
) -> T:
    """Build the config dataclass `cls` from loaded data, checking keys and value types.

    `flat`: nested dataclass fields may also be given at the top level (see `config_keys`). `text`: scalar
    values may come as strings to be read as the field's type (`key=value` specs on a command line; lists
    are `a|b|c`). A dataclass field also takes a plain value for its first field (`executor: ray` is
    `executor: {kind: ray}`; a filter rule written as its expression), and a list field takes one value."""
    where = _where(where)
    if not isinstance(raw, dict):
        raise where.error(f"expected {_name(cls)}, got {_describe(raw)}")
    keys = config_keys(cls, flat=flat)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    nested: dict[str, dict[Any, Any]] = {}
    for key, value in raw.items():
        name = normalise_key(key)
        if name not in keys:
            hint = did_you_mean(name, keys)
            raise where.child(key).error(
                f"unknown key '{key}'; valid keys: {describe_keys(cls, flat=flat)}"
                + (f"; did you mean {hint}?" if hint else "")
            )
        path = keys[name]
        if len(path) == 2:
            nested.setdefault(path[0], {})[path[1]] = value
        else:
            kwargs[name] = convert(hints[name], value, where.child(key), text=text)
    for name, sub in nested.items():
        given = kwargs.get(name)
        if dataclasses.is_dataclass(given):
            given = {f.name: getattr(given, f.name) for f in dataclasses.fields(given) if is_config_field(f)}
        kwargs[name] = convert(hints[name], {**(given or {}), **sub}, where.child(name), text=text)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if is_config_field(f)
        and f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise where.error(f"missing key '{missing[0]}'")
    try:
        return cls(**kwargs)
    except (DolmaKitError, TypeError, ValueError) as exc:  # a __post_init__ check: at the mapping
        raise where.error(str(exc)) from None


def convert(tp: Any, value: Any, where: Where, *, text: bool = False) -> Any:
    """One value as the field type asks (see `from_dict`)."""
    where = where.of(value)
    origin = typing.get_origin(tp)
    if _dataclass_type(tp):
        if not isinstance(value, dict):  # the first field alone; its errors name the key it was given as
            first = next(f.name for f in dataclasses.fields(tp) if is_config_field(f))
            value = {first: convert(typing.get_type_hints(tp)[first], value, where, text=text)}
        return from_dict(tp, value, where, text=text)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        empty = value is None or (text and isinstance(value, str) and value.lower() in ("none", "null", ""))
        if empty and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(arg, value, where, text=text)
            except ConfigError:
                if _dataclass_type(arg) and isinstance(value, dict):
                    raise  # a section given as a mapping: its own error names the bad key
        raise where.error(f"must be {_name(tp)}, got {_describe(value)}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise where.error(f"must be one of {', '.join(map(str, choices))}, got {_describe(value)}")
        return str(value) if isinstance(value, str) else value
    if origin in (list, tuple):
        items = value
        if text and isinstance(value, str):
            items = [p for p in value.split("|") if p]
        elif isinstance(value, str) or not isinstance(value, list | tuple):
            items = [value] if origin is list and value is not None else value
        if not isinstance(items, list | tuple):
            raise where.error(f"expected a list, got {_describe(value)}")
        args = [a for a in typing.get_args(tp) if a is not Ellipsis] or [Any]
        return origin(convert(args[0], v, where.child(f"[{i}]"), text=text) for i, v in enumerate(items))
    if origin is dict:
        _, vt = typing.get_args(tp) or (str, Any)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):  # names → None
            value = dict.fromkeys(value)
        if not isinstance(value, dict):
            raise where.error(f"expected a mapping, got {_describe(value)}")
        return {str(k): convert(vt, v, where.child(k), text=text) for k, v in value.items()}
    if tp is Any or tp is object:
        return value
    return _scalar(tp, value, where, text)


def _scalar(tp: Any, value: Any, where: Where, text: bool) -> Any:
    if text and isinstance(value, str) and tp is not str:
        value = _read_text(tp, value, where)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads `3e-4` (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp is str and isinstance(value, str):
        return value
    if tp in (int, bool) and type(value) is tp:
        return value
    raise where.error(f"must be {_name(tp)}, got {_describe(value)}")


def _read_text(tp: Any, value: str, where: Where) -> Any:
    if tp is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
    try:
        if tp in (int, float):
            return tp(value)
    except ValueError:
        pass
    raise where.error(f"cannot read {value!r} as {_name(tp)}")


def _dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _describe(value: Any) -> str:
    return f"a mapping ({', '.join(map(str, value))})" if isinstance(value, dict) else repr(plain(value))


_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _name(tp: Any) -> str:
    """How an error names a type: `a number`, `a list of strings`, `an integer or null`."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        names = " or ".join(_name(a) for a in args if a is not type(None))
        return names + " or null" * (type(None) in args)
    if typing.get_origin(tp) in (list, tuple):
        return "a list"
    if typing.get_origin(tp) is dict:
        return "a mapping"
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if _dataclass_type(tp):
        return f"a mapping of {tp.__name__} keys"
    return _NAMES.get(tp) or getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain data (tuples as lists, positions dropped): what `from_dict` reads back."""
    return plain(dataclasses.asdict(config))


# --------------------------------------------------------------------------------------------- overrides


def set_dotted(raw: dict[str, Any], item: str, where: str = "override") -> tuple[list[str], Any]:
    """`optim.lr=3e-4` (a leading `--` allowed) sets raw["optim"]["lr"] = 3e-4, the value read as YAML.

    Returns the key path and the value. Sections missing on the way are created."""
    key, sep, value_text = item.removeprefix("--").partition("=")
    if not sep or not key:
        raise ConfigError(f"{where} {item!r} must look like --section.key=value (e.g. --optim.lr=3e-4)")
    path = key.split(".")
    value = yaml.safe_load(value_text) if value_text else None
    node = raw
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where} {item!r}: {part} is not a section")
    node[path[-1]] = value
    return path, value


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`, mappings merged key by key (a training config's sections under a pipeline's)."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else value
    return out


# --------------------------------------------------------------------------------------------- ${…}

REFERENCE = re.compile(r"\$\{((?:oc\.env:)?[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\}")

Lookup = Callable[[str, Where], Any]
"""(name inside `${…}`, where it was written) → its value; raises `ConfigError` for an unknown name."""


def environment(name: str, where: Where) -> str:
    """`${VAR}` and OmegaConf's `${oc.env:VAR}` from the environment; unset is an error."""
    var = name.removeprefix("oc.env:")
    if var not in os.environ:
        raise where.error(f"${{{name}}}: environment variable {var} is not set")
    return os.environ[var]


def substitute(value: Any, lookup: Lookup, where: Where | str = "") -> Any:
    """Resolve `${…}` in every string of loaded data (mappings and lists walked). A string that is only a
    reference takes the referenced value's type; inside longer text the value must be text or a number."""
    where = _where(where)
    if isinstance(value, dict):
        return {k: substitute(v, lookup, where.child(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, lookup, where.child(f"[{i}]")) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    at = where.of(value)
    whole = REFERENCE.fullmatch(value)
    if whole:
        found = lookup(whole.group(1), at)
        return _keep_position(value, found) if isinstance(found, str) else found

    def one(m: re.Match[str]) -> str:
        found = lookup(m.group(1), at)
        if isinstance(found, dict | list):
            raise at.error(f"${{{m.group(1)}}} is a {type(found).__name__}, not text")
        return str(found)

    return _keep_position(value, REFERENCE.sub(one, value))


def _keep_position(original: str, new: str) -> str:
    return original.like(new) if isinstance(original, Text) else new


# --------------------------------------------------------------------------------------------- a run's config

RUN_CONFIG_NAME = "config.yaml"


def read_run_config(run_dir: Any, *, required: bool = True) -> dict[str, Any] | None:
    """The resolved training config a run folder holds (`RUN/config.yaml`), as loaded data with positions.

    Every reader of a run goes through here (the trainer on resume, trace, export, averaging, the report), so
    "is this a run folder" has one answer. `required=False` returns None where there is no config.yaml."""
    path = storage.join(str(run_dir), RUN_CONFIG_NAME)
    if not storage.exists(path):
        if not required:
            return None
        raise ConfigError(f"{run_dir} is not a training run: no {RUN_CONFIG_NAME}")
    raw = load_yaml(path, "run's config")
    if not isinstance(raw, dict) or not isinstance(raw.get("trainer"), dict):
        raise ConfigError(f"{path}: not a training run's config (a mapping with a trainer section)")
    return raw
