"""The one registry of taggers: a decorator adds a class under its names; specs build configured instances.

A tagger spec on the command line is `NAME` or `NAME:key=value,key=value` (e.g. `gopher:min_words=30` or
`fasttext_classifier:name=quality,model=models/q.bin`). Values are read by the config field's type
(`config.from_dict` in text mode: `true`/`false`, numbers, `none`, lists as `a|b|c`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from dolma_kit.config import Where, did_you_mean, from_dict
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.base import Tagger
from dolma_kit.taggers.dolma_names import dolma_hint

T = TypeVar("T", bound=type[Tagger])

_TAGGERS: dict[str, type[Tagger]] = {}
_ALIASES: dict[str, str] = {}
_BUILTINS_LOADED = False

BUILTIN_MODULES = (
    "dolma_kit.taggers.basic",
    "dolma_kit.taggers.gopher",
    "dolma_kit.taggers.gopher_dolma",
    "dolma_kit.taggers.c4",
    "dolma_kit.taggers.c4_dolma",
    "dolma_kit.taggers.pii",
    "dolma_kit.taggers.pii_dolma",
    "dolma_kit.taggers.language",
    "dolma_kit.taggers.language_dolma",
    "dolma_kit.taggers.content",
)


def register_tagger(name: str, *, alias: str | None = None) -> Callable[[T], T]:
    """Class decorator: register a `Tagger` subclass under a versioned `name` and an optional `alias`."""

    def add(cls: T) -> T:
        if name in _TAGGERS and _TAGGERS[name] is not cls:
            raise DolmaKitError(f"tagger name {name!r} is already registered by {_TAGGERS[name].__module__}")
        cls.name = name
        _TAGGERS[name] = cls
        if alias is not None:
            _ALIASES[alias] = name
        return cls

    return add


def load_builtin_taggers() -> None:
    """Import the built-in tagger modules (lazily, so `--help` stays fast)."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        _BUILTINS_LOADED = True


def load_tagger_modules(modules: list[str]) -> None:
    """Import user modules that register taggers: a dotted module name or a path to a `.py` file."""
    for module in modules:
        if module.endswith(".py") or Path(module).exists():
            path = Path(module).resolve()
            if not path.is_file():
                raise DolmaKitError(f"--tagger-modules: {module} is not a file")
            mod_name = f"dolma_kit_user_{path.stem}"
            if mod_name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(mod_name, path)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = mod
            spec.loader.exec_module(mod)
        else:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise DolmaKitError(f"--tagger-modules: cannot import {module!r}: {exc}") from exc


def registered_taggers() -> dict[str, type[Tagger]]:
    """All registered taggers by versioned name, built-ins included."""
    load_builtin_taggers()
    return dict(sorted(_TAGGERS.items()))


def aliases() -> dict[str, str]:
    """Unversioned alias → versioned name."""
    load_builtin_taggers()
    return dict(sorted(_ALIASES.items()))


def resolve_name(name: str) -> type[Tagger]:
    load_builtin_taggers()
    real = _ALIASES.get(name, name)
    if real not in _TAGGERS:
        names = sorted(set(_TAGGERS) | set(_ALIASES))
        twin = dolma_hint(name)  # a Dolma name first: `c4_v2` is not our `c4_v1`, whatever the spelling says
        hint = None if twin else did_you_mean(name, names)
        raise DolmaKitError(
            f"unknown tagger {name!r}"
            + (f" ({twin})" if twin else "")
            + (f" (did you mean {hint}?)" if hint else "")
            + f"; known taggers: {', '.join(names)} (see `dolma-kit list`)"
        )
    return _TAGGERS[real]


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split `NAME:key=value,key=value` into the name and raw option strings."""
    name, _, rest = spec.partition(":")
    options: dict[str, str] = {}
    if rest:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise DolmaKitError(f"tagger spec {spec!r}: expected key=value, got {item!r}")
            options[key.strip()] = value.strip()
    return name.strip(), options


def build_tagger(spec: str) -> tuple[str, Tagger]:
    """Build a configured tagger from a spec; returns (attribute prefix name, tagger).

    The attribute prefix is the name as the user wrote it (Dolma's behaviour), or the `name` option for
    taggers whose config has one (a classifier configured as `fasttext_classifier:name=quality,...`).
    """
    name, options = parse_spec(spec)
    cls = resolve_name(name)
    config = from_dict(cls.Config, options, Where(context=f"tagger {name!r}"), text=True)
    tagger = cls(config)
    prefix = getattr(config, "name", None) or name
    return prefix, tagger


def default_attribute_names(cls: type[Tagger]) -> tuple[list[str] | None, str]:
    """What `cls` writes with its default options, found without reading data: (attribute names, "") from the
    tagger's own `attribute_names()` (model-backed taggers read their model's labels), or (None, why) for a
    tagger that cannot be built without options (`fasttext_classifier` needs a model and a name)."""
    try:
        return list(cls(cls.Config()).attribute_names()), ""
    except (TypeError, ValueError, OSError, DolmaKitError) as exc:
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
