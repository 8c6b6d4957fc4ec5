"""Span replacement: PII masking through the real pii tagger, duplicate-paragraph removal, overlaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolma_kit.documents import Document, DocumentWriter
from dolma_kit.mix import stage as mix
from dolma_kit.mix.recipe import load_recipe
from dolma_kit.mix.spans import SpanError, apply, merge
from dolma_kit.taggers.stage import TagConfig, tag
from tests.mix.helpers import read_output, whole, write_recipe, write_schema, write_source

PII_DOCS = {
    "p1": "Write to anna.berg@example.org or call +1 415-555-0132 today.",
    "p2": "Server logs:\n10.0.0.12 connected\n[ops@example.com]\nVersion 2.4.1 shipped on 2024-03-14.",
    "p3": "Nothing personal here, only a date 2024-03-14 and a price of $1,299.00.",
}
PII_EXPECTED = {
    "p1": "Write to |||EMAIL_ADDRESS||| or call |||PHONE_NUMBER||| today.",
    "p2": "Server logs:\n|||IP_ADDRESS||| connected\n[|||EMAIL_ADDRESS|||]\nVersion 2.4.1 shipped on 2024-03-14.",
    "p3": "Nothing personal here, only a date 2024-03-14 and a price of $1,299.00.",
}


def replace_recipe(root: Path, experiment: str, replace: str) -> Path:
    """A one-stream recipe over `root/documents/web` that only replaces spans."""
    text = f"""
streams:
  - name: web
    documents: ["{root}/documents/web/*.jsonl.gz"]
    attributes: [{experiment}]
    replace:{replace}
    output: {{path: "{root}/out"}}
"""
    return write_recipe(root / "r.yaml", text)


def test_pii_masking_is_exact(tmp_path: Path) -> None:
    with DocumentWriter(str(tmp_path / "documents" / "web" / "part-0000.jsonl.gz")) as out:
        for doc_id, text in PII_DOCS.items():
            out.write(Document(id=doc_id, text=text, source="web"))
    tag(
        TagConfig(
            documents=[str(tmp_path / "documents/*/*.jsonl.gz")], experiment="t", taggers=["pii"], processes=1
        )
    )
    replace = """
      - {attribute: pii.email_address, replacement: "|||EMAIL_ADDRESS|||"}
      - {attribute: pii.phone_number, replacement: "|||PHONE_NUMBER|||"}
      - {attribute: pii.ip_address, replacement: "|||IP_ADDRESS|||"}"""
    recipe = replace_recipe(tmp_path, "t", replace)
    result = mix.mix(load_recipe(str(recipe)), processes=1)
    assert {d["id"]: d["text"] for d in read_output(tmp_path / "out")} == PII_EXPECTED
    assert result.streams[0]["spans_replaced"] == {
        "pii.email_address": 2,
        "pii.phone_number": 1,
        "pii.ip_address": 1,
    }


def test_duplicate_paragraphs_are_removed_with_their_line(tmp_path: Path) -> None:
    text = "Intro line.\nMenu | Home | About\nThe body of the article.\nMenu | Home | About\nFooter text"
    dup = [[12, 31, 1.0], [57, 76, 1.0]]  # both "Menu" lines; spans exclude the newline
    assert text[12:31] == text[57:76] == "Menu | Home | About"
    last = "First.\nRepeated at the end"
    write_source(
        tmp_path,
        "web",
        [{"id": "a", "text": text}, {"id": "b", "text": last}, {"id": "c", "text": "Repeated at the end"}],
        {
            "d": [
                {"d__exact_paragraphs__duplicate_paragraph": dup},
                {"d__exact_paragraphs__duplicate_paragraph": [[7, 26, 1.0]]},
                {"d__exact_paragraphs__duplicate_paragraph": whole("Repeated at the end", 1.0)},
            ]
        },
    )
    write_schema(tmp_path, "d", ["d__exact_paragraphs__duplicate_paragraph"])
    recipe = replace_recipe(tmp_path, "d", ' [{attribute: duplicate_paragraph, replacement: ""}]')
    result = mix.mix(load_recipe(str(recipe)), processes=1)
    texts = {d["id"]: d["text"] for d in read_output(tmp_path / "out")}
    assert texts == {"a": "Intro line.\nThe body of the article.\nFooter text", "b": "First."}
    assert result.streams[0]["removed_by"][mix.EMPTY] == 1  # "c" was nothing but a duplicate
    assert result.streams[0]["spans_replaced"] == {"duplicate_paragraph": 3}  # in kept documents


def test_overlapping_spans_merge_and_longest_wins() -> None:
    text = "para with a@b.de inside\nnext"
    edits = [(0, 23, "", 1), (10, 16, "|||EMAIL_ADDRESS|||", 0)]
    assert merge(edits) == [(0, 23, "")]
    assert apply(text, edits) == "next"
    # partial overlap: one region, the longer span's replacement
    assert apply("0123456789", [(2, 5, "X", 0), (4, 9, "Y", 1)]) == "01Y9"
    # touching spans stay two replacements
    assert apply("aaaabbbb", [(0, 4, "<A>", 0), (4, 8, "<B>", 0)]) == "<A><B>"
    # right-to-left application on original offsets, whatever the order given
    assert apply("x a y b z", [(6, 7, "BB", 0), (2, 3, "AA", 0)]) == "x AA y BB z"


def test_span_outside_the_text_is_an_error() -> None:
    with pytest.raises(SpanError, match=r"span \[3, 12\) is outside the text \(length 5\)"):
        apply("short", [(3, 12, "X", 0)])
