"""`mix`'s examples of what each rule removed and kept (`mix.examples`): bounded, seeded by the documented key,
the same for any process count, sharding or resume, with the attribute values that decided; and the report's
"Why documents were removed" section built from them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner
from xxhash import xxh64_intdigest

from dolma_kit.analysis.report import build_report
from dolma_kit.analysis.report_examples import render_examples
from dolma_kit.analysis.stats import StatsConfig
from dolma_kit.cli import app
from dolma_kit.mix import examples as ex
from dolma_kit.mix import stage as mix
from dolma_kit.mix.dolma_run import NOT_INCLUDED, TOO_SHORT
from dolma_kit.mix.recipe import load_recipe
from tests.mix.helpers import write_recipe, write_schema, write_source
from tests.mix.test_dolma import ATTRS, DOCS, dolma_config
from tests.mix.test_mix import NAMES, PER_SHARD, SHARDS, make_corpus, recipe_text, run

PASS, EMAILS = "t.pass == 0", "two emails"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mix_examples")
    make_corpus(root)
    return root


def examples_of(folder: Path) -> dict[str, dict]:
    data = json.loads((folder / ex.EXAMPLES_NAME).read_text())
    assert data["format"] == ex.FORMAT
    (stream,) = data["streams"]
    return {r["rule"]: r for r in stream["rules"]}


def first_rule(n: int) -> str | None:
    """Which rule of `recipe_text` removes document n (`make_corpus`: every 5th fails pass, every 7th has 2 emails)."""
    return PASS if n % 5 == 0 else EMAILS if n % 7 == 0 else None


def key(doc_id: str, seed: int = 3, stream: str = "web") -> int:
    """The documented sample key (the same under every rule of a stream), recomputed independently."""
    return xxh64_intdigest(doc_id.encode(), xxh64_intdigest(f"{seed}\0{stream}".encode()))


def test_bounded_seeded_and_counted(corpus: Path) -> None:
    result = run(corpus, "k5", recipe_text(corpus, "k5"), processes=1, examples=5)
    rules = examples_of(corpus / "k5")
    (summary,) = result.streams
    assert list(rules) == [PASS, EMAILS, mix.EMPTY]  # the order rules decide in
    assert result.examples == [str(corpus / "k5" / ex.EXAMPLES_NAME)]
    ids = [f"d{n}" for n in range(SHARDS * PER_SHARD)]
    removed = {PASS: [i for i in ids if first_rule(int(i[1:])) == PASS]}
    removed[EMAILS] = [i for i in ids if first_rule(int(i[1:])) == EMAILS]
    passed = {PASS: [i for i in ids if i not in removed[PASS]]}
    passed[EMAILS] = [i for i in passed[PASS] if i not in removed[EMAILS]]
    for rule in (PASS, EMAILS):
        assert rules[rule]["removed"] == summary["removed_by"][rule] == len(removed[rule])
        assert rules[rule]["kept"] == len(passed[rule])
        for side, pool in (("removed", removed[rule]), ("kept", passed[rule])):
            shown = [r["id"] for r in rules[rule][f"{side}_examples"]]
            assert len(shown) == 5  # bounded, although hundreds qualify
            assert shown == sorted(pool, key=key)[:5]  # the k smallest keys
    assert rules[mix.EMPTY]["removed"] == 0 and rules[mix.EMPTY]["removed_examples"] == []
    assert rules[mix.EMPTY]["kept"] == summary["kept"]


def test_values_text_and_line_are_the_documents(corpus: Path) -> None:
    run(corpus, "vals", recipe_text(corpus, "vals"), processes=1, examples=8)
    rules = examples_of(corpus / "vals")
    for rule, name in ((PASS, "q__t__pass"), (EMAILS, "q__t__email")):
        for side in ("removed", "kept"):
            assert rules[rule][f"{side}_examples"]
            for sample in rules[rule][f"{side}_examples"]:
                doc = line_of(corpus / "documents" / sample["file"], sample["line"])
                assert doc["id"] == sample["id"] and sample["source"] == "web"
                assert sample["text"] == doc["text"][: ex.TEXT_CHARS] and sample["chars"] == len(doc["text"])
                row = line_of(corpus / "attributes" / "q" / sample["file"], sample["line"])
                assert row["id"] == doc["id"]
                assert sample["values"] == {name: ex.value_of(row["attributes"][name])}
                n = int(doc["id"][1:])
                if side == "removed":
                    assert first_rule(n) == rule  # the rule shown is the one that removed it
                    if rule == PASS:
                        assert sample["values"] == {name: 0.0}
                    else:  # two spans: their count and the spans themselves
                        assert sample["values"][name] == {"spans": 2, "first": row["attributes"][name]}
                else:
                    later = first_rule(n)
                    assert later != rule
                    assert sample["outcome"] == ("kept" if later is None else f"removed: {later}")


def lines_of(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def line_of(path: Path, line: int) -> dict:
    """Line `line` (1-based, as samples give it) of a gzipped JSON-lines shard."""
    return lines_of(path)[line - 1]


def test_same_examples_for_processes_resume_and_sharding(corpus: Path, tmp_path: Path) -> None:
    run(corpus, "one", recipe_text(corpus, "one"), processes=1, examples=4)
    run(corpus, "two", recipe_text(corpus, "two"), processes=2, examples=4)
    one = (corpus / "one" / ex.EXAMPLES_NAME).read_bytes()
    assert (corpus / "two" / ex.EXAMPLES_NAME).read_bytes() == one
    # resume: half the shards first, then all of them (the first two are skipped, their samples reused)
    half = recipe_text(corpus, "half").replace("web/*.jsonl.gz", "web/part-000[01].jsonl.gz")
    run(corpus, "half", half, processes=1, examples=4)
    again = run(corpus, "half", recipe_text(corpus, "half"), processes=1, examples=4)
    assert [s.status for s in again.run.shards] == ["skipped", "skipped", "done", "done"]
    assert (corpus / "half" / ex.EXAMPLES_NAME).read_bytes() == one
    # another sharding of the same documents (2 shards, in reverse order): the same documents sampled
    root = tmp_path / "resharded"
    shards = [f"web/part-{s:04d}.jsonl.gz" for s in range(SHARDS)]
    docs = [d for rel in shards for d in lines_of(corpus / "documents" / rel)][::-1]
    attrs = [a["attributes"] for rel in shards for a in lines_of(corpus / "attributes" / "q" / rel)][::-1]
    for shard, part in enumerate((slice(0, len(docs) // 2), slice(len(docs) // 2, None))):
        mine = [{"id": d["id"], "text": d["text"]} for d in docs[part]]
        write_source(root, "web", mine, {"q": attrs[part]}, shard=f"big-{shard}")
    write_schema(root, "q", NAMES)
    run(root, "out", recipe_text(root, "out"), processes=1, examples=4)
    mine, theirs = examples_of(root / "out"), examples_of(corpus / "one")
    for rule in theirs:
        for side in ("removed_examples", "kept_examples"):
            assert [r["id"] for r in mine[rule][side]] == [r["id"] for r in theirs[rule][side]]
            assert [r["values"] for r in mine[rule][side]] == [r["values"] for r in theirs[rule][side]]


def test_zero_writes_none_and_a_larger_n_redoes_the_shards(corpus: Path) -> None:
    recipe = write_recipe(corpus / "zero.yaml", recipe_text(corpus, "zero"))
    runner = CliRunner()
    ran = runner.invoke(app, ["mix", str(recipe), "--processes", "1", "--examples", "3"], terminal_width=250)
    assert ran.exit_code == 0, ran.output
    assert f"examples: {corpus / 'zero' / ex.EXAMPLES_NAME}" in ran.output.replace("\n", "")
    assert len(examples_of(corpus / "zero")[PASS]["removed_examples"]) == 3
    forced = runner.invoke(app, ["mix", str(recipe), "-p", "1", "--examples", "0", "--force"])
    assert forced.exit_code == 0, forced.output
    assert not (corpus / "zero" / ex.EXAMPLES_NAME).exists()  # none written, the earlier one gone
    manifests = list((corpus / "zero" / "_mix").rglob("*.json"))
    assert len(manifests) == SHARDS and not any("examples" in json.loads(m.read_text()) for m in manifests)
    assert "none written" in forced.output
    # shards finished without examples are redone when examples are asked for; their parts come out the same
    before = {p: p.read_bytes() for p in (corpus / "zero").glob("web/*.jsonl.gz")}
    result = run(corpus, "zero", recipe_text(corpus, "zero"), processes=1, examples=3)
    assert {s.status for s in result.run.shards} == {"done"}
    assert {p: p.read_bytes() for p in (corpus / "zero").glob("web/*.jsonl.gz")} == before
    assert len(examples_of(corpus / "zero")[PASS]["removed_examples"]) == 3
    bad = runner.invoke(app, ["mix", str(recipe), "--examples", "-1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_report_section_shows_the_samples(corpus: Path, tmp_path: Path) -> None:
    run(corpus, "rep", recipe_text(corpus, "rep"), processes=1, examples=2)
    out = tmp_path / "report"
    report = build_report(
        StatsConfig(root=str(corpus), stage_summaries=[str(corpus / "rep")], output=str(out), processes=1)
    )
    (found,) = report.data["mix_examples"]
    sample = found["streams"][0]["rules"][0]["removed_examples"][0]
    html = (out / "report.html").read_text()
    assert "Why documents were removed" in html
    assert f"<td>{sample['id']}</td>" in html and f"{sample['file']}:{sample['line']}" in html
    assert "q__t__pass</code> = 0" in html and "<details>" in html
    # the page renders from stats.json alone, and escapes the text
    data = json.loads((out / "stats.json").read_text())
    data["mix_examples"][0]["streams"][0]["rules"][0]["removed_examples"][0]["text"] = "<b>bold</b> & co"
    page = render_examples(data)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page and "<b>bold" not in page
    hint = render_examples({})
    assert "--examples" in hint and "examples.json" in hint


def test_dolma_stream_rules_and_values(tmp_path: Path) -> None:
    write_source(tmp_path, "s", DOCS, {"a": [{"a__" + k: v for k, v in a.items()} for a in ATTRS]}, shard="x")
    include, exclude = "$.attributes[?(@.a__k)]", "$.metadata[?(@.len > 10)]"
    stream = {
        "filter": {"include": [include], "exclude": [exclude]},
        "output": {"path": f"{tmp_path}/out", "max_size_in_bytes": 1000, "min_text_length": 2},
    }
    result = mix.mix(load_recipe(str(dolma_config(tmp_path, "out", stream))), processes=1, examples=10)
    rules = examples_of(tmp_path / "out")
    assert list(rules) == [NOT_INCLUDED, exclude, TOO_SHORT]
    assert {r: rules[r]["removed"] for r in rules} == result.streams[0]["removed_by"]
    ids = {r: [s["id"] for s in rules[r]["removed_examples"]] for r in rules}
    assert ids[NOT_INCLUDED] == ["missing"] and ids[exclude] == ["float1"]
    assert sorted(ids[TOO_SHORT]) == ["empty", "half", "int1", "zero"]
    assert rules[NOT_INCLUDED]["removed_examples"][0]["values"] == {"a__k": None}  # the row has no a__k
    assert {s["id"]: s["values"]["a__k"] for s in rules[NOT_INCLUDED]["kept_examples"]}["half"] == {
        "spans": 2,
        "first": [[0, 1, 0.5], [0, 1, 2]],
    }
    assert all(s["values"] == {ex.TEXT_BYTES: 1} for s in rules[TOO_SHORT]["removed_examples"])
    assert {s["outcome"] for s in rules[exclude]["kept_examples"]} == {f"removed: {TOO_SHORT}"}
