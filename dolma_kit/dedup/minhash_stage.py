"""The `dedup minhash` stage: signatures → LSH → clusters → attributes, each through the executor.

Every step is a set of shard tasks with `.done` markers, so a killed run resumes where it stopped and any step
can run on its own (`--stage`). The shingle-hash files are written only with `--verify exact` (the default;
the `-x` in the signature folder's name), for the cluster step's exact Jaccard. Intermediate files live in the work directory (default
`<attribute root>/_work/minhash/`), named by what they depend on (config fields; for LSH and clusters also
a digest of the ordered shard list), so files of different settings or inputs never mix:

    signatures/<n·p·s[·x]>/<source>/<shard>.sig.npy   uint32 [documents, num_perm], document order
    signatures/<n·p·s·x>/<source>/<shard>.shingles.npy  uint64: each document's sorted unique shingle hashes
    signatures/<n·p·s·x>/<source>/<shard>.offsets.npy   int64 [documents + 1]: document i's are [o[i], o[i+1])
    lsh/<n·p·s·b·r·w>-<digest>/band-<i>.npy       int64 [pairs, 2] candidate pairs of band i, sorted (first < second)
    lsh/<n·p·s·b·r·w>-<digest>/band-<i>.index.npy int64: the first document of every 65,536th pair
    lsh/<n·p·s·b·r·w>-<digest>-p<P>/…             with P band partitions (`lsh_partition`): keys/<shard>
                                                  records, band-<i>-part-<j>.npy pairs and their index
    clusters/<…·t>-<digest>/labels.npy            int64 [documents]: smallest index in the cluster
    clusters/<…·t>-<digest>/rounds-p<P>/…         while clustering runs in P partitions (cluster_distributed)
    clusters/<…·t>-<digest>/labels.npy.shards.json  documents per shard (what the report needs)
    attributes.json                               which clusters the attribute files were written from

After a successful `--stage all`, signatures, shingle sets and candidate pairs (with their `.done` markers)
are removed unless `keep_work`: they are 3–4× the gzipped input and nothing reads them once the labels
exist. A re-run then finds every attribute shard done and the labels in place, and runs nothing but the
report; a run with other settings recomputes what it needs. A killed run keeps everything, so a resumed one
redoes no finished shard.

A re-run whose clusters differ from those the attribute files came from stops with an error (`--force`
rewrites everything, or use another experiment), instead of leaving attributes of two runs side by side.

Clustering is one task (union-find over all verified pairs) for small inputs, or `cluster_partitions` tasks per
step (`cluster_distributed`: large-star / small-star over hash-partitioned edges) when asked or when one task's
memory would pass ~512 MB (`auto_partitions`); the labels are the same bytes either way.

Document indices are global: shards in path order, documents in file order (records rejected by `--skip-bad`
take no index, as they take no attribute line). The kept document of a cluster is the one with the smallest
index, i.e. the first by (source, shard, line).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from dolma_kit import storage
from dolma_kit.attributes import SCHEMA_NAME, attribute_tasks, write_attribute_shard
from dolma_kit.dedup.arrays import load_npy, npy_rows, save_npy
from dolma_kit.dedup.cluster_distributed import auto_partitions, cluster_components
from dolma_kit.dedup.cluster_partition import index_path
from dolma_kit.dedup.cluster_sizes import ClusterSizes, write_cluster_sizes
from dolma_kit.dedup.exact_partition import offsets_path
from dolma_kit.dedup.lsh import ShingleSets, cluster_pairs, unique_pairs, verified
from dolma_kit.dedup.lsh_partition import band_tasks, default_band_partitions, run_lsh, signatures
from dolma_kit.dedup.minhash import MinhashConfig, SignatureComputer
from dolma_kit.documents import Document, DocumentReader, dumps
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import (
    ExecutorConfig,
    RunResult,
    ShardStats,
    ShardTask,
    per_task,
    run_shards,
    summary_table,
    write_summary,
)
from dolma_kit.stages import Outcome, counts_of
from dolma_kit.stages import Stage as StageDecl

Stage = Literal["all", "signatures", "lsh", "cluster", "attributes"]
STAGES = ("all", "signatures", "lsh", "cluster", "attributes")
SUMMARY_NAME = "dedup_minhash_summary.json"
REPORT_NAME = "dedup_minhash_report.json"
REMOVED_REASON = "minhash_duplicate"
ATTRIBUTE_NAMES = ("cluster_id", "cluster_size", "duplicate")
STATE_NAME = "attributes.json"


#: what this stage marks (it removes nothing: mix drops on the attributes)
MARKS = "near-duplicate cluster members (all but one)"


@dataclass(kw_only=True)
class MinhashDedupConfig:
    """Where `dedup minhash` reads and writes; the algorithm's parameters are in `minhash`."""

    documents: list[str]
    """Document shards: paths, globs or URLs."""
    experiment: str
    """Attribute folder and the first part of every attribute name."""
    minhash: MinhashConfig = field(default_factory=MinhashConfig)
    """N-grams, permutations, bands × rows, threshold, seed."""
    destination: str | None = None
    """Attribute root; default: the `documents/` folder's sibling `attributes/<experiment>/`."""
    work_dir: str | None = None
    """Intermediate files go to `<work_dir>/minhash/`; default `<attribute root>/_work`."""
    processes: int | None = None
    """Worker processes (default: all cores)."""
    skip_bad: bool = False
    """Count bad records (and write them to rejects/) instead of stopping."""
    force: bool = False
    """Redo work already marked done."""
    stage: Stage = "all"
    """Run one step only (its inputs must exist) or all of them."""
    keep_work: bool = False
    """Keep signatures, shingle sets and candidate pairs after a successful `--stage all` (to re-cluster at
    another threshold without recomputing them); by default only the labels stay (see `clean_work`)."""
    batch_size: int = 128
    """Documents per vectorised signature batch."""
    cluster_partitions: int | None = None
    """Tasks per clustering step: 1 is one task (union-find), more spread it (large-star / small-star rounds,
    each task holding 1/N of the pairs and labels). Default: 1 while one task needs under ~512 MB (about 10
    million documents), else enough for each task to fit that."""
    band_partitions: int | None = None
    """Hash partitions of the LSH step: 1 is one task per band (~51 bytes a document each); more run a keys
    pass and then one task per (band, partition), each holding 1/N of the band (`lsh_partition`); same
    result. Default: 1 up to ~10 GB of input (~10 million documents), else enough for each to fit 512 MB."""
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Local processes (default) or a Ray cluster: every step runs on it (LSH one task per band or per band
    partition, clustering one task or `cluster_partitions` per round)."""

    def __post_init__(self) -> None:
        if not self.experiment or "__" in self.experiment or "/" in self.experiment:
            raise DolmaKitError(f"--experiment {self.experiment!r}: must be non-empty, without '/' or '__'")
        if self.stage not in STAGES:
            raise DolmaKitError(f"--stage {self.stage!r}: one of {', '.join(STAGES)}")
        if self.cluster_partitions is not None and self.cluster_partitions < 1:
            raise DolmaKitError(f"--cluster-partitions {self.cluster_partitions}: must be at least 1")
        if self.band_partitions is not None and not 1 <= self.band_partitions <= 65_536:
            raise DolmaKitError(f"--band-partitions {self.band_partitions}: must be between 1 and 65536")


@dataclass
class Plan:
    """Every task of every step, and the paths that tie the steps together."""

    attributes: list[ShardTask]
    signatures: list[ShardTask]
    keys: list[ShardTask]
    """The LSH keys pass (one task a signature shard); empty when the bands are not partitioned."""
    bands: list[ShardTask]
    cluster: ShardTask
    roots: list[str]
    work: str


def plan(config: MinhashDedupConfig) -> Plan:
    attr = attribute_tasks(config.documents, config.experiment, config.destination)
    roots = sorted({t.root for t in attr})
    work = storage.join(config.work_dir or storage.join(roots[0], "_work"), "minhash")
    listing = "\n".join(f"{t.input}\t{t.size}" for t in attr)
    digest = hashlib.sha1(listing.encode()).hexdigest()[:10]
    mh = config.minhash
    sig_root = storage.join(work, "signatures", mh.signature_key())
    sigs = [
        ShardTask(
            key=t.key + ".sig.npy",
            input=t.input,
            output=storage.join(sig_root, t.key + ".sig.npy"),
            size=t.size,
        )
        for t in attr
    ]
    parts = config.band_partitions or default_band_partitions(sum(t.size for t in attr))
    lsh_root = storage.join(work, "lsh", f"{mh.lsh_key()}-{digest}" + (f"-p{parts}" if parts > 1 else ""))
    keys, bands = band_tasks(lsh_root, sig_root, sigs, mh.b, parts)
    cluster_root = storage.join(work, "clusters", f"{mh.cluster_key()}-{digest}")
    cluster = ShardTask(key="labels.npy", input=lsh_root, output=storage.join(cluster_root, "labels.npy"))
    return Plan(attr, sigs, keys, bands, cluster, roots, work)


# --------------------------------------------------------------------------------------------- npy i/o


def shingle_paths(sig_path: str) -> tuple[str, str]:
    """The shingle-hash and offsets files stored beside a shard's signature file."""
    base = sig_path.removesuffix(".sig.npy")
    return base + ".shingles.npy", base + ".offsets.npy"


