"""The Ray executor: the same stages on a local Ray cluster give the same bytes as the local executor.

One local cluster (2 CPUs, no dashboard, every address on loopback) is started for the whole module: Ray's
start-up is the expensive part. Each test runs a stage both ways and compares the files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

# Before Ray's first import: a single-machine cluster whose every address is on loopback (see executor_ray).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")

from dolma_kit import storage  # noqa: E402
from dolma_kit.dedup.exact import ExactDedupConfig, dedup_exact  # noqa: E402
from dolma_kit.dedup.minhash import MinhashConfig  # noqa: E402
from dolma_kit.dedup.minhash_stage import MinhashDedupConfig, run_minhash  # noqa: E402
from dolma_kit.errors import BadRecordError, DolmaKitError  # noqa: E402
from dolma_kit.executor import ExecutorConfig  # noqa: E402
from dolma_kit.taggers.stage import TagConfig, tag  # noqa: E402
from tests.conftest import FIXTURES, write_corpus, write_lines  # noqa: E402
from tests.dedup.test_minhash_cli import make_corpus as make_minhash_corpus  # noqa: E402
from tests.test_s3 import s3_bucket  # noqa: E402, F401  (the moto server fixture)

pytestmark = pytest.mark.ray

RAY = ExecutorConfig(kind="ray")
TAGGERS = ["char_length", "paragraph_count", "pii", "gopher", "c4"]
FAILING = str(FIXTURES / "failing_taggers.py")


@pytest.fixture(scope="module", autouse=True)
def ray_cluster() -> Iterator[None]:
    """A local cluster of 2 CPUs, started once through the executor's own `connect`."""
    from dolma_kit.executor import ray as executor_ray

    executor_ray.connect(RAY, num_cpus=2)
    yield
    ray.shutdown()


def files(root: Path) -> dict[str, bytes]:
    """Every output file by relative path; markers and summaries compared apart (they hold timings)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith((".done", "_summary.json"))
    }


def counts(root: Path) -> dict[str, dict]:
    """The `.done` markers' counts, timings left out."""
    out = {}
    for p in sorted(root.rglob("*.done")):
        data = json.loads(p.read_text())
        data.pop("seconds")
        out[str(p.relative_to(root))] = data
    return out


def two_copies(tmp_path: Path, make: Callable[[Path], object]) -> tuple[Path, Path]:
    local, remote = tmp_path / "local", tmp_path / "ray"
    make(local)
    shutil.copytree(local, remote)
    return local, remote


def test_tag_on_ray_is_byte_identical_and_resumes(tmp_path: Path) -> None:
    local, remote = two_copies(tmp_path, lambda root: write_corpus(root, ".jsonl.gz"))

    def config(root: Path, **kw) -> TagConfig:
        return TagConfig(documents=[f"{root}/documents/*/*.jsonl.gz"], experiment="q", taggers=TAGGERS, **kw)

    here = tag(config(local, processes=2))
    there = tag(config(remote, executor=RAY))
    assert [s.to_json() | {"seconds": 0} for s in there.shards] == [
        s.to_json() | {"seconds": 0} for s in here.shards
    ]
    assert there.total.documents_in == 12
    assert files(remote / "attributes") == files(local / "attributes")
    assert counts(remote / "attributes") == counts(local / "attributes")
    # a killed driver leaves markers for the shards it finished: a re-run on Ray redoes only the rest
    redo = remote / "attributes" / "q" / "web" / "part-0000.jsonl.gz"
    redo.unlink()
    Path(f"{redo}.done").unlink()
    shown = io.StringIO()  # a terminal: the bar is drawn, fed by the progress actor while shards run
    again = tag(config(remote, executor=RAY), console=Console(file=shown, force_terminal=True, width=200))
    assert "5 docs" in shown.getvalue() and "1/1 shards" in shown.getvalue()
    assert {s.shard: s.status for s in again.shards} == {
        "forum/part-0000.jsonl.gz": "skipped",
        "web/part-0000.jsonl.gz": "done",
        "wiki/part-0000.jsonl.gz": "skipped",
    }
    assert files(remote / "attributes") == files(local / "attributes")


