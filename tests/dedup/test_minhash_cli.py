"""`dedup minhash` end to end through its Typer command: planted duplicates, determinism, steps, resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dolma_kit.cli.dedup_minhash import minhash
from dolma_kit.dedup.minhash import MinhashConfig
from dolma_kit.documents import Document, DocumentWriter
from tests.dedup.test_minhash import below_threshold_pair, edit, random_text
from tests.test_tag_cli import read_attributes

runner = CliRunner()
app = typer.Typer()
app.command("minhash")(minhash)
app.command("unused")(lambda: None)  # two commands: Typer keeps the `minhash` name on the command line

E = "mh"


def make_corpus(root: Path, *, shards: int = 3, unique_per_shard: int = 30) -> dict[str, list[str]]:
    """Documents under root/documents/<source>/part-<i>.jsonl.gz with planted near duplicates (across shards
    and sources), hard negatives sharing a long header and footer, and an empty document.

    Returns the expected groups: doc ids that must share one cluster (the first listed is kept).
    """
    rng = random.Random(11)
    header, footer = random_text(rng, 200), random_text(rng, 200)
    layout: dict[str, list[Document]] = {}
    groups: dict[str, list[str]] = {}
    bases = [random_text(rng, 300) for _ in range(6)]
    for s in range(shards):
        source = "web" if s < 2 else "news"
        docs = layout.setdefault(f"{source}/part-{s:04d}.jsonl.gz", [])
        for i in range(unique_per_shard):
            docs.append(Document(id=f"{s}-u{i}", text=random_text(rng, 250), source=source))
        for i in range(4):
            docs.append(
                Document(
                    id=f"{s}-hard{i}", text=f"{header}\n{random_text(rng, 250)}\n{footer}", source=source
                )
            )
        for b, base in enumerate(bases):
            if (b + s) % 3 != 0 or b >= 4:
                doc_id = f"{s}-dup{b}"
                docs.append(Document(id=doc_id, text=edit(rng, base, 1 + b % 3), source=source))
                groups.setdefault(f"dup{b}", []).append(doc_id)
        docs.append(Document(id=f"{s}-empty", text="", source=source))
        rng.shuffle(docs)
    for rel, docs in layout.items():
        with DocumentWriter(str(root / "documents" / rel)) as out:
            for doc in docs:
                out.write(doc)
    return {k: v for k, v in groups.items() if len(v) >= 2}


def run(*args: str) -> str:
    result = runner.invoke(app, ["minhash", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def attributes(root: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((root / "attributes" / E).glob("*/*.jsonl.gz")):
        for row in read_attributes(path):
            out[row["id"]] = {k.split("__")[-1]: v[0][2] for k, v in row["attributes"].items()}
    return out


def attribute_bytes(root: Path) -> dict[str, bytes]:
    base = root / "attributes" / E
    files = [*sorted(base.glob("*/*.jsonl.gz")), base / "dedup_minhash_report.json"]
    return {str(p.relative_to(base)): p.read_bytes() for p in files}


def test_planted_duplicates_cluster_and_hard_negatives_stay(tmp_path: Path) -> None:
    groups = make_corpus(tmp_path)
    output = run("-d", f"{tmp_path}/documents/*/*.jsonl.gz", "-e", E, "-p", "1")
    assert "P(candidate)" in output and "12 bands × 9 rows" in output  # the S-curve of the derived banding
    attrs = attributes(tmp_path)
    for ids in groups.values():
        kept = sorted(ids, key=lambda i: {"2": 0, "0": 1, "1": 2}[i[0]])[0]  # path order: news/ before web/
        cluster = {attrs[i]["cluster_id"] for i in ids}
        assert len(cluster) == 1
        assert [attrs[i]["cluster_size"] for i in ids] == [float(len(ids))] * len(ids)
        assert [attrs[i]["duplicate"] for i in ids] == [0.0 if i == kept else 1.0 for i in ids]
    grouped = {i for ids in groups.values() for i in ids}
    for doc_id, a in attrs.items():
        if doc_id not in grouped:  # unique pages, boilerplate-sharing pages, empty pages: alone and kept
            assert (a["cluster_size"], a["duplicate"]) == (1.0, 0.0), doc_id
    removed = sum(len(ids) - 1 for ids in groups.values())
    base = tmp_path / "attributes" / E
    summary = json.loads((base / "dedup_minhash_summary.json").read_text())["total"]
    assert summary["documents_in"] == len(attrs) == summary["kept"] + summary["removed"]
    assert summary["removed_by"] == {"minhash_duplicate": removed}
    report = json.loads((base / "dedup_minhash_report.json").read_text())
    assert report["total"]["removed"] == removed and report["total"]["clusters"] == len(groups)
    assert report["total"]["rejected"] >= 0 and set(report["per_source"]) == {"news", "web"}
    assert sum(int(k) * v for k, v in report["cluster_size_histogram"].items()) == len(grouped)
    example = report["examples"][0]
    assert example["size"] == len(example["members"]) and len(example["members"][0]["text"]) <= 200
    assert sum(m["kept"] for m in example["members"]) == 1
    schema = json.loads((base / "attributes_schema.json").read_text())
    assert f"{E}__minhash__duplicate" in schema["dedup"]["minhash"]["attributes"]


def test_same_attributes_with_any_process_count_and_step_by_step(tmp_path: Path) -> None:
    one, two, steps = tmp_path / "one", tmp_path / "two", tmp_path / "steps"
    for root in (one, two, steps):
        make_corpus(root)
    run("-d", f"{one}/documents/*/*.jsonl.gz", "-e", E, "-p", "1")
    run("-d", f"{two}/documents/*/*.jsonl.gz", "-e", E, "-p", "2")
    glob = f"{steps}/documents/*/*.jsonl.gz"
    result = runner.invoke(app, ["minhash", "-d", glob, "-e", E, "--stage", "lsh"])
    assert result.exit_code != 0 and "--stage signatures" in str(result.exception)
    for stage in ("signatures", "lsh", "cluster", "attributes"):
        run("-d", glob, "-e", E, "-p", "1", "--stage", stage)
    assert attribute_bytes(one) == attribute_bytes(two) == attribute_bytes(steps)
    # other settings would leave attributes of two runs side by side: refused without --force
    new = ["-d", glob, "-e", E, "-p", "1", "--threshold", "0.95", "--bands", "12", "--rows", "9"]
    result = runner.invoke(app, ["minhash", *new])
    assert result.exit_code != 0 and "--force" in str(result.exception)
    out = run(*new, "--stage", "cluster")  # same bands × rows: reuses the candidates, clusters anew
    assert "1 tasks (1 run" in out


def test_explicit_bands_and_rows(tmp_path: Path) -> None:
    make_corpus(tmp_path, shards=1)
    out = run("-d", f"{tmp_path}/documents/*/*.jsonl.gz", "-e", E, "--bands", "14", "--rows", "8", "-p", "1")
    assert "14 bands × 8 rows" in out
    result = runner.invoke(app, ["minhash", "-d", f"{tmp_path}/documents/*/*", "-e", E, "--bands", "20"])
    assert "together" in str(result.exception)


def test_verify_exact_or_estimate(tmp_path: Path) -> None:
    """A pair just below the threshold whose estimate passes: apart by default, joined with --verify estimate."""
    groups = make_corpus(tmp_path, shards=2)
    base, other = below_threshold_pair(MinhashConfig(threshold=0.7))
    with DocumentWriter(str(tmp_path / "documents" / "web" / "part-0009.jsonl.gz")) as out:
        out.write(Document(id="near-a", text=base, source="web"))
        out.write(Document(id="near-b", text=other, source="web"))
    glob = f"{tmp_path}/documents/*/*.jsonl.gz"
    out = run("-d", glob, "-e", E, "-p", "1", "--keep-work")
    assert "exact Jaccard" in out
    attrs = attributes(tmp_path)
    assert attrs["near-b"]["duplicate"] == 0.0 and attrs["near-a"]["cluster_size"] == 1.0
    for ids in groups.values():  # planted duplicates (J ≥ threshold) still join
        assert len({attrs[i]["cluster_id"] for i in ids}) == 1
    work = tmp_path / "attributes" / E / "_work" / "minhash" / "signatures"
    exact_dir = work / f"{MinhashConfig().signature_key()}"
    assert len(list(exact_dir.glob("*/*.shingles.npy"))) == len(list(exact_dir.glob("*/*.offsets.npy"))) == 3
    schema = json.loads((tmp_path / "attributes" / E / "attributes_schema.json").read_text())
    assert schema["dedup"]["minhash"]["verify"] == "exact"

    # another --verify is another setting: refused without --force, like --threshold
    result = runner.invoke(app, ["minhash", "-d", glob, "-e", E, "-p", "1", "--verify", "estimate"])
    assert result.exit_code != 0 and "--force" in str(result.exception)
    out = run("-d", glob, "-e", E, "-p", "1", "--verify", "estimate", "--force", "--keep-work")
    assert "estimated Jaccard" in out
    attrs = attributes(tmp_path)
    assert (
        attrs["near-a"]["cluster_id"] == attrs["near-b"]["cluster_id"] and attrs["near-b"]["duplicate"] == 1.0
    )
    est_dir = work / MinhashConfig(verify="estimate").signature_key()
    assert len(list(est_dir.glob("*/*.sig.npy"))) == 3 and not list(est_dir.glob("*/*.shingles.npy"))
    result = runner.invoke(app, ["minhash", "-d", glob, "-e", E, "--verify", "approx"])
    assert result.exit_code != 0 and "--verify" in str(result.exception)


def test_work_is_removed_after_success_unless_keep_work(tmp_path: Path) -> None:
    """Issue 17: signatures, shingle sets and candidates go once the labels exist (≤ 1× the gzipped input);
    a re-run then has nothing to do, and other settings still run (recomputing what they need)."""
    kept, cleaned = tmp_path / "kept", tmp_path / "cleaned"
    for root in (kept, cleaned):
        make_corpus(root)
    run("-d", f"{kept}/documents/*/*.jsonl.gz", "-e", E, "-p", "1", "--keep-work")
    run("-d", f"{cleaned}/documents/*/*.jsonl.gz", "-e", E, "-p", "1")
    assert attribute_bytes(kept) == attribute_bytes(cleaned)

    def work_files(root: Path) -> list[Path]:
        return [p for p in (root / "attributes" / E / "_work" / "minhash").rglob("*") if p.is_file()]

    kept_names = {p.name for p in work_files(kept)}
    assert any(n.endswith(".shingles.npy") for n in kept_names) and any(
        n.startswith("band-") for n in kept_names
    )
    left = work_files(cleaned)
    assert not [p for p in left if p.name.endswith((".sig.npy", ".shingles.npy", ".offsets.npy"))]
    assert not [p for p in left if p.name.startswith("band-")]
    assert {p.name for p in left} >= {"labels.npy", "labels.npy.shards.json", "attributes.json"}
    gz_input = sum(p.stat().st_size for p in (cleaned / "documents").rglob("*.jsonl.gz"))
    assert sum(p.stat().st_size for p in left) <= gz_input
    before = attribute_bytes(cleaned)
    out = run("-d", f"{cleaned}/documents/*/*.jsonl.gz", "-e", E, "-p", "1")
    assert "minhash signatures" not in out and attribute_bytes(cleaned) == before
    for root in (kept, cleaned):  # another threshold: the cleaned work dir recomputes its signatures
        run("-d", f"{root}/documents/*/*.jsonl.gz", "-e", E, "-p", "1", "--threshold", "0.5", "--force")
    assert attribute_bytes(kept) == attribute_bytes(cleaned)


def minhash_command(root: Path, processes: int) -> list[str]:
    code = (
        "import sys, typer; from dolma_kit.cli.dedup_minhash import minhash; app = typer.Typer(); "
        "app.command('minhash')(minhash); app.command('unused')(lambda: None); app()"
    )
    return [
        sys.executable,
        "-c",
        code,
        "minhash",
        "-d",
        f"{root}/documents/*/*.jsonl.gz",
        "-e",
        E,
        "-p",
        str(processes),
    ]


@pytest.mark.slow
def test_kill_and_resume_is_byte_identical(tmp_path: Path) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for root in (clean, killed):
        make_corpus(root, shards=6, unique_per_shard=400)
    run("-d", f"{clean}/documents/*/*.jsonl.gz", "-e", E, "-p", "1")

    proc = subprocess.Popen(minhash_command(killed, 2), start_new_session=True, cwd=Path(__file__).parents[2],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    work = killed / "attributes" / E / "_work" / "minhash" / "signatures"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (work.exists() and list(work.glob("*/*/*.done"))):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "attributes" / E / "dedup_minhash_report.json").exists(), "kill landed too late"
    out = subprocess.run(minhash_command(killed, 1), check=True, capture_output=True, text=True,
                         cwd=Path(__file__).parents[2])  # fmt: skip
    assert "already done" in out.stdout
    assert attribute_bytes(killed) == attribute_bytes(clean)
