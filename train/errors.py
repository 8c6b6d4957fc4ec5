"""The trainer's user-facing error type (a `DolmaKitError`, so the CLI prints one line, not a traceback)."""

from __future__ import annotations

from dolma_kit.errors import DolmaKitError


class ConfigError(DolmaKitError):
    """A bad training config or input: unknown key, wrong type, missing data, impossible combination."""
