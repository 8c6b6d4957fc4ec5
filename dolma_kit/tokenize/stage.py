"""The `tokenize` stage: document shards → OLMo's uint16 memmaps, Dolma's metadata CSVs, a provenance index.

Two steps, both resumable:

1. **Shards** (parallel, through `executor.run_shards`): each input shard is read by a thread in batches
   bounded in documents and characters (reading.py) and encoded with `tokenizers`' `encode_batch_fast` (Rust
   threads; a long text in pieces, encoding.py); windows of `shuffle_window` documents (or
   `shuffle_window_tokens` tokens) are shuffled with an RNG seeded by (seed, the shard's `<source>/<shard>`
   key) and written as chunks of at most `max_tokens_per_file` tokens under `<destination>/_work/`. A shard's `chunks.json` lists its chunks
   and is the executor's output (its `.done` marker makes a re-run skip the shard). The tokenizer is loaded
   once: by the workers' forkserver before it forks them (`_preload`), or by the driver for shards it runs.
2. **Publish** (one process, cheap): chunks are numbered in input-path order → `part-00000`, `part-00001`, …;
   their files are moved to the final names, source codes renumbered into the sorted source list, the id
   index built from every part's id hashes, and `manifest.json` written last: its presence means complete.

Part numbers depend only on the sorted inputs and the settings, so the output is byte-identical for any
`--processes` and after a kill and re-run (publish is idempotent: a moved file is not moved again).
Empty and whitespace-only documents are skipped and counted as removed (`empty`), as Dolma skips them;
unlike Dolma, the text is encoded as it is unless `strip` (Dolma encodes `text.strip()`), so decoding a
document gives back its text. The whole run holds the destination's lock (`executor.lock`), publish included:
a second run into the same destination is refused, not interleaved.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from rich.table import Table

from dolma_kit import storage
from dolma_kit.attributes import attribute_root_and_relative
from dolma_kit.documents import DOCUMENT_SUFFIXES, Document
from dolma_kit.errors import BadRecordError, DolmaKitError
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
from dolma_kit.executor.lock import destination_locks
from dolma_kit.stages import Outcome, Stage, counts_of
from dolma_kit.tokenize.encoding import BATCH_CHARS_PER_THREAD, PIECE_CHARS, Encoder, remembered_blocker
from dolma_kit.tokenize.loading import LoadedTokenizer, load_tokenizer
from dolma_kit.tokenize.parts import ChunkWriter
from dolma_kit.tokenize.publish import MANIFEST_NAME, publish
from dolma_kit.tokenize.reading import Batches
from dolma_kit.tokenize.resume import SUMMARY_NAME, check_settings, remove_stale_temps
from dolma_kit.tokenize.unique import find_repeats, load_repeats

DTYPES = {"uint16": np.uint16, "uint32": np.uint32}
THREADS_PER_PROCESS = 8
SHUFFLE_WINDOW_TOKENS = 1 << 25

__all__ = ["STAGE", "SUMMARY_NAME", "TokenizeConfig", "tokenize"]


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
    bos_id: int | None = None
    """Put this id first in every document unless its ids already start with it (Dolma's `bos_token_id`;
    a tokenizer whose post-processor adds a BOS needs none)."""
    strip: bool = False
    """Encode `text.strip()`, as `dolma tokens` does (default: the text as it is, so it decodes back exactly)."""
    encode_special_tokens: bool = True
    """Special tokens written in a text are encoded as text (True: document boundaries stay exact), or become
    their special ids (False: what `dolma tokens` does by default; Dolma's key of the same name)."""
    post_processor: bool = True
    """Run the tokenizer's post-processor (a Llama-style template adds its BOS); `dolma tokens` runs none
    (False), adding only `bos_id` and EOS. Byte-level tokenizers (GPT-2, OLMo) add nothing either way."""
    unique_ids: bool = False
    """A document whose id its source already had is a bad record: strict, an error naming both lines; with
    --skip-bad, rejected (a first pass reads every input's ids; unique.py)."""
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
    strip: bool
    encode_special_tokens: bool
    bos_id: int | None
    post_processor: bool
    unique_ids: bool


# --------------------------------------------------------------------------------------------- shards

_LOADED: dict[tuple[str, str, int | None, int | None, bool], LoadedTokenizer] = {}
"""By `_key`: the driver's own (reused when shards run in its process), the forkserver's, or loaded here."""
_PREPARED: set[tuple[str, str, int | None, int | None, bool]] = set()
PRELOAD_VARIABLE = "DOLMA_KIT_TOKENIZE_PRELOAD"
"""Set (to the run's settings as JSON) while the shard step starts its workers: the forkserver, importing this
module, loads the tokenizer then (`_preload`), and every worker forked from it has it."""


def _key(settings: _Settings) -> tuple[str, str, int | None, int | None, bool]:
    return (
        settings.tokenizer,
        settings.tokenizer_sha256,
        settings.eos_id,
        settings.pad_id,
        settings.encode_special_tokens,
    )


def _prepare(settings: _Settings, loaded: LoadedTokenizer) -> LoadedTokenizer:
    """Set the run's special-token rule and decide piecewise encoding; keep it."""
    loaded.tokenizer.encode_special_tokens = settings.encode_special_tokens
    remembered_blocker(loaded.tokenizer)
    _LOADED[_key(settings)] = loaded
    _PREPARED.add(_key(settings))
    return loaded


def _tokenizer(settings: _Settings, threads: int) -> LoadedTokenizer:
    """Load once per process (or take the forkserver's, `_preload`). RAYON_NUM_THREADS is read when Rust
    first encodes, so set it before that: N processes × all-cores thread pools would oversubscribe the machine."""
    os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
    loaded = _LOADED.get(_key(settings))
    if loaded is None:
        loaded = load_tokenizer(settings.tokenizer, eos_id=settings.eos_id, pad_id=settings.pad_id)
    return loaded if _key(settings) in _PREPARED else _prepare(settings, loaded)


def _preload() -> None:
    """In the forkserver of a tokenize run (PRELOAD_VARIABLE set): load the tokenizer and decide piecewise
    encoding once before any worker is forked, instead of in every worker (0.3 CPU-s each for GPT-2's).
    Nothing is encoded here, so no Rust thread pool exists to be forked. On any failure nothing is kept:
    the worker loads the tokenizer itself and reports what is wrong."""
    raw = os.environ.get(PRELOAD_VARIABLE)
    if not raw:
        return
    with contextlib.suppress(Exception):
        settings = _Settings(**json.loads(raw))
        if _key(settings) not in _LOADED:
            loaded = load_tokenizer(settings.tokenizer, eos_id=settings.eos_id, pad_id=settings.pad_id)
            if loaded.sha256 == settings.tokenizer_sha256:  # the file the driver checked, not a changed one
                _prepare(settings, loaded)


@contextlib.contextmanager
def _preloading(settings: _Settings) -> Iterator[None]:
    """PRELOAD_VARIABLE set while the shard step starts its workers (a forkserver started now inherits it)."""
    before = os.environ.get(PRELOAD_VARIABLE)
    os.environ[PRELOAD_VARIABLE] = json.dumps(asdict(settings))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PRELOAD_VARIABLE, None)
        else:
            os.environ[PRELOAD_VARIABLE] = before


