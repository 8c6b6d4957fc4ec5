"""Distributed clustering (large-star / small-star over partitions) gives union-find's labels byte for byte."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dolma_kit import storage
from dolma_kit.dedup import cluster_distributed, cluster_partition
from dolma_kit.dedup.cluster_distributed import auto_partitions, cluster_components
from dolma_kit.dedup.cluster_partition import large_star, save_pairs, small_star
from dolma_kit.dedup.lsh import connected_components
from dolma_kit.documents import Document, DocumentWriter
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import ExecutorConfig, ShardTask
from tests.dedup.test_minhash import edit, random_text
from tests.dedup.test_minhash_cli import E, app, attribute_bytes, attributes, make_corpus, run, runner
from tests.test_s3 import s3_bucket  # noqa: F401  (the moto server fixture)


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def graphs() -> dict[str, tuple[int, np.ndarray]]:
    """(nodes, edges) of shapes that stress the rounds: long chains in shuffled label order, stars whose
    centre is not the smallest node, many components, self-loops, repeated and reversed edges."""
    rng = np.random.default_rng(7)
    out: dict[str, tuple[int, np.ndarray]] = {}
    perm = rng.permutation(400)
    out["chain"] = (400, np.stack([perm[:-1], perm[1:]], axis=1))
    out["ordered chain"] = (300, np.stack([np.arange(299), np.arange(1, 300)], axis=1))
    out["stars"] = (500, np.stack([np.repeat([250, 499, 3], 60), rng.integers(0, 500, 180)], axis=1))
    n = 3000
    pairs = rng.integers(0, n, (1500, 2))
    loops = np.repeat(rng.integers(0, n, 50)[:, None], 2, axis=1)
    out["many components, loops, repeats"] = (
        n,
        np.concatenate([pairs, loops, pairs[:300], pairs[:200, ::-1]]),
    )
    out["dense"] = (200, rng.integers(0, 200, (2000, 2)))
    out["no edges"] = (17, np.zeros((0, 2), dtype=np.int64))
    out["one node"] = (1, np.array([[0, 0]]))
    return out


def components(tmp: Path, n: int, edges: np.ndarray, partitions: int, *, files: int = 3, **options) -> Path:
    """Labels through `cluster_components`, the edges spread over `files` sorted pair files (as LSH bands)."""
    paths = []
    for i, chunk in enumerate(np.array_split(edges, files)):
        paths.append(str(tmp / "pairs" / f"band-{i:03d}.npy"))
        save_pairs(paths[-1], chunk)
    output = ShardTask(key="labels.npy", input=str(tmp), output=str(tmp / "clusters" / "labels.npy"))
    cluster_components(n=n, pair_paths=paths, output=output, partitions=partitions, verify=None, reason="dup",
                       options={"processes": 1, **options})  # fmt: skip
    return Path(output.output)


@pytest.mark.parametrize("name", list(graphs()))
def test_labels_equal_union_find_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(cluster_partition, "INDEX_STRIDE", 16)  # several index blocks per pair file
    n, edges = graphs()[name]
    expected = connected_components(n, edges)
    for partitions in (1, 3, 7):
        labels = components(tmp_path / f"p{partitions}", n, edges, partitions)
        assert labels.read_bytes() == npy_bytes(expected), (name, partitions)
        sizes = np.bincount(expected, minlength=n)
        counts = json.loads((labels.parent / "labels.npy.counts.json").read_text())
        assert counts["clusters"] == np.count_nonzero(sizes >= 2)
        assert counts["duplicates"] == n - np.count_nonzero(sizes)
        live = edges[edges[:, 0] != edges[:, 1]]
        assert counts["candidates"] == len({(min(a, b), max(a, b)) for a, b in live.tolist()})
        assert not list(labels.parent.glob("rounds-p*")), "rounds are removed once the labels are written"


def test_steps_on_a_chain() -> None:
    """The steps by hand on the chain 0-1-2-3, one partition: large-star links each node's larger neighbours to
    its neighbourhood's minimum; only a star around 0 is settled everywhere."""

    def both(edges: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        e = np.array(edges, dtype=np.int64)
        return np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]])

    def rows(cols: tuple[np.ndarray, np.ndarray]) -> list[list[int]]:
        return sorted(np.stack(cols, axis=1).tolist())

    edges, counts, leaves = large_star(*both([[1, 0], [2, 1], [3, 2]]))
    assert rows(edges) == [[1, 0], [2, 0], [3, 1]]
    assert counts == {"unsettled": 2, "centres": 1, "leaves": 1} and leaves.tolist() == [[3, 2]]
    assert rows(small_star(*edges)) == [[1, 0], [2, 0], [3, 1]]
    edges, counts, _ = large_star(*both(rows(edges)))
    assert rows(edges) == [[1, 0], [2, 0], [3, 0]] and counts["unsettled"] == 1
    edges, counts, leaves = large_star(*both(rows(edges)))
    assert counts == {"unsettled": 0, "centres": 1, "leaves": 3} and leaves[:, 1].tolist() == [0, 0, 0]
    assert rows(small_star(np.array([5, 5, 4]), np.array([3, 4, 1]))) == [[4, 1], [4, 3], [5, 3]]


