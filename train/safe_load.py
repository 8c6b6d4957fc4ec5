"""Read a checkpoint folder someone else wrote without running code from it.

Run folders are downloaded and shared, and stock DCP unpickles two things from them with plain pickle: the
`.metadata` file (`FileSystemReader.read_metadata`) and every non-tensor entry of the shard files (optimizer
hyper-parameters, through `DefaultLoadPlanner.load_bytes`, `torch.load(weights_only=False)`). Either runs
whatever a crafted file asks for. Every checkpoint load in the trainer and its tools goes through `load_dcp`:

- `.metadata` is unpickled by `_MetadataUnpickler`, whose `find_class` admits only `ADMITTED` (the classes
  the trainer's checkpoints reference, listed by unpickling real ones: FSDP on one and two ranks, full and
  model-only) and torch's dtype, layout and memory-format constants; every one of them only builds inert data;
- non-tensor entries are read with `torch.load(weights_only=True)`, as DCP already reads the tensors; so is
  every other `.pt` file of a run (`load_plain`);
- the metadata may name only files inside the checkpoint folder.

A refused file is a `ConfigError` naming the file and what it asked to load.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import CheckpointException, DefaultLoadPlanner, FileSystemReader
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint.planner import ReadItem

from dolma_kit.config import ConfigError

ADMITTED: dict[str, frozenset[str]] = {
    "torch.distributed.checkpoint.metadata": frozenset(
        {
            "Metadata",
            "StorageMeta",
            "MetadataIndex",
            "TensorStorageMetadata",
            "BytesStorageMetadata",
            "ChunkStorageMetadata",
            "TensorProperties",
            "_MEM_FORMAT_ENCODING",
        }
    ),
    "torch.distributed.checkpoint.filesystem": frozenset({"_StorageInfo"}),
    "torch": frozenset({"Size"}),
    "torch.serialization": frozenset({"_get_layout"}),  # torch.strided & co. by name
    "pathlib": frozenset({"PosixPath", "PurePosixPath"}),  # StorageMeta.checkpoint_id: where it was saved
}
"""module → names a checkpoint's `.metadata` may reference; anything else is refused."""

_CONSTANTS = (torch.dtype, torch.layout, torch.memory_format)
_METADATA_WHY = (
    "a checkpoint's metadata holds only torch.distributed.checkpoint classes; this file may run code"
)
_ENTRY_WHY = "a checkpoint's non-tensor entries hold only plain values; this file may run code"


class _Refused(Exception):
    """find_class met a global outside ADMITTED; `name` is its dotted name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _MetadataUnpickler(pickle.Unpickler):
    """Builds only DCP metadata: every global a pickle references must be in ADMITTED or a torch constant."""

    def find_class(self, module: str, name: str) -> Any:
        if name in ADMITTED.get(module, ()):
            return super().find_class(module, name)
        if module == "torch" and isinstance(vars(torch).get(name), _CONSTANTS):  # vars: no lazy imports
            return vars(torch)[name]
        raise _Refused(f"{module}.{name}")


def read_metadata_file(path: Path) -> Metadata:
    """Unpickle a DCP `.metadata` file with `_MetadataUnpickler` and check what it built; ConfigError if not."""
    try:
        with path.open("rb") as fh:
            meta = _MetadataUnpickler(fh).load()
    except _Refused as exc:
        raise ConfigError(f"{path}: refuses to load {exc.name!r} ({_METADATA_WHY})") from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing, so the folder is not a DCP checkpoint") from None
    except Exception as exc:  # truncated or not a pickle; an admitted class given arguments it rejects
        raise ConfigError(f"{path}: not a DCP metadata file ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, Metadata):
        raise ConfigError(f"{path}: holds a {type(meta).__name__}, not DCP checkpoint metadata")
    for info in (meta.storage_data or {}).values():
        if not isinstance(info, _StorageInfo) or not _is_file_name(info.relative_path):
            raise ConfigError(f"{path}: names a shard outside its folder ({info!r}); refusing to read it")
    return meta


def _is_file_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


class SafeReader(FileSystemReader):
    """DCP's FileSystemReader with the metadata read by `read_metadata_file` instead of `pickle.load`."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        meta = read_metadata_file(Path(self._get_metadata_path(kwargs.get("rank"))))
        if getattr(meta, "storage_meta", None) is None:
            meta.storage_meta = StorageMeta()
        meta.storage_meta.load_id = self.load_id  # as FileSystemReader does
        return meta


class SafePlanner(DefaultLoadPlanner):
    """DCP's default planner, reading non-tensor entries with `torch.load(weights_only=True)`; `load_bytes`
    repeats the rest of torch 2.13's `DefaultLoadPlanner.load_bytes` (recheck it on a torch upgrade)."""

    def __init__(self, reader: SafeReader) -> None:
        super().__init__()
        self.reader = reader  # to name the shard file in an error

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        fqn = read_item.dest_index.fqn
        try:
            obj = torch.load(value, weights_only=True)
        except pickle.UnpicklingError as exc:
            info = self.reader.storage_data[read_item.storage_index]
            where = Path(self.reader.path) / info.relative_path
            raise ConfigError(f"{where}: {_refusal(exc)} in entry {fqn!r} ({_ENTRY_WHY})") from None
        if self.flatten_state_dict:  # what DefaultLoadPlanner.load_bytes does with the value
            set_element(self.original_state_dict, self.mappings[fqn], obj)
        else:
            self.state_dict[fqn] = obj


def _refusal(exc: pickle.UnpicklingError) -> str:
    """torch's weights-only refusal says `Unsupported global: GLOBAL mod.name`; keep the name."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return (
        f"refuses to load {found.group(1)!r}" if found else f"refuses to load it ({str(exc).splitlines()[0]})"
    )


def load_dcp(state_dict: dict[str, Any], path: str | Path) -> None:
    """`dcp.load(state_dict, checkpoint_id=path)` (in place, resharding) with `SafeReader` and `SafePlanner`.

    The metadata is read once before DCP starts: inside `dcp.load` a failed metadata read is retried as a
    rank-local file and reported as an AssertionError, which would hide the refusal. A ConfigError raised
    while DCP reads the shards arrives wrapped in a CheckpointException and is unwrapped."""
    reader = SafeReader(path)
    reader.read_metadata()
    try:
        dcp.load(state_dict, storage_reader=reader, planner=SafePlanner(reader))
    except CheckpointException as exc:
        for error, _ in exc.failures.values():
            if isinstance(error, ConfigError):
                raise error from None
        raise


def load_plain(path: Path) -> Any:
    """`torch.load(path, weights_only=True)` (tensors and plain values only) with a refusal as a ConfigError."""
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ConfigError(
            f"{path}: {_refusal(exc)} (a run's .pt files hold only tensors; it may run code)"
        ) from None