def resolvable(path: str) -> str:
    """What `src` records: a URL as it is, a local path absolute (as `dolma tokens` records it), so provenance
    and `trace` find the file from any working directory."""
    return path if storage.is_remote(path) else os.path.abspath(storage.local_path(path))


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
    loaded = _tokenizer(settings, threads)
    encoder = Encoder(
        loaded.tokenizer,
        loaded.eos_id,
        DTYPES[settings.dtype],
        piece_chars,
        batch_chars=BATCH_CHARS_PER_THREAD * threads,
        strip=settings.strip,
        bos_id=settings.bos_id,
        post_processor=settings.post_processor,
    )
    repeats = load_repeats(task.output) if settings.unique_ids else {}
    src = resolvable(task.input)
    stem = task.key.removesuffix(".chunks.json")
    rejects_path = storage.join(storage.parent(task.root), "rejects", stem + ".jsonl.gz")
    storage.remove_stale_temps(rejects_path)
    rng = np.random.Generator(np.random.PCG64([settings.seed, zlib.crc32(stem.encode("utf-8"))]))
    writer = ChunkWriter(storage.join(task.root, stem), src, settings.max_tokens_per_file)
    window = _Window()
    try:
        with RejectsWriter(_RejectsAt(rejects_path), stats) as rejects:  # type: ignore[arg-type]
            batches = Batches(task.input, skip_bad=skip_bad, max_docs=settings.shuffle_window)
            for batch in batches:
                for exc in batch.bad:
                    rejects(exc)
                for _ in range(batch.empty):
                    stats.remove("empty")
                if repeats:
                    _reject_repeats(batch.docs, repeats, rejects)
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
    summary = {"src": src, "sources": writer.sources, "chunks": [c.to_json() for c in chunks]}
    storage.write_text(task.output, json.dumps(summary, ensure_ascii=False) + "\n")