def test_a_killed_run_resumes_at_its_last_finished_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n, edges = graphs()["chain"]
    real = cluster_distributed.star_partition
    calls: list[str] = []

    def dies_in_step_3(task: ShardTask, stats: object, **kw: object) -> None:
        calls.append(task.key)
        if task.key == "step-003/part-0001.npy" and not os.environ.get("RESUMED"):
            raise KeyboardInterrupt  # as a kill: the step's other tasks may be done, this one is not
        real(task, stats, **kw)

    monkeypatch.setattr(cluster_distributed, "star_partition", dies_in_step_3)
    with pytest.raises(KeyboardInterrupt):
        components(tmp_path, n, edges, 3)
    rounds = tmp_path / "clusters" / "rounds-p3"
    assert (rounds / "step-002" / "part-0002.npy.done").exists() and not (
        tmp_path / "clusters" / "labels.npy"
    ).exists()
    before = len(calls)
    monkeypatch.setenv("RESUMED", "1")
    labels = components(tmp_path, n, edges, 3)
    redone = calls[before:]
    assert not [k for k in redone if k < "step-003/part-0001.npy"], "finished steps are not redone"
    assert labels.read_bytes() == npy_bytes(connected_components(n, edges))
    # done: a re-run finds the labels marked done and runs nothing; --force redoes it all, same bytes
    again = len(calls)
    components(tmp_path, n, edges, 3)
    assert len(calls) == again
    components(tmp_path, n, edges, 3, force=True)
    assert len(calls) > again and labels.read_bytes() == npy_bytes(connected_components(n, edges))


