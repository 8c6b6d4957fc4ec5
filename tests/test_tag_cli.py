"""`dolma-kit tag` and `dolma-kit list` end to end through the CLI on the fixture corpus."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dolma_kit.cli import app
from tests.conftest import FIXTURES, corpus_documents, write_corpus, write_lines

runner = CliRunner()
USER_TAGGERS = str(FIXTURES / "user_taggers.py")


def read_attributes(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst", ".parquet"])
def test_tag_writes_line_aligned_attributes(tmp_path: Path, suffix: str) -> None:
    root = write_corpus(tmp_path, suffix)
    result = invoke(
        "tag", "--documents", f"{root}/documents/*/*{suffix}", "--experiment", "exp",
        "--taggers", "char_length", "paragraph_count", "--processes", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    attr_suffix = ".jsonl.gz" if suffix == ".parquet" else suffix
    for source, docs in corpus_documents().items():
        attr_path = root / "attributes" / "exp" / source / f"part-0000{attr_suffix}"
        if attr_suffix == ".jsonl.zst":
            import zstandard

            lines = (
                zstandard.ZstdDecompressor()
                .stream_reader(attr_path.read_bytes())
                .read()
                .decode()
                .splitlines()
            )
            rows = [json.loads(x) for x in lines]
        else:
            rows = read_attributes(attr_path)
        assert [r["id"] for r in rows] == [d.id for d in docs]
        for row, doc in zip(rows, docs, strict=True):
            assert row["source"] == source
            assert row["attributes"]["exp__char_length__length"] == [[0, len(doc.text), float(len(doc.text))]]
    summary = json.loads((root / "attributes" / "exp" / "tag_summary.json").read_text())
    total = summary["total"]
    assert total["documents_in"] == 12 == total["kept"] + total["removed"] + total["rejected"]
    schema = json.loads((root / "attributes" / "exp" / "attributes_schema.json").read_text())
    assert "exp__char_length__length" in schema["taggers"]["char_length"]["attributes"]


def test_variadic_and_repeated_options_agree(corpus: Path, tmp_path: Path) -> None:
    glob = f"{corpus}/documents/*/*.jsonl"
    a = invoke("tag", "-d", glob, "-e", "a", "--destination", str(tmp_path / "a"), "-t", "char_length",
               "paragraph_count", "-p", "1")  # fmt: skip
    b = invoke("tag", "-d", glob, "-e", "a", "--destination", str(tmp_path / "b"), "-t", "char_length",
               "-t", "paragraph_count", "-p", "1")  # fmt: skip
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    for source in ("web", "wiki", "forum"):
        assert (tmp_path / "a" / source / "part-0000.jsonl").read_bytes() == (
            tmp_path / "b" / source / "part-0000.jsonl"
        ).read_bytes()


def test_resume_skips_done_shards_and_force_redoes(corpus: Path) -> None:
    args = ["tag", "-d", f"{corpus}/documents/*/*.jsonl", "-e", "r", "-t", "char_length", "-p", "1"]
    assert invoke(*args).exit_code == 0
    out = corpus / "attributes" / "r" / "web" / "part-0000.jsonl"
    out.write_text("sentinel\n")  # a skipped shard is not rewritten
    again = invoke(*args)
    assert again.exit_code == 0
    assert out.read_text() == "sentinel\n"
    summary = json.loads((corpus / "attributes" / "r" / "tag_summary.json").read_text())
    assert summary["total"]["documents_in"] == 12  # counts of skipped shards come from their markers
    assert invoke(*args, "--force").exit_code == 0
    assert out.read_text() != "sentinel\n"


def test_user_tagger_module(corpus: Path) -> None:
    result = invoke("tag", "-d", f"{corpus}/documents/wiki/*.jsonl", "-e", "u", "-t", "whitespace_words",
                    "--tagger-modules", USER_TAGGERS, "-p", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read_attributes(corpus / "attributes" / "u" / "wiki" / "part-0000.jsonl")
    docs = corpus_documents()["wiki"]
    assert [r["attributes"]["u__whitespace_words__count"][0][2] for r in rows] == [
        float(len(d.text.split())) for d in docs
    ]


def test_list_shows_taggers() -> None:
    result = runner.invoke(app, ["list", "--tagger-modules", USER_TAGGERS])
    assert result.exit_code == 0
    for name in ("char_length_v1", "paragraph_count_v1", "whitespace_words_v1", "slow_echo_v1"):
        assert name in result.output


def test_unknown_tagger_is_a_clear_error(corpus: Path) -> None:
    result = invoke("tag", "-d", f"{corpus}/documents/*/*.jsonl", "-e", "x", "-t", "no_such_tagger")
    assert result.exit_code != 0
    assert "unknown tagger 'no_such_tagger'" in str(result.exception)


def test_bad_tagger_option_is_a_clear_error(corpus: Path) -> None:
    result = invoke("tag", "-d", f"{corpus}/documents/*/*.jsonl", "-e", "x", "-t", "slow_echo_v1:secs=1",
                    "--tagger-modules", USER_TAGGERS)  # fmt: skip
    assert "unknown key 'secs'" in str(result.exception)
    result = invoke("tag", "-d", f"{corpus}/documents/*/*.jsonl", "-e", "x", "-t", "slow_echo_v1:seconds=abc",
                    "--tagger-modules", USER_TAGGERS)  # fmt: skip
    assert "cannot read 'abc' as a number" in str(result.exception)


def test_missing_documents_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke("tag", "-d", f"{tmp_path}/nothing/*.jsonl.gz", "-e", "x", "-t", "char_length")
    assert "no files match" in str(result.exception)


def test_path_outside_documents_needs_destination(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "loose" / "a.jsonl", [{"id": "1", "text": "t"}])
    result = invoke("tag", "-d", str(path), "-e", "x", "-t", "char_length")
    assert "pass --destination" in str(result.exception)
    ok = invoke(
        "tag", "-d", str(path), "-e", "x", "-t", "char_length", "--destination", str(tmp_path / "attrs")
    )
    assert ok.exit_code == 0
    assert (tmp_path / "attrs" / "loose" / "a.jsonl").exists()


def test_bad_records_stop_with_file_and_line_or_go_to_rejects(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "documents" / "web" / "0.jsonl",
        [{"id": "1", "text": "fine"}, b"{broken", {"id": "3", "text": "also fine"}, {"id": "4"}],
    )
    result = invoke("tag", "-d", str(path), "-e", "x", "-t", "char_length", "-p", "1")
    assert result.exit_code != 0
    assert f"{path}:2: malformed JSON" in str(result.exception)
    assert not (tmp_path / "attributes" / "x" / "web" / "0.jsonl").exists()

    result = invoke("tag", "-d", str(path), "-e", "x", "-t", "char_length", "-p", "1", "--skip-bad")
    assert result.exit_code == 0, result.output
    rows = [
        json.loads(x) for x in (tmp_path / "attributes" / "x" / "web" / "0.jsonl").read_text().splitlines()
    ]
    assert [r["id"] for r in rows] == ["1", "3"]
    rejects = read_attributes(tmp_path / "attributes" / "x" / "rejects" / "web" / "0.jsonl.gz")
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejects] == [
        (2, "malformed JSON"),
        (4, "missing 'text'"),
    ]
    total = json.loads((tmp_path / "attributes" / "x" / "tag_summary.json").read_text())["total"]
    assert (total["documents_in"], total["kept"], total["rejected"]) == (4, 2, 2)


def test_main_prints_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dolma_kit.cli import main

    with pytest.raises(SystemExit) as info:
        main(["tag", "-d", f"{tmp_path}/none/*.gz", "-e", "x", "-t", "char_length"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "no files match" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("doc_path", "base", "destination", "expected"),
    [
        ("documents/web/x.jsonl", "documents", None, ("attributes/e", "web/x.jsonl")),
        ("/documents/web/x.jsonl", "/documents", None, ("/attributes/e", "web/x.jsonl")),
        ("/a/documents/web/x.parquet", "/a/documents", None, ("/a/attributes/e", "web/x.jsonl.gz")),
        (
            "s3://b/documents/web/x.jsonl.zst",
            "s3://b/documents",
            None,
            ("s3://b/attributes/e", "web/x.jsonl.zst"),
        ),
        ("/data/cc/2024/x.jsonl.gz", "/data", "/out", ("/out", "cc/2024/x.jsonl.gz")),
        ("/data/cc/x.jsonl.gz", "/data/cc", "/out/", ("/out", "cc/x.jsonl.gz")),
    ],
)
def test_attribute_locations(
    doc_path: str, base: str, destination: str | None, expected: tuple[str, str]
) -> None:
    from dolma_kit.attributes import attribute_root_and_relative

    assert attribute_root_and_relative(doc_path, base, "e", destination) == expected


def test_dolma_twins_write_dolmas_attribute_names(corpus: Path) -> None:
    """With `name=<Dolma tagger>`, the twins write the keys a Dolma mixer config reads, and only those."""
    result = invoke("tag", "-d", f"{corpus}/documents/web/*.jsonl", "-e", "exp", "-p", "1", "-t",
                    "c4_dolma:name=c4_v2", "pii_dolma:name=pii_regex_with_counts_fast_v2",
                    "ft_lang_id_dolma:name=ft_lang_id_en_doc_v2")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read_attributes(corpus / "attributes" / "exp" / "web" / "part-0000.jsonl")
    docs = corpus_documents()["web"]
    assert [r["id"] for r in rows] == [d.id for d in docs]
    allowed = {
        *(f"exp__c4_v2__{n}" for n in ("lines_with_no_ending_punctuation", "lines_with_too_few_words",
                                       "has_curly_brace", "has_lorem_ipsum", "has_javascript", "line_count")),
        *(f"exp__pii_regex_with_counts_fast_v2__{n}" for n in ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS",
                                                               "doc_count", "doc_frac")),
        "exp__ft_lang_id_en_doc_v2__en", "exp__ft_lang_id_en_doc_v2__not_en",
    }  # fmt: skip
    for row, doc in zip(rows, docs, strict=True):
        assert set(row["attributes"]) <= allowed
        assert row["attributes"]["exp__c4_v2__line_count"] == [[0, len(doc.text), doc.text.count("\n") + 1.0]]
        assert row["attributes"]["exp__pii_regex_with_counts_fast_v2__doc_frac"][0][2] >= 1.0  # Dolma's bug
        (en,) = row["attributes"]["exp__ft_lang_id_en_doc_v2__en"]
        (not_en,) = row["attributes"]["exp__ft_lang_id_en_doc_v2__not_en"]
        assert en[2] + not_en[2] == pytest.approx(1.0)
