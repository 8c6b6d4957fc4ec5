"""`dolma-kit show DOC_ID`: on a tiny hand-made corpus (documents + attribute files written directly, one mix
run in-process), what it prints must be what the files hold and what the mix output holds."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app, main
from tests.conftest import CORPUS
from tests.mix.helpers import read_output, whole, write_recipe, write_source

EMAIL_TEXT = "Write to a@b.org for the rota. The bakery opens at five and closes at noon on Sundays."
EMAIL = (9, 16)  # "a@b.org"
WEB = [
    {"id": "web-kept", "text": EMAIL_TEXT},
    {"id": "web-poor", "text": "buy buy buy cheap cheap"},
    {"id": "shared", "text": "A web page that shares its id with a wiki article."},
]
WIKI = [
    {"id": "wiki-1", "text": "The river flows north through the old town."},
    {"id": "shared", "text": "A wiki article that shares its id with a web page."},
]


def _rows(docs: list[dict], scores: list[float], emails: list[list[list[float]]]) -> list[dict]:
    return [
        {"t__q__score": whole(d["text"], s), **({"t__pii__email": e} if e else {})}
        for d, s, e in zip(docs, scores, emails, strict=True)
    ]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work dir: two sources, experiment `t` (a quality score, email spans), mixed by a two-stream recipe."""
    root = tmp_path_factory.mktemp("show") / "work"
    web_rows = _rows(WEB, [0.9, 0.2, 0.8], [[[*EMAIL, 1.0]], [], []])
    write_source(root, "web", WEB, {"t": web_rows})
    write_source(root, "wiki", WIKI, {"t": _rows(WIKI, [0.7, 0.6], [[], []])})
    recipe = write_recipe(
        root / "recipe.yaml",
        """
output: {path: "${work_dir}/mixed/documents"}
streams:
  - name: web
    documents: ["${work_dir}/documents/web/*.jsonl.gz"]
    attributes: [t]
    filter:
      exclude:
        - {name: low quality, expr: t.q.score < 0.5}
    replace:
      - {attribute: t.pii.email, replacement: "|||EMAIL_ADDRESS|||"}
  - name: wiki
    documents: ["${work_dir}/documents/wiki/*.jsonl.gz"]
    attributes: [t]
    sample: 2
""",
    )
    env = {"work_dir": str(root)}  # as a pipeline fills it in; `show` reads it as --root
    result = CliRunner().invoke(app, ["mix", str(recipe), "-p", "1"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root


def _show(*args: str) -> str:
    """The printed output, its lines wrapped at 80 columns (as when piped) and re-joined for matching."""
    result = CliRunner().invoke(app, ["show", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    if "--json" in args:
        return result.output
    assert max(len(line) for line in result.output.splitlines() if "/" not in line) <= 80
    return " ".join(result.output.split())


def _json(*args: str) -> dict:
    return json.loads(_show(*args, "--json"))


def _attribute_file_row(root: Path, source: str, doc_id: str) -> dict:
    with gzip.open(root / "attributes" / "t" / source / "part-0000.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    return next(r for r in rows if r["id"] == doc_id)


def test_attributes_shown_are_the_files(work: Path) -> None:
    found = _json("web-kept", "--root", str(work))
    (occ,) = found["occurrences"]
    assert (occ["source"], occ["line"], occ["chars"]) == ("web", 1, len(EMAIL_TEXT))
    assert occ["path"].endswith("documents/web/part-0000.jsonl.gz") and occ["text"] == EMAIL_TEXT
    (exp,) = occ["experiments"]
    row = _attribute_file_row(work, "web", "web-kept")
    assert exp["line"] == 1 and {k: v["spans"] for k, v in exp["attributes"].items()} == row["attributes"]
    assert exp["attributes"]["t__q__score"]["value"] == 0.9
    (span,) = exp["attributes"]["t__pii__email"]["excerpts"]
    assert (span["start"], span["end"], span["text"]) == (*EMAIL, "a@b.org")
    text = _show("web-kept", "--root", str(work))
    assert '[9, 16) 1 "a@b.org"' in text and "q.score" in text and "0.9" in text


def test_a_removed_document_names_its_rule_and_is_not_in_the_output(work: Path) -> None:
    (occ,) = _json("web-poor", "--root", str(work))["occurrences"]
    (verdict,) = occ["mix"]
    assert (verdict["stream"], verdict["decision"], verdict["reason"]) == ("web", "removed", "low quality")
    (rule,) = verdict["rules"]
    assert rule["holds"] and rule["values"] == {"t__q__score": 0.2}
    assert verdict["locations"] == [] and verdict["notes"] == []
    assert "web-poor" not in {d["id"] for d in read_output(work / "mixed" / "documents")}
    text = _show("web-poor", "--root", str(work))
    assert 'REMOVED by "low quality"' in text and "t.q.score = 0.2" in text


def _line_of(path: str, line: int) -> dict:
    with gzip.open(path, "rt") as fh:
        return json.loads(fh.read().splitlines()[line - 1])


def test_a_kept_document_is_where_show_says_with_its_spans_replaced(work: Path) -> None:
    (occ,) = _json("web-kept", "--root", str(work))["occurrences"]
    (verdict,) = occ["mix"]
    assert (verdict["decision"], verdict["copies"]) == ("kept", 1)
    (replaced,) = verdict["replaced"]
    assert (replaced["start"], replaced["end"], replaced["text"]) == (*EMAIL, "a@b.org")
    (location,) = verdict["locations"]
    mixed = _line_of(location["path"], location["line"])
    assert mixed["id"] == "web-kept" and mixed["text"] == EMAIL_TEXT.replace("a@b.org", "|||EMAIL_ADDRESS|||")
    text = _show("web-kept", "--root", str(work))
    assert f"in the output at {location['path']}:{location['line']}" in text
    assert '"a@b.org" → "|||EMAIL_ADDRESS|||"' in text


def test_up_sampled_document_has_every_copy_located(work: Path) -> None:
    (occ,) = _json("wiki-1", "--root", str(work))["occurrences"]
    (verdict,) = occ["mix"]
    assert (verdict["decision"], verdict["copies"], len(verdict["locations"])) == ("kept", 2, 2)
    assert all(_line_of(loc["path"], loc["line"])["id"] == "wiki-1" for loc in verdict["locations"])
    assert "sampled 2×" in _show("wiki-1", "--root", str(work))


def test_an_id_in_two_sources_shows_both(work: Path) -> None:
    found = _json("shared", "--root", str(work))
    assert [(o["source"], o["line"]) for o in found["occurrences"]] == [("web", 3), ("wiki", 2)]
    assert [o["mix"][0]["stream"] for o in found["occurrences"]] == ["web", "wiki"]
    assert "2 documents with this id" in _show("shared", "--root", str(work))


def test_unknown_id_is_one_line_naming_where_it_looked(work: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["show", "no-such-doc", "--root", str(work)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err.replace(str(work), "") and "Traceback" not in err
    assert "no-such-doc" in err and f"{work}/documents" in err and "2 shards" in err


def test_a_changed_attribute_is_reported_against_the_output(work: Path, tmp_path: Path) -> None:
    """The verdict is checked against the parts: attributes rewritten after the mix are said, not hidden.
    The work dir is a moved copy: the recipe's `${work_dir}` is read as --root."""
    import shutil

    copy = tmp_path / "work"
    shutil.copytree(work, copy, symlinks=True)
    attr = copy / "attributes" / "t" / "web" / "part-0000.jsonl.gz"
    rows = [_attribute_file_row(copy, "web", d["id"]) for d in WEB]
    rows[1]["attributes"]["t__q__score"] = whole(WEB[1]["text"], 0.99)
    attr.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    found = _json("web-poor", "--root", str(copy))
    (verdict,) = found["occurrences"][0]["mix"]
    assert verdict["decision"] == "kept" and "changed since this mix ran" in verdict["notes"][0]


def test_tokens_id_index_finds_the_shard(tokenized_demo: Path) -> None:
    docs = str(CORPUS / "documents" / "*" / "*.jsonl")
    found = _json("web-0002", "--documents", docs, "--tokens", str(tokenized_demo))
    (occ,) = found["occurrences"]
    assert occ["path"].endswith("web/part-0000.jsonl") and occ["tokens"][0]["id"] == "web-0002"
    assert any("id index" in n for n in found["notes"])
    assert occ["experiments"] == [] and occ["mix"] == []


def test_a_dolma_mixer_stream_is_decided_by_mix_dolma_code(tmp_path: Path) -> None:
    """A Dolma mixer config (JSONPath on metadata; a nested attribute object) explains the same way."""
    docs = [
        {"id": "short", "text": "a", "metadata": {"len": 5}},
        {"id": "long", "text": "b", "metadata": {"len": 50}},
    ]
    rows = [{"a__k": [[0, 1, 1]], "a__n": {"e": [[0, 1, 1.0]]}}, {"a__k": [[0, 1, 0.5]]}]
    write_source(tmp_path, "s", docs, {"a": rows})
    config = {
        "streams": [
            {
                "name": "s",
                "documents": [f"{tmp_path}/documents/s/*.jsonl.gz"],
                "attributes": ["a"],
                "filter": {"exclude": ["$.metadata[?(@.len > 10)]"]},
                "output": {"path": f"{tmp_path}/mixed", "max_size_in_bytes": 100000},
            }
        ],
        "processes": 1,
    }
    recipe = write_recipe(tmp_path / "dolma.json", json.dumps(config))
    assert CliRunner().invoke(app, ["mix", str(recipe), "-p", "1"], catch_exceptions=False).exit_code == 0
    (removed,) = _json("long", "--root", str(tmp_path))["occurrences"][0]["mix"]
    assert (removed["decision"], removed["reason"], removed["locations"]) == (
        "removed",
        "$.metadata[?(@.len > 10)]",
        [],
    )
    occ = _json("short", "--root", str(tmp_path))["occurrences"][0]
    (kept,) = occ["mix"]
    assert kept["decision"] == "kept" and _line_of(**kept["locations"][0])["id"] == "short"
    assert occ["experiments"][0]["attributes"]["a__n"]["value"] == {"e": [[0, 1, 1.0]]}
    assert 'n {"e": [[0, 1, 1.0]]}' in _show("short", "--root", str(tmp_path))
