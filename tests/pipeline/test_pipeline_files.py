"""Pipeline files: `--dry-run`, `${…}` references, overrides, and clear errors for what cannot run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dolma_kit.config import ConfigError
from dolma_kit.demo.corpus import DemoCorpusConfig, write_corpus
from dolma_kit.documents import read_documents
from dolma_kit.pipeline import load_pipeline, plan
from tests.pipeline.conftest import DEMO, SMALL, run_cli


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def error_of(args: list[str]) -> str:
    result = run_cli(args)
    assert isinstance(result.exception, ConfigError), (result.exception, result.output)
    return str(result.exception)


TWO_STAGES = """\
work_dir: {work}
stages:
  - name: corpus
    command: demo-corpus
    docs: 60
  - command: tag
    documents: ["${{work_dir}}/documents/*/*.jsonl.gz"]
    experiment: e
    taggers: [char_length]
{extra}"""


def test_unknown_command_names_file_line_and_stage(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_STAGES.format(work=tmp_path / "w", extra="  - command: dedup fuzzy\n"))
    message = error_of(["run", str(path), "--dry-run"])
    assert f"{path}:10:14: stage 'dedup_fuzzy': unknown command 'dedup fuzzy'" in message
    assert "dedup exact" in message and "dedup minhash" in message  # the known ones are listed


def test_unknown_key_names_file_line_stage_and_key(tmp_path: Path) -> None:
    text = TWO_STAGES.format(work=tmp_path / "w", extra="").replace(
        "    taggers:", "    tagers: x\n    taggers:"
    )
    message = error_of(["run", str(write(tmp_path, text)), "--dry-run"])
    assert f"{tmp_path / 'p.yaml'}:9:5: stage 'tag': tagers: unknown key 'tagers'; valid keys:" in message
    assert "taggers" in message.split("valid keys:")[1]


def test_unknown_train_key_and_bad_values_are_errors(tmp_path: Path) -> None:
    extra = "  - command: train\n    config: configs/tiny.yaml\n    trainer: {max_stepz: 3}\n"
    message = error_of(
        ["run", str(write(tmp_path, TWO_STAGES.format(work=tmp_path, extra=extra))), "--dry-run"]
    )
    assert "stage 'train'" in message and "trainer.max_stepz" in message
    bad_type = TWO_STAGES.format(work=tmp_path, extra="").replace("docs: 60", "docs: many")
    message = error_of(["run", str(write(tmp_path, bad_type)), "--dry-run"])
    assert "stage 'corpus': docs: must be an integer, got 'many'" in message
    assert "force" in error_of(["run", str(DEMO), "--dry-run", "--tag.force=true"])


def test_references_and_overrides_are_checked(tmp_path: Path) -> None:
    text = TWO_STAGES.format(work=tmp_path, extra="").replace("${work_dir}/documents", "${tagg.documents}")
    message = error_of(["run", str(write(tmp_path, text)), "--dry-run"])
    assert "${tagg.documents}: no earlier stage 'tagg' (earlier stages: corpus)" in message
    message = error_of(["run", str(DEMO), "--dry-run", "--tokenise.seed=3"])
    assert "no stage 'tokenise'" in message
    pipe = load_pipeline(str(DEMO), ["work_dir=/data/x", "train.trainer.max_steps=7"])
    stages = {s.name: s for s in pipe.stages}
    assert stages["tokenize"].config.documents == ["/data/x/mixed/documents/*/*.jsonl.gz"]
    assert stages["tokenize"].config.tokenizer == "/data/x/tokenizer.json"  # ${train-tokenizer.output}
    assert stages["train"].config.train.trainer.max_steps == 7
    assert stages["train"].config.train.data.paths == ["/data/x/tokens"]
    assert stages["dedup_minhash"].config.minhash.threshold == 0.7  # flat key → nested dataclass field
    recipe = stages["mix"].config.resolved  # ${work_dir} resolved inside the recipe file too
    assert recipe.streams[0].documents == ["/data/x/documents/web/*.jsonl.gz"]


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    work = tmp_path / "w"
    result = run_cli(["run", str(DEMO), f"--work_dir={work}", *SMALL, "--dry-run"])
    assert result.exit_code == 0, result.output
    for name in ("corpus", "dedup_minhash", "train-tokenizer", "report", "pending"):
        assert name in result.output
    assert "docs = 200" in result.output
    assert not work.exists()


def test_from_needs_earlier_stages_done(tmp_path: Path) -> None:
    pipe = load_pipeline(str(DEMO), [f"work_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="earlier stage 'corpus' is pending"):
        plan(pipe, start="mix")
    with pytest.raises(ConfigError, match="--from mixx: no such stage"):
        plan(pipe, start="mixx")
    assert all(s.force for _, s in plan(pipe, force=True))


def test_demo_corpus_is_deterministic(tmp_path: Path) -> None:
    a = write_corpus(DemoCorpusConfig(output=str(tmp_path / "a"), docs=80, shard_docs=30))
    b = write_corpus(DemoCorpusConfig(output=str(tmp_path / "b"), docs=80, shard_docs=30))
    assert a["shards"] == b["shards"] and len(a["shards"]) > 4
    for rel in a["shards"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    smaller = write_corpus(DemoCorpusConfig(output=str(tmp_path / "a"), docs=40, shard_docs=30))
    on_disk = sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a" / "documents").glob("*/*"))
    assert on_disk == sorted(smaller["shards"])  # no stale shards of the larger corpus left behind


def test_a_stage_never_started_here_ignores_foreign_shard_markers(tmp_path: Path) -> None:
    """Shard markers left by another run (no stage marker) are not trusted: the stage runs forced."""
    work = tmp_path / "w"
    path = write(tmp_path, TWO_STAGES.format(work=work, extra=""))
    assert run_cli(["run", str(path), "-p", "1"]).exit_code == 0
    for marker in (work / "_pipeline").iterdir():
        marker.unlink()
    assert run_cli(["run", str(path), "-p", "1", "--corpus.seed=7"]).exit_code == 0
    docs = [d.id for p in sorted((work / "documents").glob("*/*.jsonl.gz")) for d in read_documents(str(p))]
    ids = []
    for p in sorted((work / "attributes" / "e").glob("*/*.jsonl.gz")):
        with gzip.open(p, "rt") as fh:
            ids += [json.loads(line)["id"] for line in fh]
    assert ids == docs
    texts = [
        d.text for p in sorted((work / "documents").glob("*/*.jsonl.gz")) for d in read_documents(str(p))
    ]
    lengths = []
    for p in sorted((work / "attributes" / "e").glob("*/*.jsonl.gz")):
        with gzip.open(p, "rt") as fh:
            lengths += [json.loads(line)["attributes"]["e__char_length__length"][0][2] for line in fh]
    assert lengths == [len(t) for t in texts]  # attributes of the new documents, not the old ones