def test_dedup_exact_and_minhash_on_ray_are_byte_identical(tmp_path: Path) -> None:
    make_minhash_corpus(tmp_path)
    documents = [f"{tmp_path}/documents/*/*.jsonl.gz"]
    produced = {}
    for executor in (ExecutorConfig(), RAY):  # the same folders (plans record paths), redone with force
        dedup_exact(ExactDedupConfig(documents=documents, experiment="ex", key="paragraphs", partitions=4,
                                     processes=2, force=True, keep_work=True, executor=executor))  # fmt: skip
        result = run_minhash(MinhashDedupConfig(documents=documents, experiment="mh", processes=2, force=True, keep_work=True,
                                                minhash=MinhashConfig(threshold=0.7), executor=executor))  # fmt: skip
        assert {s.status for step in result.steps.values() for s in step.shards} == {"done"}
        produced[executor.kind] = (files(tmp_path / "attributes"), counts(tmp_path / "attributes"))
    # attributes, plus every intermediate file: hash partitions, resolved rows, signatures, shingle hashes,
    # each LSH band's candidate pairs, the cluster labels
    names = produced["ray"][0]
    assert any("/lsh/" in k for k in names) and any("/resolve/" in k for k in names)
    assert produced["ray"] == produced["local"]
    summary = json.loads((tmp_path / "attributes" / "mh" / "dedup_minhash_summary.json").read_text())
    assert summary["total"]["removed"] > 0


def test_mix_on_ray_is_byte_identical(tmp_path: Path) -> None:
    from dolma_kit.mix import stage as mix
    from dolma_kit.mix.recipe import load_recipe
    from tests.mix.helpers import output_bytes, write_recipe
    from tests.mix.test_mix import make_corpus, recipe_text

    make_corpus(tmp_path)
    results = {}
    for name, executor in (("local", ExecutorConfig()), ("ray", RAY)):
        recipe = load_recipe(str(write_recipe(tmp_path / f"{name}.yaml", recipe_text(tmp_path, name))))
        results[name] = mix.mix(recipe, processes=2, executor=executor)
    for name in results:  # the output folder is the one difference the summaries may show
        assert results[name].streams[0].pop("output") == str(tmp_path / name)
    assert results["ray"].streams == results["local"].streams
    assert output_bytes(tmp_path / "ray") == output_bytes(tmp_path / "local")
    assert results["ray"].streams[0]["documents_out"] > 0


def test_a_task_that_fails_once_is_retried(tmp_path: Path) -> None:
    local, remote = two_copies(tmp_path, lambda root: write_corpus(root, ".jsonl.gz"))
    state = tmp_path / "state"
    state.mkdir()

    def config(root: Path, **kw) -> TagConfig:
        return TagConfig(documents=[f"{root}/documents/*/*.jsonl.gz"], experiment="f",
                         taggers=["char_length", f"fails_once_v1:state={state}"],
                         tagger_modules=[FAILING], **kw)  # fmt: skip

    (state / "failed").touch()  # the local reference run does not fail
    tag(config(local, processes=1))
    (state / "failed").unlink()
    result = tag(config(remote, executor=RAY))
    assert (state / "failed").exists(), "the tagger must have failed once"
    assert {s.status for s in result.shards} == {"done"}
    assert files(remote / "attributes") == files(local / "attributes")
    # without retries the same failure stops the run: the retry is what made it succeed
    (state / "failed").unlink()
    with pytest.raises(RuntimeError, match="simulated transient failure"):
        tag(config(remote, executor=ExecutorConfig(kind="ray", max_retries=0), force=True))


DYING = str(Path(__file__).parent / "robustness" / "dying_taggers.py")


def test_a_worker_killed_once_is_retried_and_the_output_is_identical(tmp_path: Path) -> None:
    """SIGKILL in the middle of a shard (the OOM killer, a preempted machine): Ray reruns the task elsewhere."""
    local, remote = two_copies(tmp_path, lambda root: write_corpus(root, ".jsonl.gz"))
    state = tmp_path / "state"
    state.mkdir()

    def config(root: Path, **kw) -> TagConfig:
        return TagConfig(documents=[f"{root}/documents/*/*.jsonl.gz"], experiment="k",
                         taggers=["char_length", f"dies_v1:state={state}"], tagger_modules=[DYING], **kw)  # fmt: skip

    (state / "died").touch()  # the local reference run does not die
    tag(config(local, processes=1))
    (state / "died").unlink()
    result = tag(config(remote, executor=ExecutorConfig(kind="ray", max_retries=1)))
    assert len((state / "deaths").read_text().splitlines()) == 1, "one worker must have died"
    assert {s.status for s in result.shards} == {"done"} and result.total.documents_in == 12
    assert files(remote / "attributes") == files(local / "attributes")
    assert counts(remote / "attributes") == counts(local / "attributes")