def _reject_repeats(docs: list[Document], repeats: dict[int, str], rejects: RejectsWriter) -> None:
    """Drop (in place) the documents `--unique-ids` found repeated, each a counted reject."""
    kept = []
    for doc in docs:
        first = repeats.get(doc.line)
        if first is None:
            kept.append(doc)
            continue
        record = json.dumps({"id": doc.id, "source": doc.source}, ensure_ascii=False).encode("utf-8")
        rejects(
            BadRecordError(doc.path, doc.line, f"id {doc.id!r} repeated in source {doc.source!r} "
                           f"(--unique-ids; first at {first})", record)
        )  # fmt: skip
    docs[:] = kept


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


def tokenize(config: TokenizeConfig) -> tuple[RunResult, dict[str, Any]]:
    """Run both steps; return the shard counts and the manifest."""
    if storage.is_remote(config.destination):
        raise DolmaKitError("--destination must be a local folder (memmaps are written and moved in place)")
    if min(config.max_tokens_per_file, config.shuffle_window, config.shuffle_window_tokens) < 1:
        raise DolmaKitError("--max-tokens-per-file and the shuffle window must be positive")
    if config.piece_chars < 0:
        raise DolmaKitError(f"piece_chars {config.piece_chars}: use a positive size, or 0 for whole texts")
    loaded = load_tokenizer(config.tokenizer, eos_id=config.eos_id, pad_id=config.pad_id)
    if config.bos_id is not None and loaded.tokenizer.id_to_token(config.bos_id) is None:
        raise DolmaKitError(f"--bos-id {config.bos_id} is outside the vocabulary ({loaded.vocab_size:,} ids)")
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
        strip=config.strip,
        encode_special_tokens=config.encode_special_tokens,
        bos_id=config.bos_id,
        post_processor=config.post_processor,
        unique_ids=config.unique_ids,
    )
    tasks = _tasks(config)
    with destination_locks([config.destination]):  # the shard step locks _work/; this covers the publish
        check_settings(config.destination, asdict(settings), config.force)
        processes, threads = _split_cores(config.processes, config.threads, len(tasks))
        if config.unique_ids:
            find_repeats(
                tasks,
                skip_bad=config.skip_bad,
                processes=processes,
                force=config.force,
                executor=config.executor,
            )
        _LOADED.setdefault(_key(settings), loaded)  # shards run in this process (`-p 1`) load it no more
        fn = functools.partial(tokenize_shard, settings, threads, config.skip_bad, config.piece_chars)
        with _preloading(settings):
            result = run_shards(
                fn, tasks, title="tokenize", processes=processes, force=config.force, executor=config.executor
            )
        for stats in result.shards:
            stats.shard = stats.shard.removesuffix(".chunks.json")
        remove_stale_temps(config.destination)  # every shard is done: no writer of ours is running
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


_preload()