def _require(tasks: list[ShardTask], step: str) -> None:
    missing = [t.output for t in tasks if not storage.exists(t.marker)]
    if missing:
        raise DolmaKitError(f"{missing[0]}: not done yet; run `--stage {step}` (or `--stage all`) first")


# --------------------------------------------------------------------------------------------- steps


def signature_shard(task: ShardTask, stats: ShardStats, *, minhash: MinhashConfig, batch_size: int,
                    skip_bad: bool) -> None:  # fmt: skip
    """One document shard → its signatures, uint32 [documents, num_perm] in document order.

    With `verify == "exact"` also each document's sorted unique 64-bit shingle hashes (concatenated) and their
    offsets, written before the signature file, so a done signature file always has them beside it.
    """
    compute = SignatureComputer(minhash)
    exact = minhash.verify == "exact"
    reader = DocumentReader(task.input, on_bad=stats.reject_bad if skip_bad else None)
    parts: list[np.ndarray] = []
    hash_parts: list[np.ndarray] = []
    count_parts: list[np.ndarray] = []
    batch: list[str] = []

    def flush() -> None:
        sig, hashes, counts = compute.with_shingles(batch, shingles=exact)
        parts.append(sig)
        hash_parts.append(hashes)
        count_parts.append(counts)

    for doc in reader:
        batch.append(doc.text)
        stats.keep()
        if len(batch) >= batch_size:
            flush()
            batch = []
            stats.progress_bytes(reader.bytes_read)
    if batch:
        flush()
    stats.progress_bytes(reader.bytes_read)
    sig = np.concatenate(parts) if parts else np.zeros((0, minhash.num_perm), dtype=np.uint32)
    if exact:
        counts = np.concatenate(count_parts) if count_parts else np.zeros(0, dtype=np.int64)
        hashes_path, offsets_path = shingle_paths(task.output)
        save_npy(hashes_path, np.concatenate(hash_parts) if hash_parts else np.zeros(0, dtype=np.uint64))
        save_npy(offsets_path, np.concatenate(([0], np.cumsum(counts))).astype(np.int64))
    save_npy(task.output, sig)