def test_a_shard_failing_every_attempt_names_the_shard(tmp_path: Path) -> None:
    """A worker that dies on every attempt is one line naming the shard; the other shards are kept."""
    write_corpus(tmp_path, ".jsonl.gz")
    state = tmp_path / "state"
    state.mkdir()
    documents = [f"{tmp_path}/documents/*/*.jsonl.gz"]
    with pytest.raises(DolmaKitError) as info:
        tag(TagConfig(documents=documents, experiment="d", taggers=[f"dies_v1:state={state},always=true,shard=wiki-"],
                      tagger_modules=[DYING], executor=ExecutorConfig(kind="ray", max_retries=1)))  # fmt: skip
    message = str(info.value)
    shard = tmp_path / "documents" / "wiki" / "part-0000.jsonl.gz"
    assert message.startswith(
        f"{shard}: the Ray worker running shard wiki/part-0000.jsonl.gz died 2 times"
    ), message
    assert "\n" not in message and message.endswith("finished shards are kept: re-run to resume")
    assert (state / "deaths").read_text().splitlines() == ["wiki-0001", "wiki-0001"], (
        "two attempts, then stop"
    )
    assert not (tmp_path / "attributes" / "d" / "wiki" / "part-0000.jsonl.gz").exists()

    # an exception of the stage's own code, every time: Ray's error (with the worker's traceback), the shard named
    (state / "failed").touch()
    fails = f"fails_once_v1:state={state}"
    (state / "failed").unlink()
    with pytest.raises(RuntimeError, match="simulated transient failure") as raised:
        tag(TagConfig(documents=documents, experiment="r", taggers=[fails], tagger_modules=[FAILING],
                      executor=ExecutorConfig(kind="ray", max_retries=0)))  # fmt: skip
    assert any("failed on Ray 1 times" in note and ".jsonl.gz" in note for note in raised.value.__notes__)


def test_user_errors_are_not_retried_and_read_as_locally(tmp_path: Path) -> None:
    docs = tmp_path / "documents" / "web"
    write_lines(
        docs / "part-0000.jsonl", [{"id": "a", "text": "fine"}, b"{not json", {"id": "c", "text": "x"}]
    )
    messages = {}
    for executor in (ExecutorConfig(), RAY):
        with pytest.raises(BadRecordError) as info:
            tag(TagConfig(documents=[str(docs / "*.jsonl")], experiment="b", taggers=["char_length"],
                          processes=1, executor=executor))  # fmt: skip
        messages[executor.kind] = (str(info.value), info.value.path, info.value.line)
    assert messages["ray"] == messages["local"]
    assert messages["ray"][2] == 2

    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(DolmaKitError, match="document a cannot be tagged") as info:
        tag(TagConfig(documents=[str(docs / "*.jsonl")], experiment="u", skip_bad=True,
                      taggers=[f"user_error_v1:state={state}"], tagger_modules=[FAILING], executor=RAY))  # fmt: skip
    assert type(info.value) is DolmaKitError
    assert (state / "calls").read_text() == "a\n", "a DolmaKitError must not be retried"


