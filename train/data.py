"""Training instances over tokenized directories, and the one global order they are trained in.

An *instance* is `seq_len` consecutive tokens of one part file (OLMo's memmap dataset: instances never cross
part files; a part's tail shorter than seq_len is dropped). Instance ids are global and dense: the instances
of dir 0 part 0, then dir 0 part 1, …, then dir 1. Tokens are read through read-only memmaps, a batch at a time.

The order (`data_order.npy` in the run) is fixed by the config and seed alone, never by the world size:
- the held-out split is a seeded choice (PCG64([eval_seed, 1])) of `eval_fraction` of all instances, removed
  from training (`eval_instances.npy` beside the order, in the drawn order that evaluation reads);
- epoch e is OLMo's `global_indices`, PCG64(seed + e).permutation(num_instances) over all instances, with the
  held-out ids filtered out without re-permuting (so the order is OLMo's minus the held-out instances, for any
  eval_fraction); with a mixture, the resampled epoch list below is permuted with PCG64(seed + e) instead.
  Epochs are concatenated until max_steps × global_batch instances, stored as uint32 (uint64 past 2³²).
  OLMo-core counts epochs from 1 (its first epoch uses seed + 1) and trims each epoch to whole global
  batches: its order for seed S is ours for trainer.seed = S + 1, epoch by epoch up to that trim;
- step s (1-based) trains on order[(s-1)·global_batch : s·global_batch]; rank r of W takes the r-th of W
  contiguous slices. Examples seen after step s = s·global_batch, whatever W was.

Mixture weights (`mixture: {web: 0.6, wiki: 0.4}`) are realised by tokens, deterministically: each instance
belongs to the source that supplies most of its tokens (ties: the first source in `sources`); a source with
weight w gets round(w · n_train) instances per epoch, made of whole copies of its instances plus, for the
remainder, the first ones of a PCG64([seed, 2, source index]) permutation of them. Since all instances have
seq_len tokens, instance shares are token shares (up to instances that mix sources at document boundaries).
Sources absent from the mixture are not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dolma_kit.config import ConfigError


@dataclass(kw_only=True)
class DataConfig:
    """Which tokenized data, how it is cut into instances, mixed and held out."""

    paths: list[str]
    """Tokenized directories (`dolma-kit tokenize` output: manifest.json, part-<n>.npy, provenance index)."""
    seq_len: int
    """Tokens per instance; the model sees all of them and predicts the last seq_len - 1."""
    mixture: dict[str, float] | None = None
    """Optional weights by source name (normalised to sum 1), realised by tokens as described in train/data.py."""
    eval_fraction: float = 0.01
    """Fraction of instances held out for evaluation (at least one when > 0)."""
    eval_seed: int = 0
    """Seeds the held-out choice; separate from trainer.seed so runs with different seeds share a held-out set."""
    eos_id: int | None = None
    """Expected EOS id; every directory's manifest must agree (OLMo's 50279 is only right for its own tokenizer)."""
    tokenizer: str | None = None
    """Optional tokenizer.json to validate the EOS id and vocabulary size against."""

    def __post_init__(self) -> None:
        if not self.paths:
            raise ConfigError("data.paths is empty: give at least one tokenized directory")
        if self.seq_len < 2:
            raise ConfigError(f"data.seq_len must be at least 2, got {self.seq_len}")
        if not 0 <= self.eval_fraction < 1:
            raise ConfigError(f"data.eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if self.mixture is not None and (not self.mixture or any(w < 0 for w in self.mixture.values())):
            raise ConfigError("data.mixture must map source names to non-negative weights")

    def build(self) -> TokenDataset:
        return TokenDataset(self)


def open_tokenized(path: str, where: str):  # -> dolma_kit.provenance.TokenizedDir
    """Open one tokenized directory with a clear error when it is missing or not tokenize output."""
    from dolma_kit.provenance import TokenizedDir

    p = Path(path)
    if not p.is_dir():
        raise ConfigError(
            f"{where}: tokenized directory {path} does not exist (run `dolma-kit tokenize` first)"
        )
    if not (p / "manifest.json").is_file():
        raise ConfigError(f"{where}: {path} has no manifest.json, so it is not a `dolma-kit tokenize` output")
    return TokenizedDir.open(p)


class TokenDataset:
    """Instances over one or more tokenized directories; see the module docstring for the id layout."""

    def __init__(self, cfg: DataConfig) -> None:
        self.cfg = cfg
        self.seq_len = cfg.seq_len
        self.dirs = [open_tokenized(p, f"data.paths[{i}]") for i, p in enumerate(cfg.paths)]
        self._check_vocab()
        # global source codes: union of the directories' source lists, in order of first appearance
        self.sources: list[str] = []
        self.source_maps: list[np.ndarray] = []
        for d in self.dirs:
            for s in d.sources:
                if s not in self.sources:
                    self.sources.append(s)
            self.source_maps.append(np.array([self.sources.index(s) for s in d.sources], dtype=np.int16))
        # flattened parts: (dir index, part index) and the number of instances in each
        self.parts = [(i, p) for i, d in enumerate(self.dirs) for p in range(len(d.parts))]
        counts = np.array([self.dirs[i].num_tokens(p) // self.seq_len for i, p in self.parts], dtype=np.int64)
        self.inst_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.num_instances = int(self.inst_offsets[-1])
        if self.num_instances == 0:
            largest = max(self.dirs[i].num_tokens(p) for i, p in self.parts) if self.parts else 0
            raise ConfigError(
                f"data.seq_len={self.seq_len} is larger than every part file (the largest has {largest:,} tokens), "
                "so there is not one instance to train on; lower data.seq_len or tokenize more data"
            )

    def _check_vocab(self) -> None:
        eos = {d.eos_id for d in self.dirs}
        if len(eos) != 1:
            raise ConfigError(f"data.paths disagree on the EOS id ({sorted(eos)}): they need one tokenizer")
        self.eos_id = eos.pop()
        if self.cfg.eos_id is not None and self.cfg.eos_id != self.eos_id:
            raise ConfigError(
                f"data.eos_id={self.cfg.eos_id} but the tokenized data's manifest says {self.eos_id}"
            )
        self.vocab_size = max(d.vocab_size for d in self.dirs)
        for d in self.dirs:
            for p in range(len(d.parts)):
                n = d.num_tokens(p)
                if n and int(d.tokens(p)[n - 1]) != self.eos_id:
                    raise ConfigError(f"{d.path}/{d.parts[p]} does not end with EOS id {self.eos_id}")
        if self.cfg.tokenizer is not None:
            check_tokenizer_eos(self.cfg.tokenizer, self.eos_id, self.vocab_size)

    # --- where instances are -------------------------------------------------------------------------
    def locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Instance ids → (flattened part index, first token offset in that part), vectorised."""
        ids = np.asarray(ids, dtype=np.int64)
        part = np.searchsorted(self.inst_offsets, ids, side="right") - 1
        return part, (ids - self.inst_offsets[part]) * self.seq_len

    def part_name(self, flat_part: int) -> str:
        i, p = self.parts[flat_part]
        return f"{self.dirs[i].path}/{self.dirs[i].parts[p]}"

    def token_sources(self, flat_part: int, positions: np.ndarray) -> np.ndarray:
        """Global source code of each token position of one part (from the provenance index's doc starts)."""
        i, p = self.parts[flat_part]
        starts = np.asarray(self.dirs[i].document_starts(p))
        doc = np.searchsorted(starts, positions, side="right") - 1
        return self.source_maps[i][np.asarray(self.dirs[i].document_sources(p))[doc]]

    def batch(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tokens (n, seq_len) int64 and their source codes (n, seq_len) int64 for instance ids. One gather
        per part file over the rows it holds (fancy indexing the memmap reads only those tokens) and one
        vectorised document lookup, instead of a slice and a search per row."""
        part, start = self.locate(ids)
        tokens = np.empty((len(ids), self.seq_len), dtype=np.int64)
        sources = np.empty((len(ids), self.seq_len), dtype=np.int64)
        offsets = np.arange(self.seq_len, dtype=np.int64)
        for fp in np.unique(part).tolist():
            rows = np.flatnonzero(part == fp)
            i, p = self.parts[fp]
            positions = start[rows, None] + offsets  # (rows, seq_len) token offsets in the part
            tokens[rows] = self.dirs[i].tokens(p)[positions]
            sources[rows] = self.token_sources(fp, positions)
        return tokens, sources

    def instance_source_tokens(self) -> np.ndarray:
        """(num_instances, num_sources) int64: tokens each instance takes from each source. Vectorised per part
        via per-source cumulative counts at the instance boundaries; used by the mixture and by trace."""
        out = np.zeros((self.num_instances, len(self.sources)), dtype=np.int64)
        for fp, (i, p) in enumerate(self.parts):
            n_inst = int(self.inst_offsets[fp + 1] - self.inst_offsets[fp])
            if n_inst == 0:
                continue
            d = self.dirs[i]
            starts = np.asarray(d.document_starts(p), dtype=np.int64)
            src = self.source_maps[i][np.asarray(d.document_sources(p))].astype(np.int64)
            bounds = np.arange(n_inst + 1, dtype=np.int64) * self.seq_len
            out[self.inst_offsets[fp] : self.inst_offsets[fp + 1]] = np.diff(
                cumulative_by_source(starts, src, d.num_tokens(p), bounds, len(self.sources)), axis=0
            )
        return out

    # --- held-out split and order --------------------------------------------------------------------
    def eval_instances(self) -> np.ndarray:
        """The held-out instance ids (a function of the data and data.eval_seed only), in the random order they
        were drawn: evaluation reads a prefix of this list, so any prefix is a uniform sample of the split
        (a sorted list would evaluate the first parts, i.e. the first sources, only)."""
        n = self.num_instances
        k = 0 if self.cfg.eval_fraction == 0 else max(1, round(self.cfg.eval_fraction * n))
        if k >= n:
            raise ConfigError(
                f"data.eval_fraction={self.cfg.eval_fraction} leaves no training instance out of {n}; lower it"
            )
        rng = np.random.Generator(np.random.PCG64([self.cfg.eval_seed, 1]))
        return rng.choice(n, size=k, replace=False).astype(np.int64)

    def epoch_instances(self, seed: int) -> np.ndarray:
        """The training instance ids of one epoch, before permutation (mixture applied)."""
        train = np.setdiff1d(np.arange(self.num_instances, dtype=np.int64), self.eval_instances())
        if self.cfg.mixture is None:
            return train
        unknown = sorted(set(self.cfg.mixture) - set(self.sources))
        if unknown:
            raise ConfigError(
                f"data.mixture names unknown source {unknown[0]!r}; the data has {self.sources}"
            )
        total = sum(self.cfg.mixture.values())
        if total <= 0:
            raise ConfigError("data.mixture weights sum to 0")
        owner = np.argmax(self.instance_source_tokens()[train], axis=1)  # argmax: first source on ties
        chosen = []
        for code, name in enumerate(self.sources):
            pool = train[owner == code]
            target = round(self.cfg.mixture.get(name, 0.0) / total * len(train))
            if target == 0:
                continue
            if len(pool) == 0:
                raise ConfigError(
                    f"data.mixture gives weight to {name!r} but no training instance is mostly {name}"
                )
            rng = np.random.Generator(np.random.PCG64([seed, 2, code]))
            reps, rest = divmod(target, len(pool))
            chosen += [np.tile(pool, reps), pool[rng.permutation(len(pool))[:rest]]]
        return np.sort(np.concatenate(chosen))

    def data_order(self, seed: int, num_instances: int) -> np.ndarray:
        """The first `num_instances` entries of the global order, epoch after epoch.

        Without a mixture, epoch e is OLMo's `global_indices`, PCG64(seed + e).permutation(num_instances) over
        *all* instances, with the held-out ids filtered out in place (never re-permuted): the training order
        is OLMo's order minus the held-out instances, whatever eval_fraction is. With a mixture, the epoch list
        (repeats and drops) is permuted with PCG64(seed + e): OLMo has no equivalent to match."""
        if self.cfg.mixture is None:
            held_out = np.zeros(self.num_instances, dtype=bool)
            held_out[self.eval_instances()] = True
            if held_out.all():
                raise ConfigError("every instance is held out; lower data.eval_fraction")

            def epoch_order(epoch: int) -> np.ndarray:
                perm = np.random.Generator(np.random.PCG64(seed + epoch)).permutation(self.num_instances)
                return perm[~held_out[perm]]
        else:
            epoch_ids = self.epoch_instances(seed)

            def epoch_order(epoch: int) -> np.ndarray:
                perm = np.random.Generator(np.random.PCG64(seed + epoch)).permutation(len(epoch_ids))
                return epoch_ids[perm]

        chunks, have, epoch = [], 0, 0
        while have < num_instances:
            chunks.append(epoch_order(epoch))
            have += len(chunks[-1])
            epoch += 1
        dtype = np.uint32 if self.num_instances < 2**32 else np.uint64
        return np.concatenate(chunks)[:num_instances].astype(dtype)


def cumulative_by_source(
    starts: np.ndarray, src: np.ndarray, n_tokens: int, positions: np.ndarray, n_sources: int
) -> np.ndarray:
    """(len(positions), n_sources): tokens of each source strictly before each position, for documents that
    tile [0, n_tokens) starting at `starts` with source codes `src`."""
    lengths = np.diff(np.append(starts, n_tokens))
    per_doc = np.zeros((len(starts), n_sources), dtype=np.int64)
    per_doc[np.arange(len(starts)), src] = lengths
    before = np.vstack([np.zeros((1, n_sources), dtype=np.int64), np.cumsum(per_doc, axis=0)[:-1]])
    doc = np.clip(np.searchsorted(starts, positions, side="right") - 1, 0, None)
    out = before[doc].copy()
    out[np.arange(len(positions)), src[doc]] += positions - starts[doc]
    return out


def check_tokenizer_eos(path: str, eos_id: int, vocab_size: int) -> None:
    """The EOS id must be a special end-of-text token of the tokenizer that made the data: OLMo's configs
    say 50279, which is `<|endoftext|>` only in its own dolma-v1_5 tokenizer file."""
    from tokenizers import Tokenizer

    if not Path(path).is_file():
        raise ConfigError(f"data.tokenizer: {path} does not exist")
    tok = Tokenizer.from_file(path)
    added = tok.get_added_tokens_decoder()
    if eos_id not in added or not added[eos_id].special:
        raise ConfigError(
            f"EOS id {eos_id} is {tok.id_to_token(eos_id)!r} in {path}, not a special token: the data was "
            "tokenized with another tokenizer, or data.eos_id is wrong"
        )
    if tok.get_vocab_size() > vocab_size:
        raise ConfigError(
            f"{path} has {tok.get_vocab_size():,} ids but the data manifest says {vocab_size:,}"
        )


def check_saved(path: Path, array: np.ndarray) -> None:
    """If `path` exists it must hold `array`: a resumed run can never train on another order than the one it
    started with."""
    if path.exists():
        old = np.load(path, mmap_mode="r")
        if old.shape != array.shape or old.dtype != array.dtype or not np.array_equal(old, array):
            raise ConfigError(
                f"{path} differs from the order this config and seed give: the data or config changed since the "
                "run started; use a new trainer.run_dir"
            )


def save_array(path: Path, array: np.ndarray) -> None:
    """Save `array` as .npy atomically (temp name, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    tmp.rename(path)


def data_tokenizer(data: TokenDataset):  # -> dolma_kit.tokenize.loading.LoadedTokenizer
    """The tokenizer that made the data: `data.tokenizer` when set, else the spec recorded in the first
    directory's manifest. Its sha256 must equal the manifest's, so downstream evaluation, export and
    memorization never decode with another tokenizer than the one the model was trained on."""
    from dolma_kit.tokenize.loading import load_tokenizer

    recorded = data.dirs[0].manifest.get("tokenizer") or {}
    spec = data.cfg.tokenizer or recorded.get("spec")
    if spec is None:
        raise ConfigError(f"{data.dirs[0].path}/manifest.json names no tokenizer; set data.tokenizer")
    if not Path(spec).is_file() and spec != "gpt2":
        raise ConfigError(
            f"the tokenizer that made the data ({spec}, from the manifest) is not found from here; "
            "set data.tokenizer (or pass --tokenizer) to its tokenizer.json"
        )
    loaded = load_tokenizer(spec, eos_id=data.eos_id)
    if recorded.get("sha256") and loaded.sha256 != recorded["sha256"]:
        raise ConfigError(
            f"{spec} is not the tokenizer that made {data.dirs[0].path} (sha256 differs from the manifest's)"
        )
    return loaded