def _shingle_sets(sig_paths: list[str]) -> ShingleSets:
    """Every shard's shingle hashes and offsets, each opened (memory-mapped) only while read."""

    def open_shard(path: str) -> tuple[np.ndarray, np.ndarray]:
        hashes_path, offsets_path = shingle_paths(path)
        return load_npy(hashes_path), load_npy(offsets_path)

    lengths = []
    for p in sig_paths:
        hashes_path, offsets_path = shingle_paths(p)
        if not storage.exists(offsets_path) or not storage.exists(hashes_path):
            raise DolmaKitError(
                f"{hashes_path}: missing; run `--stage signatures --force` with --verify exact"
            )
        lengths.append(npy_rows(offsets_path) - 1)
    return ShingleSets([functools.partial(open_shard, p) for p in sig_paths], lengths=lengths)


def cluster_shard(task: ShardTask, stats: ShardStats, *, minhash: MinhashConfig, sig_paths: list[str],
                  band_paths: list[str]) -> None:  # fmt: skip
    """All bands' candidates → verified pairs → cluster labels (and the counts beside them)."""
    sigs = signatures(sig_paths)
    n = len(sigs)
    pairs = unique_pairs([load_npy(p, mmap=False) for p in band_paths], n)
    shingles = _shingle_sets(sig_paths) if minhash.verify == "exact" else None
    labels, counts = cluster_pairs(sigs, pairs, minhash.threshold, shingles)
    storage.write_text(task.output + ".counts.json", json.dumps(counts) + "\n")
    save_npy(task.output, labels)
    removed = counts["duplicates"]
    stats.documents_in, stats.kept, stats.removed = n, n - removed, removed
    if removed:
        stats.removed_by[REMOVED_REASON] = removed


def verify_pairs(pairs: np.ndarray, *, minhash: MinhashConfig, sig_paths: list[str]) -> np.ndarray:
    """bool [E]: the pairs that join (what `cluster_pairs` verifies), for one partition of the cluster step."""
    shingles = _shingle_sets(sig_paths) if minhash.verify == "exact" else None
    return verified(signatures(sig_paths), pairs, minhash.threshold, shingles)


