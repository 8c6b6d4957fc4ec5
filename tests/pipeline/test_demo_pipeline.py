"""pipelines/demo.yaml end to end on a cut-down corpus: counts, masking, dedup, training, report, re-runs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from dolma_kit.documents import read_documents
from dolma_kit.pipeline import load_pipeline, plan
from tests.pipeline.conftest import DEMO, SMALL, run_demo, summary

STAGES = ["corpus", "tag", "dedup_text", "dedup_para", "dedup_minhash", "decontaminate", "mix",
          "train-tokenizer", "tokenize", "train", "report"]  # fmt: skip


def test_every_stage_ran_and_balances(demo_run: tuple[Path, str]) -> None:
    work, output = demo_run
    data = summary(work)
    assert [r["stage"] for r in data["stages"]] == STAGES
    assert all(r["status"] == "ran" for r in data["stages"])
    for row in data["stages"]:
        c = row["counts"]
        if c is not None:
            assert c["documents_in"] == c["kept"] + c["removed"] + c["rejected"], row
            assert row["balanced"] is True
    rows = {r["stage"]: r for r in data["stages"]}
    assert rows["corpus"]["counts"]["documents_in"] == 200
    for name in ("tag", "dedup_text", "dedup_minhash", "decontaminate", "mix"):
        assert rows[name]["counts"]["documents_in"] == 200, name
    assert rows["dedup_text"]["counts"]["removed"] > 0  # planted exact copies are marked
    assert rows["dedup_minhash"]["counts"]["removed"] > 0  # and near copies
    assert rows["decontaminate"]["counts"]["removed"] > 0  # and evaluation leaks
    mix = rows["mix"]["counts"]
    assert mix["removed_by"]["exact duplicate"] > 0 and mix["removed_by"]["evaluation leak"] > 0
    # tokenize reads what mix wrote: wiki is up-sampled ×2, so more documents than mix kept
    assert rows["tokenize"]["counts"]["documents_in"] > mix["kept"]
    train = rows["train"]["extra"]
    assert train["steps"] == 10 and train["last_loss"] < train["first_loss"]
    assert data["report"] == str(work / "report" / "report.html")
    assert output.rstrip().endswith(f"report: {work / 'report' / 'report.html'}")


def test_mix_drops_planted_copies_and_masks_pii(demo_run: tuple[Path, str]) -> None:
    work, _ = demo_run
    planted = {}
    for path in sorted((work / "documents").glob("*/*.jsonl.gz")):
        for doc in read_documents(str(path)):
            planted[(doc.source, doc.id)] = doc.metadata["planted"]
    mixed = [
        d for p in sorted((work / "mixed" / "documents").glob("*/*.jsonl.gz")) for d in read_documents(str(p))
    ]
    assert mixed
    kinds = {planted[(d.source, d.id)] for d in mixed}
    assert not kinds & {"exact_duplicate", "leak", "low_quality", "boilerplate_only"}, kinds
    text = "\n".join(d.text for d in mixed)
    assert "@example." not in text and "192.0.2." not in text and "203.0.113." not in text
    assert "|||EMAIL_ADDRESS|||" in text


def test_languages_are_recognised(demo_run: tuple[Path, str]) -> None:
    """The generated languages are what fastText's lid.176 says they are (the corpus is only useful if so)."""
    work, _ = demo_run
    checked = agree = 0
    langs = set()
    for path in sorted((work / "documents").glob("*/*.jsonl.gz")):
        attr = work / "attributes" / "demo" / path.relative_to(work / "documents")
        with gzip.open(attr, "rt") as fh:
            rows = [json.loads(line)["attributes"] for line in fh]
        for doc, row in zip(read_documents(str(path)), rows, strict=True):
            lang = doc.metadata["language"]
            if lang in ("code", "unknown"):
                continue
            scores = {k.rsplit("__", 1)[1]: v[0][2] for k, v in row.items() if "__ft_lang_id__" in k}
            checked += 1
            agree += max(scores, key=scores.get) == lang and scores[lang] >= 0.5
            langs.add(lang)
    assert len(langs) >= 6 and agree >= 0.97 * checked, (agree, checked, langs)