def test_tag_on_s3_through_ray(s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    local = write_corpus(tmp_path / "local", ".jsonl.zst")
    client = storage.s3_client()
    bucket = s3_bucket.removeprefix("s3://")
    for path in sorted(local.glob("documents/*/*.jsonl.zst")):
        client.upload_file(str(path), bucket, str(path.relative_to(local)))
    for documents, executor in ((f"{local}/documents/*/*.jsonl.zst", ExecutorConfig()),
                                (f"{s3_bucket}/documents/*/*.jsonl.zst", RAY)):  # fmt: skip
        result = tag(TagConfig(documents=[documents], experiment="s", taggers=TAGGERS, processes=1,
                               executor=executor))  # fmt: skip
        assert result.total.documents_in == 12
    keys = sorted(
        obj["Key"] for obj in client.list_objects_v2(Bucket=bucket, Prefix="attributes/")["Contents"]
    )
    attribute_keys = [k for k in keys if k.endswith(".jsonl.zst")]
    assert len(attribute_keys) == 3 and all(f"{k}.done" in keys for k in attribute_keys)
    for key in attribute_keys:
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == (local / key).read_bytes()


def test_tokenize_on_ray_is_byte_identical(tokenized_demo: Path, tmp_path: Path) -> None:
    from dolma_kit.tokenize.stage import TokenizeConfig, tokenize
    from tests.conftest import CORPUS, DEMO_TOKENIZER

    out = tmp_path / "tokens"
    result, manifest = tokenize(TokenizeConfig(documents=[str(CORPUS / "documents" / "*" / "*.jsonl")],
                                               destination=str(out), tokenizer=str(DEMO_TOKENIZER), processes=2,
                                               max_tokens_per_file=600, executor=RAY))  # fmt: skip
    assert result.total.documents_in == 12 and len(manifest["parts"]) > 1
    ours, reference = files(out), files(tokenized_demo)
    plan = "_work/publish_plan.json"  # records the destination's absolute paths
    assert ours.pop(plan).replace(str(out).encode(), b"") == reference.pop(plan).replace(
        str(tokenized_demo).encode(), b""
    )
    assert ours == reference


def test_cli_executor_options(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dolma_kit.cli import app

    write_corpus(tmp_path, ".jsonl.gz")
    runner = CliRunner()
    documents = f"{tmp_path}/documents/*/*.jsonl.gz"
    result = runner.invoke(
        app, ["dedup", "exact", "-d", documents, "-e", "x", "--key", "text", "--executor", "ray"]
    )
    assert result.exit_code == 0, result.output
    assert "done" in result.output and len(list(tmp_path.glob("attributes/x/*/*.jsonl.gz.done"))) == 3
    result = runner.invoke(
        app, ["tag", "-d", documents, "-e", "t", "-t", "char_length", "--executor", "spark"]
    )
    assert isinstance(result.exception, DolmaKitError)  # `main` prints it as `error: …`
    assert str(result.exception) == "dolma-kit tag: --executor: must be one of local, ray, got 'spark'"


def _data_pipeline(tmp_path: Path) -> Path:
    """pipelines/demo.yaml without its train and report stages: every stage that has an executor, in seconds."""
    import yaml

    from tests.pipeline.conftest import DEMO

    data = yaml.safe_load(DEMO.read_text())
    data["stages"] = [s for s in data["stages"] if s["command"] not in ("train", "stats")]
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_pipeline_executor_ray_is_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dolma-kit run --executor ray`: every data stage on Ray writes what the local run writes, and a stage's
    own `executor: local` still wins over the run's default."""
    from typer.testing import CliRunner

    from dolma_kit.cli import app
    from dolma_kit.executor import ray as executor_ray
    from dolma_kit.pipeline import load_pipeline
    from tests.pipeline.conftest import ROOT

    ray_runs: list[str] = []
    run_ray = executor_ray.run_ray

    def counted(*args: object, **kwargs: object) -> object:
        ray_runs.append("run")
        return run_ray(*args, **kwargs)

    monkeypatch.setattr(executor_ray, "run_ray", counted)
    monkeypatch.chdir(ROOT)  # the pipeline names mixers/ relative to the repository root
    pipeline = _data_pipeline(tmp_path)
    work, outputs = tmp_path / "work", {}
    for kind in ("local", "ray"):  # one work dir for both: work files record absolute paths (and hash them)
        args = [
            "run",
            str(pipeline),
            f"--work_dir={work}",
            "--corpus.docs=200",
            "-p",
            "2",
            "--executor",
            kind,
        ]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        outputs[kind] = files(work)
        shutil.rmtree(work)
        # tag, 2 × dedup exact, minhash, decontaminate, mix, tokenize: each ran its shards on Ray (some in
        # more than one pass)
        assert (len(ray_runs) >= 7) if kind == "ray" else not ray_runs, (kind, ray_runs)
    local, remote = outputs["local"], outputs["ray"]
    assert any(k.startswith("attributes/dedup_minhash/") for k in local) and "tokens/manifest.json" in local
    assert remote == local

    pipe = load_pipeline(str(pipeline), ["--tag.executor=local"], executor="ray", ray_address="auto")
    kinds = {s.name: s.options.get("executor") for s in pipe.stages}
    assert kinds["tag"] == {"kind": "local", "ray_address": None, "max_retries": 3}
    assert kinds["dedup_text"] == {"kind": "ray", "ray_address": "auto", "max_retries": 3}
    assert kinds["mix"] == {"kind": "ray", "ray_address": "auto", "max_retries": 3}
    assert kinds["corpus"] is None
