"""The trainer's own error: a run that cannot go on without a human (configs fail with `ConfigError`)."""

from __future__ import annotations

from dolma_kit.errors import DolmaKitError


class TrainingDiverged(DolmaKitError):
    """More rollbacks than recovery.max_rollbacks: a human has to look."""