def test_report_numbers_match_stage_summaries(demo_run: tuple[Path, str]) -> None:
    work, _ = demo_run
    stats = json.loads((work / "report" / "stats.json").read_text())
    html = (work / "report" / "report.html").read_text()
    rows = {r["stage"]: r for r in summary(work)["stages"]}
    by_stage: dict[str, list[dict]] = {}
    for row in stats["stages"]:
        by_stage.setdefault(row["stage"], []).append(row)
        assert row["balanced"], row
    for report_stage, pipeline_stage in (("tag", "tag"), ("dedup minhash", "dedup_minhash"),
                                         ("decontaminate", "decontaminate"), ("mix", "mix"),
                                         ("tokenize", "tokenize")):  # fmt: skip
        got = by_stage[report_stage]
        want = rows[pipeline_stage]["counts"]
        for key in ("documents_in", "kept", "removed", "rejected"):
            assert sum(r[key] for r in got) == want[key], (report_stage, key)
    exact = {r["scope"]: r for r in by_stage["dedup exact"]}
    assert exact["dedup_text"]["removed"] == rows["dedup_text"]["counts"]["removed"]
    assert stats["total"]["documents"] == 200
    mix_removed = rows["mix"]["counts"]["removed_by"]
    for rule, n in mix_removed.items():
        assert rule in html and f"{n:,}" in html
    assert html.count("data:image/png;base64,") >= 3  # plots are embedded, nothing fetched
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_rerun_skips_finished_stages_and_a_change_reruns_from_there(demo_run: tuple[Path, str]) -> None:
    work, _ = demo_run
    tokens = sorted((work / "tokens").glob("part-*.npy"))
    before = {p: p.stat().st_mtime_ns for p in tokens}
    run_demo(work)
    assert all(r["status"] == "skipped (done)" for r in summary(work)["stages"])
    run_demo(work, "--report.top_domains=5")  # the report's options changed: only it runs again
    statuses = {r["stage"]: r["status"] for r in summary(work)["stages"]}
    assert statuses.pop("report") == "ran (changed)"
    assert set(statuses.values()) == {"skipped (done)"}
    assert {p: p.stat().st_mtime_ns for p in tokens} == before
    pipe = load_pipeline(str(DEMO), [f"work_dir={work}", *(a.removeprefix("--") for a in SMALL[:3])])
    planned = {stage.name: status for stage, status in plan(pipe, start="tokenize")}
    assert [planned.pop(s).state for s in ("tokenize", "train", "report")] == ["forced"] * 3
    assert {s.state for s in planned.values()} == {"done (before --from)"}
    run_demo(work, "--from", "report")
    statuses = {r["stage"]: r["status"] for r in summary(work)["stages"]}
    assert statuses.pop("report") == "ran (forced)" and set(statuses.values()) == {"skipped (done)"}


def test_planted_problems_are_found(demo_run: tuple[Path, str]) -> None:
    """Dedup and decontamination find what the corpus generator planted, and nothing it did not."""
    work, _ = demo_run
    found: dict[tuple[str, str], set[str]] = {}
    names = {"dedup_text": "exact_text__duplicate", "dedup_minhash": "minhash__duplicate",
             "decontam": "decontam__contaminated"}  # fmt: skip
    for path in sorted((work / "documents").glob("*/*.jsonl.gz")):
        docs = list(read_documents(str(path)))
        for exp, name in names.items():
            with gzip.open(work / "attributes" / exp / path.relative_to(work / "documents"), "rt") as fh:
                for doc, line in zip(docs, fh, strict=True):
                    spans = json.loads(line)["attributes"].get(f"{exp}__{name}") or [[0, 0, 0.0]]
                    kind = doc.metadata["planted"].split("+")[0]
                    found.setdefault((exp, kind), set()).add(f"{spans[0][2] > 0}")
    assert found[("decontam", "leak")] == {"True"}
    assert all(v == {"False"} for (exp, kind), v in found.items() if exp == "decontam" and kind != "leak")
    assert found[("dedup_text", "exact_duplicate")] == {"True"}
    assert found[("dedup_text", "normal")] == found[("dedup_minhash", "normal")] == {"False"}
    assert "True" in found[("dedup_minhash", "near_duplicate")]


def test_report_shows_tokenizer_upsampling_and_training(demo_run: tuple[Path, str]) -> None:
    """The report's later rows: mix wrote what tokenize read (wiki up-sampled), the tokenizer, and the training run
    with the numbers of its metrics.jsonl and tokens trained per source."""
    work, _ = demo_run
    stats = json.loads((work / "report" / "stats.json").read_text())
    html = (work / "report" / "report.html").read_text()
    mix = [r for r in stats["stages"] if r["stage"] == "mix"]
    (tokenize,) = [r for r in stats["stages"] if r["stage"] == "tokenize"]
    wiki = next(r for r in mix if r["scope"] == "wiki")
    assert wiki["written"] == 2 * wiki["kept"] > 0  # sample: 2
    assert sum(r["written"] for r in mix) == tokenize["documents_in"] > sum(r["kept"] for r in mix)
    assert f"tokenize read {tokenize['documents_in']:,} documents" in html
    manifest = json.loads((work / "tokens" / "manifest.json").read_text())
    assert stats["tokenizer"]["vocab_size"] == manifest["vocab_size"] == 4096
    assert stats["tokens"]["per_source"] == {
        s: {"documents": v["documents"], "tokens": v["tokens"]} for s, v in manifest["per_source"].items()
    }
    run = work / "train" / "tiny"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    training = stats["training"]
    assert training["run"] == str(run)  # the pipeline's train stage, found without a `run` key
    assert [r["loss"] for r in training["train"]] == [r["loss"] for r in records if r["kind"] == "train"]
    assert [r["eval_loss"] for r in training["eval"]] == [
        r["eval_loss"] for r in records if r["kind"] == "eval"
    ]
    # tokens trained per source: every token of the 10 steps' instances (global batch 8, 32 tokens)
    last = [r for r in records if r["kind"] == "train"][-1]
    assert sum(training["tokens_by_source"].values()) == last["tokens_seen"] == 10 * 8 * 32
    assert '<section id="training">' in html and "No training run" not in html
