"""The one place that touches the `infini-gram` package: finding it, running its indexer, opening its engine.

The package is an optional extra (`pip install 'dolma-kit[index]'`): without it every index command fails
with one line saying so, and the index tests skip. It runs offline on CPU: its wheel holds a Rust indexer
binary (`rust_indexing`: make-part / merge / concat) and a compiled C++ query engine; nothing is fetched.
We use only the part of it that works on token ids (not its own tokenizing front end, which downloads
tokenizers from the Hugging Face hub).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

from dolma_kit.errors import DolmaKitError

INSTALL = "pip install 'dolma-kit[index]'"
#: infini-gram's engine versions: 4 = suffixes of the tokens as stored (ours), 5 = reversed (not used)
ENGINE_VERSION = 4


class TokenIndexError(DolmaKitError):
    """A missing engine, a missing or stale index, or a query the index cannot answer."""


def infini_gram() -> ModuleType:
    """The `infini_gram` package, or one line saying how to install it."""
    try:
        import infini_gram  # noqa: F401
        from infini_gram import engine
    except ImportError:
        raise TokenIndexError(f"the suffix-array index needs the infini-gram engine: {INSTALL}") from None
    return engine


def engine_version() -> str:
    """The installed infini-gram version (recorded in the index manifest)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("infini-gram")
    except PackageNotFoundError:
        infini_gram()  # raises the install line
        return "unknown"


def indexer() -> Path:
    """The `rust_indexing` binary shipped in the infini-gram wheel."""
    module = infini_gram()
    binary = Path(module.__file__).parent / "rust_indexing"
    if not binary.is_file():
        raise TokenIndexError(
            f"{binary}: the infini-gram wheel has no rust_indexing binary; reinstall: {INSTALL}"
        )
    return binary


def run_indexer(step: str, **options: Any) -> None:
    """Run one `rust_indexing` step; its failure is one line with the tail of what it printed."""
    args = [str(indexer()), step]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise TokenIndexError(
            f"infini-gram indexer `{step}` failed (exit {done.returncode}): {' | '.join(tail)}"
        )


class Engine:
    """infini-gram's engine over every shard in an index folder, memory-mapped (nothing loaded to RAM).

    The engine derives each shard's file names by replacing the word "tokenized" in the *whole path*, so a
    folder named e.g. `tokenized/index` would make it open wrong files and crash. It is handed the folder as
    `/proc/self/fd/<n>` (a descriptor held open as long as the engine lives), a path without such words.
    """

    def __init__(self, index_dir: Path, *, eos_id: int, vocab_size: int, width: int) -> None:
        module = infini_gram()
        self._fd = os.open(index_dir, os.O_RDONLY)
        dtype = {1: "u8", 2: "u16", 4: "u32"}[width]
        self.engine = module.InfiniGramEngine(
            index_dir=f"/proc/self/fd/{self._fd}",
            eos_token_id=eos_id,
            vocab_size=max(vocab_size, eos_id + 1) if width < 4 else 2**32 - 1,
            version=ENGINE_VERSION,
            token_dtype=dtype,
            load_to_ram=False,
        )

    def count(self, ids: list[int]) -> dict[str, Any]:
        return self.engine.count(input_ids=ids)

    def find(self, ids: list[int]) -> dict[str, Any]:
        return self.engine.find(input_ids=ids)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            self.engine = None
            os.close(fd)
