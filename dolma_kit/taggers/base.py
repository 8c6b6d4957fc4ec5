"""The tagger contract: one class, one `predict` method, spans out; documents are never modified.

A tagger is registered under a versioned name (`gopher_v1`) and optionally an unversioned alias (`gopher`)
that points at the newest version. What a versioned name computes never changes: a new behaviour gets `v2`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from dolma_kit.documents import Document


class Span(NamedTuple):
    """A scored character range of a document's text, `[start, end)` in Python string indices.

    `type` is the attribute name within the tagger (e.g. `email_address`); the stage writes it as
    `<experiment>__<tagger>__<type>`. Document-level scores are one span over the whole text. Immutable, as
    the frozen dataclass it was; a named tuple because taggers build one per flagged line or paragraph
    (hundreds of thousands a shard on real text) and a tuple is built about three times faster.
    """

    start: int
    end: int
    type: str
    score: float = 1.0


@dataclass(kw_only=True)
class TaggerConfig:
    """Options shared by every tagger; subclasses add their own fields (with defaults) and docstrings."""


class Tagger(ABC):
    """Base class for taggers. Subclasses set `Config` (a `TaggerConfig` dataclass) and implement `predict`.

    `attribute_names()` lists every `type` that `predict` can emit, so later stages (mix filters) can check an
    attribute name before reading any data. A tagger whose names depend on a model (language labels) returns
    them from the model.
    """

    Config: ClassVar[type[TaggerConfig]] = TaggerConfig
    #: set by the registry decorator
    name: ClassVar[str] = ""

    def __init__(self, config: TaggerConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def predict(self, doc: Document) -> list[Span]:
        """Return the spans for one document (possibly empty)."""

    @abstractmethod
    def attribute_names(self) -> list[str]:
        """Every span `type` this tagger may emit."""

    def describe(self) -> dict[str, Any]:
        """Name and resolved configuration, for the attributes schema file and `dolma-kit list`."""
        return {"tagger": self.name, "config": dataclasses.asdict(self.config)}


def whole_document(doc: Document, type_: str, score: float) -> Span:
    """A document-level score: one span covering the whole text."""
    return Span(0, len(doc.text), type_, float(score))
