"""pyproject.toml reads without deprecation warnings (the install printed one for `license = {text = ...}`)."""

from __future__ import annotations

import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_has_no_deprecated_metadata() -> None:
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), str(ROOT / "pyproject.toml"))
    messages = [str(w.message).splitlines()[0] for w in caught if issubclass(w.category, DeprecationWarning)]
    assert not messages, messages
    assert dist.metadata.license_expression == "Apache-2.0"
