"""The `tokenize` stage: document shards → OLMo's uint16 memmaps, Dolma's metadata CSVs, a provenance index.

Two steps, both resumable:

1. **Shards** (parallel, through `executor.run_shards`): each input shard is read by a thread in batches
   bounded in documents and characters (reading.py) and encoded with `tokenizers`' `encode_batch_fast` (Rust
   threads; a long text in pieces, encoding.py); windows of `shuffle_window` documents (or
   `shuffle_window_tokens` tokens) are shuffled with an RNG seeded by (seed, the shard's `<source>/<shard>`
   key) and written as chunks of at most `max_tokens_per_file` tokens under `<destination>/_work/`. A shard's `chunks.json` lists its chunks
   and is the executor's output (its `.done` marker makes a re-run skip the shard).
2. **Publish** (one process, cheap): chunks are numbered in input-path order → `part-00000`, `part-00001`, …;
   their files are moved to the final names, source codes renumbered into the sorted source list, the id
   index built from every part's id hashes, and `manifest.json` written last: its presence means complete.

Part numbers depend only on the sorted inputs and the settings, so the output is byte-identical for any
`--processes` and after a kill and re-run (publish is idempotent: a moved file is not moved again).
Empty and whitespace-only documents are skipped and counted as removed (`empty`), as Dolma skips them;
unlike Dolma, the text is encoded as it is (Dolma strips it), so decoding a document gives back its text.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from dolma_kit import storage
from dolma_kit.attributes import attribute_root_and_relative
from dolma_kit.documents import DOCUMENT_SUFFIXES, Document
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import (
    ExecutorConfig,
    RejectsWriter,
    RunResult,
    ShardStats,
    ShardTask,
    default_processes,
    run_shards,
    summary_table,
    write_summary,
)
from dolma_kit.provenance import ID_INDEX_FILES
from dolma_kit.stages import Outcome, Stage, counts_of
from dolma_kit.tokenize.encoding import BATCH_CHARS_PER_THREAD, PIECE_CHARS, Encoder
from dolma_kit.tokenize.loading import LoadedTokenizer, load_tokenizer
from dolma_kit.tokenize.parts import ChunkWriter
from dolma_kit.tokenize.publish import MANIFEST_NAME, publish
from dolma_kit.tokenize.reading import Batches

DTYPES = {"uint16": np.uint16, "uint32": np.uint32}
THREADS_PER_PROCESS = 8
SHUFFLE_WINDOW_TOKENS = 1 << 25


SUMMARY_NAME = "tokenize_summary.json"


@dataclass(kw_only=True)
class TokenizeConfig:
    """Everything `dolma-kit tokenize` needs; the CLI fills it."""

    documents: list[str]
    destination: str
    tokenizer: str
    """A tokenizer.json path or a built-in name (`gpt2`)."""
    dtype: str = "auto"
    """`uint16`, `uint32`, or `auto` (uint16 when every id fits, as OLMo expects)."""
    processes: int | None = None
    """Worker processes; default: one per THREADS_PER_PROCESS cores (see `_split_cores`)."""
    seed: int = 0
    max_tokens_per_file: int = 512 * 2**20
    """Dolma's default part size: 512 Mi tokens (1 GiB of uint16)."""
    shuffle_window: int = 10_000
    """Documents shuffled together (Dolma's local_shuffle)."""
    shuffle_window_tokens: int = SHUFFLE_WINDOW_TOKENS
    """A shuffle window also closes once it holds this many tokens, so it is bounded in memory (2 or 4 bytes
    a token) however long its documents; ordinary corpora (10,000 documents under ~3,000 tokens on average)
    never reach it."""
    piece_chars: int = PIECE_CHARS
    """A longer text is encoded in pieces of about this many characters, cut where the tokenizer splits
    anyway, so memory is bounded and ids are unchanged (encoding.py; 0: every text whole). Not a setting of
    the output: any value gives the same bytes."""
    eos_id: int | None = None
    pad_id: int | None = None
    threads: int | None = None
    """Rust (rayon) threads per process for encoding; default: cores / processes."""
    skip_bad: bool = False
    force: bool = False
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Local processes (default) or a Ray cluster for the shard step (the destination stays a local or
    shared folder: the publish step runs on the driver)."""


@dataclass(frozen=True, slots=True)
class _Settings:
    """What determines the output bytes; recorded in `_work/settings.json` so a resumed run cannot mix two."""

    tokenizer: str
    tokenizer_sha256: str
    eos_id: int
    pad_id: int | None
    dtype: str
    seed: int
    max_tokens_per_file: int
    shuffle_window: int
    shuffle_window_tokens: int


# --------------------------------------------------------------------------------------------- shards

_LOADED: dict[tuple[str, int | None, int | None], LoadedTokenizer] = {}


def _tokenizer(spec: str, eos_id: int, pad_id: int | None, threads: int) -> LoadedTokenizer:
    """Load once per process. RAYON_NUM_THREADS is read when Rust first encodes, so set it before that:
    N processes × all-cores thread pools would oversubscribe the machine."""
    key = (spec, eos_id, pad_id)
    if key not in _LOADED:
        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
        _LOADED[key] = load_tokenizer(spec, eos_id=eos_id, pad_id=pad_id)
    return _LOADED[key]


def _strip_suffix(key: str) -> str:
    for suffix in DOCUMENT_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def tokenize_shard(
    settings: _Settings,
    threads: int,
    skip_bad: bool,
    piece_chars: int,
    task: ShardTask,
    stats: ShardStats,
) -> None:
    """Tokenize one input shard into chunks under `_work/`; write `task.output` (chunks.json) last.

    Documents are read in batches (`reading.Batches`) and encoded as they come (`encoding.Encoder`); the
    shuffle window holds their token arrays, not their texts, and closes at `shuffle_window` documents or
    `shuffle_window_tokens` tokens, whichever comes first.
    """
    loaded = _tokenizer(settings.tokenizer, settings.eos_id, settings.pad_id, threads)
    encoder = Encoder(
        loaded.tokenizer,
        loaded.eos_id,
        DTYPES[settings.dtype],
        piece_chars,
        batch_chars=BATCH_CHARS_PER_THREAD * threads,
    )
    stem = task.key.removesuffix(".chunks.json")
    rejects_path = storage.join(storage.parent(task.root), "rejects", stem + ".jsonl.gz")
    storage.remove_stale_temps(rejects_path)
    rng = np.random.Generator(np.random.PCG64([settings.seed, zlib.crc32(stem.encode("utf-8"))]))
    writer = ChunkWriter(storage.join(task.root, stem), task.input, settings.max_tokens_per_file)
    window = _Window()
    try:
        with RejectsWriter(_RejectsAt(rejects_path), stats) as rejects:  # type: ignore[arg-type]
            batches = Batches(task.input, skip_bad=skip_bad, max_docs=settings.shuffle_window)
            for batch in batches:
                for exc in batch.bad:
                    rejects(exc)
                for _ in range(batch.empty):
                    stats.remove("empty")
                encoded = encoder.encode([d.text for d in batch.docs])
                docs = [replace(d, text="") for d in batch.docs]  # the window keeps tokens, not texts
                batch.docs.clear()
                batches.release(batch.chars)
                for doc, tokens in zip(docs, encoded, strict=True):
                    window.add(doc, tokens)
                    if window.full(settings):
                        window.flush(rng, writer, stats)
                stats.progress_bytes(batch.bytes_read)
            window.flush(rng, writer, stats)
        chunks = writer.close()
    except BaseException as exc:
        writer.abort(exc)
        raise
    summary = {"src": task.input, "sources": writer.sources, "chunks": [c.to_json() for c in chunks]}
    storage.write_text(task.output, json.dumps(summary, ensure_ascii=False) + "\n")


@dataclass(frozen=True, slots=True)
class _RejectsAt:
    """A ShardTask stand-in whose `rejects` is `<destination>/rejects/<stem>.jsonl.gz`, not under _work/."""

    rejects: str


@dataclass(slots=True)
class _Window:
    """The documents shuffled together (Dolma's local_shuffle) and their token arrays."""

    docs: list[Document] = field(default_factory=list)
    tokens: list[list[np.ndarray]] = field(default_factory=list)
    size: int = 0
    """Tokens held."""

    def add(self, doc: Document, tokens: list[np.ndarray]) -> None:
        self.docs.append(doc)
        self.tokens.append(tokens)
        self.size += sum(len(a) for a in tokens)

    def full(self, settings: _Settings) -> bool:
        return len(self.docs) >= settings.shuffle_window or self.size >= settings.shuffle_window_tokens

    def flush(self, rng: np.random.Generator, writer: ChunkWriter, stats: ShardStats) -> None:
        """Write the window's documents in a seeded random order; one permutation per non-empty window."""
        if not self.docs:
            return
        order = rng.permutation(len(self.docs))
        writer.write([self.tokens[i] for i in order], [self.docs[i] for i in order])
        for _ in order:
            stats.keep()
        self.docs, self.tokens, self.size = [], [], 0


# --------------------------------------------------------------------------------------------- driver


def _resolve_dtype(requested: str, vocab_size: int) -> str:
    """OLMo reads uint16 memmaps; ids ≥ 65,536 need uint32, and silently wrapping them would corrupt data."""
    if requested == "auto":
        return "uint16" if vocab_size <= 2**16 else "uint32"
    if requested not in DTYPES:
        raise DolmaKitError(f"--dtype {requested!r}: choose uint16, uint32 or auto")
    if requested == "uint16" and vocab_size > 2**16:
        raise DolmaKitError(
            f"--dtype uint16 cannot hold this tokenizer's ids ({vocab_size:,} ids > 65,536): use --dtype uint32"
        )
    return requested


def _tasks(config: TokenizeConfig) -> list[ShardTask]:
    """One task per input shard, keyed `<source>/<shard>` as tag's attribute files are (the path below
    `documents/`, else below the glob root, keeping the parent folder): same-named files of two sources (an
    explicit list, a shell glob) stay apart. The key names the work files and rejects and seeds the shuffle."""
    work = storage.join(config.destination, "_work")
    tasks = []
    for info in storage.expand(config.documents):
        _, rel = attribute_root_and_relative(info.path, info.base, "tokenize", work)
        key = _strip_suffix(rel) + ".chunks.json"
        tasks.append(ShardTask(key=key, input=info.path, output=storage.join(work, key), size=info.size))
    return tasks


def _split_cores(processes: int | None, threads: int | None, files: int) -> tuple[int, int]:
    """(processes, Rust threads each). Unless told, one process per THREADS_PER_PROCESS cores: threads share
    one BPE word cache and cost no extra start-up, so on 2 cores `-p 1` × 2 threads beat `-p 2` × 1 in
    bench/mix_tokenize.py (wall and CPU); a process's reader thread keeps up with about that many encoders."""
    cores = default_processes()
    if processes is None:
        processes = -(-cores // THREADS_PER_PROCESS)
    processes = max(1, min(processes, files))
    return processes, threads or max(1, cores // processes)


def _check_settings(config: TokenizeConfig, settings: _Settings) -> None:
    """A destination holding work from other settings is redone only when asked (--force)."""
    path = storage.join(config.destination, "_work", "settings.json")
    wanted = json.dumps(asdict(settings), indent=2, sort_keys=True) + "\n"
    if storage.exists(path) and not config.force and storage.read_text(path) != wanted:
        raise DolmaKitError(
            f"{config.destination} holds a tokenization with other settings ({path}); "
            "pass --force to redo it, or choose another --destination"
        )
    storage.write_text(path, wanted)


_TEMP = re.compile(r"^\.(?P<target>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]+$")  # storage.atomic_write's temp names
_PUBLISHED = re.compile(r"^part-\d+\.")


def _remove_stale_temps(destination: str) -> int:
    """Delete the temp files of writers a kill stopped (SIGKILL runs no cleanup); return how many.

    `run_one` sweeps a task's output, rejects and marker; tokenize also writes chunk files under `_work/` and,
    in the driver, settings, the publish plan, part sources, the id index and the manifest. Called when every
    shard of this run is done, before publishing; a temp file counts as stale when the process named in it
    is this one or has ended (a killed run's, a worker's the executor retried), so a run started meanwhile
    on this host keeps its own. At the top level only the names tokenize writes are looked at.
    """
    ours = {MANIFEST_NAME, SUMMARY_NAME, *ID_INDEX_FILES.values()}

    def stale(path: Path, top: bool) -> bool:
        m = _TEMP.match(path.name)
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
    found = [p for p in root.glob(".*.tmp-*") if stale(p, top=True)]
    for sub in ("_work", "rejects"):  # tokenize's own folders
        found += [p for p in (root / sub).rglob(".*.tmp-*") if stale(p, top=False)]
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return len(found)


def tokenize(config: TokenizeConfig) -> tuple[RunResult, dict[str, Any]]:
    """Run both steps; return the shard counts and the manifest."""
    if storage.is_remote(config.destination):
        raise DolmaKitError("--destination must be a local folder (memmaps are written and moved in place)")
    if min(config.max_tokens_per_file, config.shuffle_window, config.shuffle_window_tokens) < 1:
        raise DolmaKitError("--max-tokens-per-file and the shuffle window must be positive")
    if config.piece_chars < 0:
        raise DolmaKitError(f"piece_chars {config.piece_chars}: use a positive size, or 0 for whole texts")
    loaded = load_tokenizer(config.tokenizer, eos_id=config.eos_id, pad_id=config.pad_id)
    settings = _Settings(
        tokenizer=config.tokenizer,
        tokenizer_sha256=loaded.sha256,
        eos_id=loaded.eos_id,
        pad_id=loaded.pad_id,
        dtype=_resolve_dtype(config.dtype, loaded.vocab_size),
        seed=config.seed,
        max_tokens_per_file=config.max_tokens_per_file,
        shuffle_window=config.shuffle_window,
        shuffle_window_tokens=config.shuffle_window_tokens,
    )
    tasks = _tasks(config)
    _check_settings(config, settings)
    processes, threads = _split_cores(config.processes, config.threads, len(tasks))
    fn = functools.partial(tokenize_shard, settings, threads, config.skip_bad, config.piece_chars)
    result = run_shards(
        fn, tasks, title="tokenize", processes=processes, force=config.force, executor=config.executor
    )
    for stats in result.shards:
        stats.shard = stats.shard.removesuffix(".chunks.json")
    _remove_stale_temps(config.destination)  # every shard is done: no writer of ours is running
    total = result.total
    counts = {"documents_in": total.documents_in, "empty_skipped": total.removed_by.get("empty", 0)}
    counts["rejected"] = total.rejected
    manifest = publish(config.destination, tasks, asdict(settings), loaded.vocab_size, counts)
    write_summary(result, storage.join(config.destination, SUMMARY_NAME))
    return result, manifest


# --------------------------------------------------------------------------------------------- stage


def _render(config: TokenizeConfig, done: tuple[RunResult, dict[str, Any]]) -> list[Any]:
    result, manifest = done
    table = Table(
        title=f"{config.destination}: {len(manifest['parts'])} parts, {manifest['dtype']}, "
        f"tokenizer {manifest['tokenizer']['name']} (EOS {manifest['eos_id']})"
    )
    for column in ("source", "documents", "tokens", "tokens/doc"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for source, counts in [*manifest["per_source"].items(), ("total", manifest)]:
        docs, toks = counts["documents"], counts["tokens"]
        row = (source, f"{docs:,}", f"{toks:,}", f"{toks / max(docs, 1):,.0f}")
        table.add_row(*row, style="bold" * (source == "total"))
    out: list[Any] = [summary_table(result), table]
    if manifest.get("repeated_ids"):
        repeated = ", ".join(f"{s}: {n:,}" for s, n in manifest["repeated_ids"].items())
        out.append(
            f"[yellow]warning: ids repeated within a source ({repeated} later occurrences): provenance --doc "
            "finds each of them; `dolma-kit dedup exact --key id` marks them for mix to drop[/]"
        )
    return out


def _outcome(config: TokenizeConfig, done: tuple[RunResult, dict[str, Any]]) -> Outcome:
    result, manifest = done
    extra = {"tokens": manifest["tokens"], "parts": len(manifest["parts"]), "destination": config.destination}
    return Outcome(counts_of(result), extra)


STAGE = Stage(
    name="tokenize",
    config=TokenizeConfig,
    run=tokenize,
    outcome=_outcome,
    render=_render,
    proofs=lambda c: [storage.join(c.destination, n) for n in (MANIFEST_NAME, SUMMARY_NAME)],
    note=lambda extra, counts: (
        f"{extra['tokens']:,} tokens in {extra['parts']} parts" if "tokens" in extra else ""
    ),
)
