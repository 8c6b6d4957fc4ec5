"""What lets a tokenize destination be resumed: its settings, checked against an earlier run's, and the sweep
of the temp files a killed run left.

A destination records the settings that determine its bytes (`_work/settings.json`); a re-run with other
settings is refused unless `--force`. A setting added by a later version is absent from an older
destination's record: that is no conflict when the new setting, at the value asked for, writes what the older
version wrote (`ADDED_SETTINGS`), so an upgrade does not force a rebuild.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.provenance import ID_INDEX_FILES, MANIFEST_NAME

SUMMARY_NAME = "tokenize_summary.json"


def _finished_shard_tokens(destination: str) -> list[int]:
    """Tokens of every shard an earlier run finished (its `chunks.json`), for the checks below."""
    totals = []
    for path in Path(destination, "_work").rglob("*.chunks.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            totals.append(sum(int(c["tokens"]) for c in json.loads(path.read_text("utf-8"))["chunks"]))
    return totals


def _window_tokens_never_reached(destination: str, value: Any) -> bool:
    """Versions before `shuffle_window_tokens` closed windows by documents only; a bound no finished shard
    reached (fewer tokens in the whole shard) closed no window early, so those shards' bytes are the same."""
    return isinstance(value, int) and all(total < value for total in _finished_shard_tokens(destination))


def _always(destination: str, value: Any) -> bool:
    return True


#: setting → (the value that writes what a version without it wrote, or None for "see the check"; a check
#: (destination, value asked for) → whether an older destination is then unchanged)
ADDED_SETTINGS: dict[str, tuple[Any, Callable[[str, Any], bool]]] = {
    "shuffle_window_tokens": (None, _window_tokens_never_reached),
    "strip": (False, _always),
    "encode_special_tokens": (True, _always),
    "bos_id": (None, _always),
    "post_processor": (True, _always),
    "unique_ids": (False, _always),
}


def _upgraded(destination: str, old: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """True when `old` lacks only settings that, as `wanted` sets them, change nothing (`ADDED_SETTINGS`)."""
    for key, value in wanted.items():
        if key in old:
            if old[key] != value:
                return False
            continue
        if key not in ADDED_SETTINGS:
            return False
        legacy, check = ADDED_SETTINGS[key]
        if legacy is not None and value != legacy:
            return False
        if not check(destination, value):
            return False
    return set(old) <= set(wanted)


def check_settings(destination: str, settings: dict[str, Any], force: bool) -> None:
    """A destination holding work from other settings is redone only when asked (--force); one written by an
    older version without some setting is taken as it is when that setting changes nothing (module doc)."""
    path = storage.join(destination, "_work", "settings.json")
    wanted = json.dumps(settings, indent=2, sort_keys=True) + "\n"
    if storage.exists(path) and not force:
        text = storage.read_text(path)
        if text != wanted:
            try:
                old = json.loads(text)
            except ValueError:
                old = None
            if not isinstance(old, dict) or not _upgraded(destination, old, settings):
                raise DolmaKitError(
                    f"{destination} holds a tokenization with other settings ({path}); "
                    "pass --force to redo it, or choose another --destination"
                )
    storage.write_text(path, wanted)


_PUBLISHED = re.compile(r"^part-\d+\.")


def remove_stale_temps(destination: str) -> int:
    """Delete the temp files of writers a kill stopped (SIGKILL runs no cleanup); return how many.

    `run_one` sweeps a task's output, rejects and marker; tokenize also writes chunk files under `_work/` and,
    in the driver, settings, the publish plan, part sources, the id index and the manifest. Called when every
    shard of this run is done, before publishing; a temp file counts as stale when the process named in it
    is this one or has ended (a killed run's, a worker's the executor retried), so a run started meanwhile
    on this host keeps its own. At the top level only the names tokenize writes are looked at.
    """
    ours = {MANIFEST_NAME, SUMMARY_NAME, *ID_INDEX_FILES.values()}

    def stale(path: Path, top: bool) -> bool:
        m = storage.TEMP_NAME.match(path.name)
        if m is None or (top and m["target"] not in ours and not _PUBLISHED.match(m["target"])):
            return False
        pid = int(m["pid"])
        if pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass  # alive, another user's
        return False

    root = Path(destination)
    found = [p for p in root.glob(f".*{storage.TEMP_MARK}*") if stale(p, top=True)]
    for sub in ("_work", "rejects"):  # tokenize's own folders
        found += [p for p in (root / sub).rglob(f".*{storage.TEMP_MARK}*") if stale(p, top=False)]
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return len(found)
