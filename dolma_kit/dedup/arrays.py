"""The MinHash steps' arrays on disk: .npy files written atomically, read memory-mapped when local.

Shared by the steps (`minhash_stage`) and the report (`minhash_report`), so neither imports the other.
"""

from __future__ import annotations

import io

import numpy as np

from dolma_kit import storage


def save_npy(path: str, array: np.ndarray) -> None:
    with storage.atomic_write(path) as fh:
        np.save(fh, array, allow_pickle=False)


def load_npy(path: str, *, mmap: bool = True) -> np.ndarray:
    """Memory-mapped when local (the LSH and cluster steps never hold all signatures in memory)."""
    if mmap and not storage.is_remote(path):
        return np.load(storage.local_path(path), mmap_mode="r", allow_pickle=False)
    with storage.open_raw(path) as fh:
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


def npy_rows(path: str) -> int:
    """Rows of a .npy file, from its header only."""
    with storage.open_raw(path) as fh:
        fmt = np.lib.format
        version = fmt.read_magic(fh)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, _ = read_header(fh)
    return int(shape[0])
