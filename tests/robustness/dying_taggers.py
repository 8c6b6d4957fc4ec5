"""Taggers whose process dies (SIGKILL, as the kernel's OOM killer does), or that hold memory, for the retry and
stage-process tests;
loaded with --tagger-modules. State lives in files under `state`: every attempt runs in another process."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.registry import register_tagger


@dataclass(kw_only=True)
class DyingConfig(TaggerConfig):
    state: str = ""
    """Directory of the state files, shared by every worker process."""
    always: bool = False
    """Die on every attempt of the shard named `shard` (default: once in the whole run)."""
    shard: str = ""
    """With `always`: the document id prefix whose shard kills its worker each time."""


@register_tagger("dies_v1")
class Dies(Tagger):
    """Kills its own process: once in the whole run (the first document of any shard), or, with `always`, on
    every attempt of the shard holding documents whose id starts with `shard`. `state/deaths` gets a line per
    death."""

    Config = DyingConfig

    def predict(self, doc) -> list[Span]:
        state = Path(self.config.state)
        if self.config.always:
            dies = doc.id.startswith(self.config.shard)
        else:
            try:
                (state / "died").open("x").close()  # exclusive create: one call in the whole run dies
                dies = True
            except FileExistsError:
                dies = False
        if dies:
            with open(state / "deaths", "a") as fh:
                fh.write(f"{doc.id}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return [whole_document(doc, "length", len(doc.text))]

    def attribute_names(self) -> list[str]:
        return ["length"]


@dataclass(kw_only=True)
class HogConfig(TaggerConfig):
    mb: int = 200
    """Megabytes to allocate, and keep, the first time a document is tagged."""


_KEPT: list[bytearray] = []


@register_tagger("hog_v1")
class Hog(Tagger):
    """Allocates `mb` MB and keeps it in a module global, as a model cache does: memory the stage's process holds
    until it ends (the pipeline test checks that the pipeline's own process never holds it)."""

    Config = HogConfig

    def predict(self, doc) -> list[Span]:
        if not _KEPT:
            _KEPT.append(bytearray(b"x" * (self.config.mb << 20)))
        return [whole_document(doc, "length", len(doc.text))]

    def attribute_names(self) -> list[str]:
        return ["length"]