def test_on_s3_with_ranged_reads(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Pair files, rounds and labels in a bucket (as on a multi-machine cluster): the same bytes, and the
    rounds' objects are removed at the end."""
    monkeypatch.setattr(cluster_partition, "INDEX_STRIDE", 4)
    n, perm = 40, np.random.default_rng(3).permutation(40)
    edges = np.stack([perm[:-1], perm[1:]], axis=1)[::2]  # 20 pairs of a shuffled chain: a few rounds
    edges = np.concatenate([edges, np.array([[perm[1], perm[5]], [perm[9], perm[30]]])])
    paths = [f"{s3_bucket}/lsh/band-{i:03d}.npy" for i in range(2)]
    for path, chunk in zip(paths, np.array_split(edges, 2), strict=True):
        save_pairs(path, chunk)
    output = ShardTask(key="labels.npy", input=s3_bucket, output=f"{s3_bucket}/clusters/labels.npy")
    cluster_components(n=n, pair_paths=paths, output=output, partitions=2, verify=None, reason="dup",
                       options={"processes": 1})  # fmt: skip
    with storage.open_raw(output.output) as fh:
        assert fh.read() == npy_bytes(connected_components(n, edges))
    bucket = s3_bucket.removeprefix("s3://")
    listed = storage.s3_client().list_objects_v2(Bucket=bucket, Prefix="clusters/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        "clusters/labels.npy",
        "clusters/labels.npy.counts.json",
        "clusters/labels.npy.done",
    ]


def test_pair_files_of_an_older_version_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pairs" / "band-000.npy"
    path.parent.mkdir()
    np.save(path, np.array([[0, 1]], dtype=np.int64))  # no index beside it: written before pairs were sorted
    output = ShardTask(key="labels.npy", input=str(tmp_path), output=str(tmp_path / "labels.npy"))
    with pytest.raises(
        DolmaKitError, match=r"band-000.npy: candidate pairs of an older version.*--stage lsh --force"
    ):
        cluster_components(n=2, pair_paths=[str(path)], output=output, partitions=2, verify=None, reason="dup",
                           options={"processes": 1})  # fmt: skip


def test_auto_partitions_keep_small_inputs_in_one_task() -> None:
    assert auto_partitions(1_000, 5_000) == 1
    assert auto_partitions(10_000_000, 2_000_000) == 1
    assert auto_partitions(1_000_000_000, 200_000_000) > 50


def chain_corpus(root: Path) -> None:
    """make_corpus plus a chain of near duplicates (each an edit of the one before; far ends below the
    threshold), in shuffled order: one cluster that needs several large-star / small-star rounds."""
    make_corpus(root)
    rng = random.Random(5)
    texts = [random_text(rng, 300)]
    for _ in range(11):
        texts.append(edit(rng, texts[-1], 3))
    docs = [Document(id=f"chain-{i}", text=t, source="web") for i, t in enumerate(texts)]
    rng.shuffle(docs)
    with DocumentWriter(str(root / "documents" / "web" / "part-0009.jsonl.gz")) as out:
        for doc in docs:
            out.write(doc)


def test_dedup_minhash_in_partitions_equals_one_task(tmp_path: Path) -> None:
    one, parts = tmp_path / "one", tmp_path / "parts"
    chain_corpus(one)
    shutil.copytree(one, parts)
    run("-d", f"{one}/documents/*/*.jsonl.gz", "-e", E, "-p", "1", "--keep-work")
    spread = ["-p", "2", "--cluster-partitions", "3", "--keep-work"]
    out = run("-d", f"{parts}/documents/*/*.jsonl.gz", "-e", E, *spread)
    assert "3 partitions" in out
    assert attribute_bytes(parts) == attribute_bytes(one)
    work = Path("attributes") / E / "_work" / "minhash"
    for name in ("labels.npy", "labels.npy.counts.json"):
        [a] = (one / work).glob(f"clusters/*/{name}")
        [b] = (parts / work).glob(f"clusters/*/{name}")
        assert a.read_bytes() == b.read_bytes(), name
    chain = {i: a for i, a in attributes(parts).items() if i.startswith("chain-")}
    assert {a["cluster_size"] for a in chain.values()} == {12.0}, "the chain is one cluster"
    assert re.search(r"3 partitions, [2-9] rounds", out), out  # …found in more than one round
    result = runner.invoke(
        app, ["minhash", "-d", f"{parts}/documents/*/*.jsonl.gz", "-e", E, "--cluster-partitions", "0"]
    )
    assert "--cluster-partitions 0: must be at least 1" in str(result.exception)


def test_band_partitions_give_the_same_candidates_and_labels(tmp_path: Path) -> None:
    """The LSH step in hash partitions (a keys pass, then one task per band and partition) finds the same
    candidate pairs, so the same labels and attributes, for any number of partitions; its files go after."""
    roots = {n: tmp_path / f"p{n}" for n in (1, 2, 8)}
    clean = tmp_path / "clean"
    chain_corpus(roots[1])
    for root in (roots[2], roots[8], clean):
        shutil.copytree(roots[1], root)
    for n, root in roots.items():
        run(
            "-d",
            f"{root}/documents/*/*.jsonl.gz",
            "-e",
            E,
            "-p",
            "2",
            "--band-partitions",
            str(n),
            "--keep-work",
        )
    work = Path("attributes") / E / "_work" / "minhash"

    def candidates(root: Path) -> np.ndarray:
        pairs = [np.load(p) for p in sorted((root / work).glob("lsh/*/band-*.npy")) if ".index" not in p.name]
        return np.unique(np.concatenate(pairs), axis=0)

    [one_lsh] = (roots[1] / work).glob("lsh/*")
    assert not (one_lsh / "keys").exists() and len(list(one_lsh.glob("band-*-part-*.npy"))) == 0
    for n in (2, 8):
        [lsh] = (roots[n] / work).glob("lsh/*")
        assert lsh.name.endswith(f"-p{n}") and (lsh / "keys").is_dir()
        assert len([p for p in lsh.glob("band-*-part-*.npy") if ".index" not in p.name]) % n == 0
        assert np.array_equal(candidates(roots[n]), candidates(roots[1]))
        assert attribute_bytes(roots[n]) == attribute_bytes(roots[1])
        [a] = (roots[1] / work).glob("clusters/*/labels.npy")
        [b] = (roots[n] / work).glob("clusters/*/labels.npy")
        assert a.read_bytes() == b.read_bytes()
    run("-d", f"{clean}/documents/*/*.jsonl.gz", "-e", E, "--band-partitions", "4")
    assert attribute_bytes(clean) == attribute_bytes(roots[1])
    assert not [p for p in (clean / work / "lsh").rglob("*") if p.is_file()], "keys and pairs removed"


@pytest.fixture
def ray_cluster() -> Iterator[ExecutorConfig]:
    """A local Ray cluster of 2 CPUs for one test, started through the executor's own `connect` (as
    tests/test_executor_ray.py does); skipped without Ray."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray's import: loopback only
    ray = pytest.importorskip("ray")
    from dolma_kit.executor import ray as executor_ray

    config = ExecutorConfig(kind="ray")
    started = not ray.is_initialized()
    executor_ray.connect(config, num_cpus=2)
    yield config
    if started:
        ray.shutdown()


@pytest.mark.ray
def test_partitions_on_ray_equal_one_local_task(
    tmp_path: Path, ray_cluster: ExecutorConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dolma_kit.dedup.minhash_stage import MinhashDedupConfig, run_minhash
    from dolma_kit.executor import ray as executor_ray

    on_ray: list[str] = []  # the keys of the tasks Ray ran
    run_ray = executor_ray.run_ray

    def counted(fn: object, todo: list[ShardTask], *args: object, **kwargs: object) -> None:
        on_ray.extend(t.key for t in todo)
        run_ray(fn, todo, *args, **kwargs)

    monkeypatch.setattr(executor_ray, "run_ray", counted)
    local, remote = tmp_path / "local", tmp_path / "ray"
    chain_corpus(local)
    shutil.copytree(local, remote)
    for root, extra in (
        (local, {"processes": 1}),
        (remote, {"executor": ray_cluster, "cluster_partitions": 3}),
    ):
        result = run_minhash(MinhashDedupConfig(documents=[f"{root}/documents/*/*.jsonl.gz"], experiment=E,
                                                keep_work=True, **extra))  # fmt: skip
    cluster = result.steps["cluster"]
    assert cluster.title.startswith("minhash cluster (3 partitions") and len(cluster.shards) > 6
    assert {"step-000/part-0002.npy", "step-003/part-0001.npy"} <= set(on_ray), "partition tasks ran on Ray"
    assert attribute_bytes(remote) == attribute_bytes(local)
    work = Path("attributes") / E / "_work" / "minhash"
    [a] = (local / work).glob("clusters/*/labels.npy")
    [b] = (remote / work).glob("clusters/*/labels.npy")
    assert a.read_bytes() == b.read_bytes()