def attribute_shard(task: ShardTask, stats: ShardStats, *, experiment: str, labels_path: str,
                    offset: int, count: int, skip_bad: bool) -> None:  # fmt: skip
    """One document shard → its attribute lines: cluster id, cluster size, duplicate flag."""
    labels = np.asarray(load_npy(labels_path)[offset : offset + count])
    sizes = ClusterSizes(labels_path).of(labels)
    names = [f"{experiment}__minhash__{name}" for name in ATTRIBUTE_NAMES]
    i = 0

    def attributes_of(doc: Document) -> dict[str, list[list[float]]]:
        nonlocal i
        if i >= count:
            raise DolmaKitError(
                f"{task.input}: more documents than when its signatures were computed; --force"
            )
        label = int(labels[i])
        duplicate = label != offset + i
        end = len(doc.text)
        values = (float(label), float(sizes[i]), 1.0 if duplicate else 0.0)
        i += 1
        return {name: [[0, end, value]] for name, value in zip(names, values, strict=True)}

    def removal(attributes: dict[str, list[list[float]]]) -> str | None:
        return REMOVED_REASON if attributes[names[2]][0][2] else None  # non-kept cluster members

    write_attribute_shard(task, stats, attributes_of, skip_bad=skip_bad, removal=removal)
    if i != count:
        storage.remove(task.output)
        raise DolmaKitError(f"{task.input}: fewer documents than when its signatures were computed; --force")


# --------------------------------------------------------------------------------------------- driver


@dataclass
class MinhashResult:
    """What a run did: the step results it ran (by step name) and the plan they followed."""

    plan: Plan
    steps: dict[str, RunResult]
    report: dict[str, Any] | None = None


def schema(config: MinhashDedupConfig) -> dict[str, Any]:
    names = [f"{config.experiment}__minhash__{name}" for name in ATTRIBUTE_NAMES]
    return {
        "experiment": config.experiment,
        "dedup": {"minhash": {**config.minhash.to_json(), "attributes": names}},
    }


def run_minhash(config: MinhashDedupConfig, **run_options: Any) -> MinhashResult:
    """Run the chosen step(s); writes attributes, schema, summary and report beside the attributes."""
    from dolma_kit.dedup.minhash_report import build_report

    p = plan(config)
    mh = config.minhash
    if config.stage in ("all", "attributes"):
        _check_state(p, config.force)
    steps: dict[str, RunResult] = {}
    common = {
        "processes": config.processes,
        "force": config.force,
        "executor": config.executor,
        **run_options,
    }

    finished = config.stage == "all" and not config.force and _finished(p)

    def want(step: str) -> bool:
        return config.stage in ("all", step) and not (finished and step != "attributes")

    if want("signatures"):
        fn = functools.partial(
            signature_shard, minhash=mh, batch_size=config.batch_size, skip_bad=config.skip_bad
        )
        steps["signatures"] = run_shards(fn, p.signatures, title="minhash signatures", **common)
    sig_paths = [t.output for t in p.signatures]
    if want("lsh"):
        _require(p.signatures, "signatures")
        steps["lsh"] = run_lsh(p.keys, p.bands, minhash=mh, sig_paths=sig_paths, common=common)
    if want("cluster"):
        _require(p.bands, "lsh")
        band_paths = [t.output for t in p.bands]
        n = sum(npy_rows(path) for path in sig_paths)
        parts = config.cluster_partitions or auto_partitions(n, sum(npy_rows(path) for path in band_paths))
        if parts == 1:
            fn = functools.partial(cluster_shard, minhash=mh, sig_paths=sig_paths, band_paths=band_paths)
            steps["cluster"] = run_shards(
                fn, [p.cluster], title="minhash cluster", **{**common, "processes": 1}
            )
        else:
            check = functools.partial(verify_pairs, minhash=mh, sig_paths=sig_paths)
            steps["cluster"] = cluster_components(n=n, pair_paths=band_paths, output=p.cluster, partitions=parts,
                                                  verify=check, reason=REMOVED_REASON, options=common)  # fmt: skip
    if want("attributes"):
        _require([p.cluster], "cluster")
        counts = _shard_counts(p)
        write_cluster_sizes(p.cluster.output)  # one pass over the labels; the report and tasks map it
        offsets = np.concatenate(([0], np.cumsum(counts))).tolist()
        fns = {t.key: functools.partial(attribute_shard, experiment=config.experiment, labels_path=p.cluster.output,
                                        offset=offsets[i], count=counts[i], skip_bad=config.skip_bad)
               for i, t in enumerate(p.attributes)}  # fmt: skip
        result = run_shards(per_task(fns), p.attributes, title="dedup minhash", **common)
        steps["attributes"] = result
        report = build_report(config, p, counts)
        for root in p.roots:
            storage.write_text(storage.join(root, SCHEMA_NAME), dumps(schema(config)) + "\n")
            write_summary(result, storage.join(root, SUMMARY_NAME))
            storage.write_text(
                storage.join(root, REPORT_NAME), json.dumps(report, indent=2, ensure_ascii=False) + "\n"
            )
        if config.stage == "all" and not config.keep_work:
            clean_work(p)
        return MinhashResult(p, steps, report)
    return MinhashResult(p, steps)


def _shard_counts(p: Plan) -> list[int]:
    """Documents per shard: from the signature files, saved beside the labels for runs after `clean_work`."""
    path = p.cluster.output + ".shards.json"
    if all(storage.exists(t.output) for t in p.signatures):
        counts = [npy_rows(t.output) for t in p.signatures]
        storage.write_text(path, json.dumps(counts) + "\n")
        return counts
    if not storage.exists(path):
        raise DolmaKitError(f"{p.signatures[0].output}: signatures missing; run with --force")
    return [int(c) for c in json.loads(storage.read_text(path))]


def _finished(p: Plan) -> bool:
    """Every attribute shard done from these labels: the earlier steps have nothing left to give."""
    done = all(storage.exists(t.marker) and storage.exists(t.output) for t in p.attributes)
    return done and storage.exists(p.cluster.output) and storage.exists(p.cluster.output + ".shards.json")


def clean_work(p: Plan) -> None:
    """Remove the signature, shingle and candidate files of this run (markers first, so a file is never
    marked done without being there); labels, their counts and the state file stay."""
    for task in [*p.signatures, *p.keys, *p.bands]:
        storage.remove(task.marker)
    for task in p.signatures:
        for path in (*shingle_paths(task.output), task.output):
            storage.remove(path)
    for task in p.keys:
        storage.remove(offsets_path(task.output))
        storage.remove(task.output)
    for task in p.bands:
        storage.remove(index_path(task.output))
        storage.remove(task.output)


def _check_state(p: Plan, force: bool) -> None:
    """Attribute files are written from one set of clusters: refuse to mix in another's (see module doc)."""
    path = storage.join(p.work, STATE_NAME)
    want = {"clusters": p.cluster.output, "attributes": [t.output for t in p.attributes]}
    if not force and storage.exists(path):
        have = json.loads(storage.read_text(path))
        if have != want:
            raise DolmaKitError(
                f"{p.roots[0]}: its MinHash attributes come from other settings or other input shards "
                f"({have.get('clusters')}); pass --force to rewrite them, or use another --experiment"
            )
    storage.write_text(path, json.dumps(want, indent=1) + "\n")


# --------------------------------------------------------------------------------------------- stage


def _render(config: MinhashDedupConfig, result: MinhashResult) -> list[Any]:
    from dolma_kit.dedup.minhash_report import report_renderable, s_curve_table

    out: list[Any] = [s_curve_table(config.minhash)]
    for name, step in result.steps.items():
        if name == "attributes":
            out.append(summary_table(step, marks=MARKS))
        else:
            done = sum(s.status == "done" for s in step.shards)
            out.append(
                f"{step.title}: {len(step.shards)} tasks ({done} run, {len(step.shards) - done} already done), "
                f"{step.total.seconds:,.1f} s"
            )
    if result.report is not None:
        out.append(report_renderable(result.report))
    return out


def _outcome(config: MinhashDedupConfig, result: MinhashResult) -> Outcome:
    extra: dict[str, Any] = {"experiment": config.experiment}
    total = (result.report or {}).get("total") or {}
    extra.update(
        {k: total[k] for k in ("clusters", "documents_in_clusters", "candidates", "verified") if k in total}
    )
    step = result.steps.get("attributes")  # absent when one earlier step was asked for (`--stage lsh`)
    return Outcome(counts_of(step) if step else None, extra)


STAGE = StageDecl(
    name="dedup minhash",
    config=MinhashDedupConfig,
    run=run_minhash,
    outcome=_outcome,
    render=_render,
    proofs=lambda config: [t.marker for t in plan(config).attributes],
    marks=MARKS,
)
