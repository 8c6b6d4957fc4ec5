"""`stats` on long documents: words and UTF-8 bytes counted a piece at a time give the whole-text figures,
and attribute lines are read as span summaries, never as parsed span lists.

`SourceCounts.add_text` used `len(text.split())` and `len(text.encode())`, which on one 50 M-character document
held ~8 M word strings (~500 MB, bench/big_document.py: stats peaked at 698 MB, now 371 MB). The piecewise
counts must equal those for every text, so they are checked at tiny piece sizes where every boundary case
(a word across a cut, whitespace of every kind on either side, non-ASCII at a cut) comes up.

A tagged long document's attribute line holds ~700,000 spans (c4's line rules), which `json.loads` made into
~120 MB of lists (stats peaked at 545 MB on the bench's tagged corpus, 342 MB now). Lines over
`attributes.SCAN_BYTES` are read off their bytes; the summaries must equal those of the parsed line for every
shape a writer makes, and a line of any other shape must fall back to the whole parse.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dolma_kit import attributes
from dolma_kit.analysis import counts
from dolma_kit.analysis.counts import utf8_length, word_count
from dolma_kit.analysis.stats import StatsConfig, collect_stats
from dolma_kit.attributes import read_summaries
from dolma_kit.errors import BadRecordError
from tests.analysis.conftest import Pipeline
from tests.conftest import CORPUS

#: every character `str.split()` splits on, and some it does not (zero-width space, no-break joiners)
SPACES = [c for c in map(chr, range(0x3100)) if c.isspace()]
OTHERS = ["a", "é", "ß", "中", "😀", "\u200b", "\u2060", "-", "."]


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(SPACES) if rng.random() < 0.35 else rng.choice(OTHERS) for _ in range(n))


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64])
def test_piecewise_counts_equal_the_whole_text_counts(piece: int) -> None:
    rng = random.Random(piece)
    texts = ["", " ", "a", " a ", "a b", "ab", "  ab  cd ", "\x1c\x1d\x1e\x1f", "x\u3000y\x85z"]
    texts += [random_text(rng, rng.randrange(0, 200)) for _ in range(300)]
    for text in texts:
        assert word_count(text, piece) == len(text.split()), repr(text)
        assert utf8_length(text, piece) == len(text.encode("utf-8")), repr(text)


def test_stats_json_is_the_same_at_any_piece_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole report's numbers, with pieces far smaller than the documents: byte-identical stats."""
    docs = tmp_path / "corpus" / "documents" / "debian"
    docs.mkdir(parents=True)
    texts = [p.read_text() for p in sorted(Path("/usr/share/common-licenses").glob("*"))[:6] if p.is_file()]
    texts += [random_text(random.Random(0), 5000), "Ünïcödé  words\u3000across\tpieces"]
    with (docs / "part-0000.jsonl").open("w") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"id": str(i), "text": text}) + "\n")
    for source in ("web", "wiki"):
        (docs.parent / source).mkdir()
        (docs.parent / source / "part-0000.jsonl").write_bytes(
            (CORPUS / "documents" / source / "part-0000.jsonl").read_bytes()
        )
    results = []
    for piece in (counts.PIECE_CHARS, 5):  # the second run cuts every document into 5-character pieces
        monkeypatch.setattr(counts, "utf8_length", lambda t, p=piece: utf8_length(t, p))
        monkeypatch.setattr(counts, "word_count", lambda t, p=piece: word_count(t, p))
        config = StatsConfig(root=str(tmp_path / "corpus"), output=str(tmp_path / f"out{piece}"), processes=1)
        data = collect_stats(config).data
        results.append(json.dumps(data, sort_keys=True).replace(f"out{piece}", "out"))
    assert results[0] == results[1]
    assert json.loads(results[0])["sources"]["debian"]["words"] == sum(len(t.split()) for t in texts)


def _number(rng: random.Random) -> object:
    return rng.choice([0, 1, 7, 123456, -3, 0.5, 1.0, 0.25, 1e-7, 2.5e20, 0.1 + 0.2, rng.random()])


def _span_line(rng: random.Random) -> str:
    """An attribute line as some writer could make it: spacing, number forms, names and order vary."""
    names = ["e__c4__lines", "e__pii__phone_number", "e__ft_lang_id__en", 'e__we\u00efrd__"q"', "ünï__x__y"]
    attrs = {}
    for name in rng.sample(names, rng.randrange(0, len(names) + 1)):
        attrs[name] = [[_number(rng), _number(rng), _number(rng)] for _ in range(rng.randrange(0, 6))]
    row: dict = {"id": rng.choice(["d1", 'ü"x', 17]), "source": "web", "attributes": attrs}
    if rng.random() < 0.3:
        row = {"added": None, "flag": True, **dict(reversed(list(row.items())))}
    separators = rng.choice([(",", ":"), (", ", ": "), (" ,\t", " :\n ")])
    text = json.dumps(row, separators=separators, ensure_ascii=rng.random() < 0.5)
    if attrs and rng.random() < 0.2:  # a repeated name: the last one counts
        text = text.replace('"attributes":{', '"attributes":{"e__c4__lines":[[1,2,3.5]],', 1)
    return text


def _both(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    wanted = lambda name: not name.startswith("e__c4")  # noqa: E731 (a reader reads some names only)
    monkeypatch.setattr(attributes, "SCAN_BYTES", 1 << 40)
    parsed = read_summaries("f.jsonl", 3, raw, wanted)
    monkeypatch.setattr(attributes, "SCAN_BYTES", 0)
    return parsed, read_summaries("f.jsonl", 3, raw, wanted)


def test_scanned_summaries_equal_the_parsed_line(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    scanned = []
    real_scan = attributes._scan
    monkeypatch.setattr(
        attributes, "_scan", lambda raw, wanted: scanned.append(real_scan(raw, wanted)) or scanned[-1]
    )
    for _ in range(400):
        raw = _span_line(rng).encode()
        parsed, read = _both(raw, monkeypatch)
        assert parsed == read, raw
    assert scanned and all(found is not None for found in scanned)  # every writer's shape is scanned


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": "a", "attributes": {"x__y__z": [[0, 1, NaN]]}}',  # not a plain JSON number
        b'{"id": "a", "meta": {"k": 1}, "attributes": {"x__y__z": [[0, 4, 1]]}}',  # a nested value
        b'{"id": "a", "attributes": {"x__y__z": [[0, 4, 1, 9]]}}',  # a span of four numbers
        b'{"id": "a", "attributes": null}',
        b'{"id": "a", "attributes": {"x__\\ud83d\\ude00": [[0, 4, 1]]}}',  # an escaped surrogate pair
    ],
)
def test_other_shapes_fall_back_to_the_whole_parse(line: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scan = attributes._scan
    scanned: list[object] = []
    monkeypatch.setattr(attributes, "_scan", lambda raw, wanted: scanned.append(real_scan(raw, wanted)))
    parsed, read = _both(line, monkeypatch)
    assert parsed == read
    assert scanned == [None]


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": "a", "attributes": {"x__y__z": [[0, 1, 0.5]]',
        b'{"id": "a"} trailing',
        b"[1, 2]",
        b"",
        b'{"id": "a", "attributes": {"x__y__z": [0, 1, 0.5]}}',
        b'{"id": "a", "attributes": [1]}',
        b'{"id": "a", "attributes": {"x__y__z": [[0, 1, 0.5]],}}',
        b'{"id": "bad \\q escape", "attributes": {}}',
        b'{"id": "a", "attributes": {"x__\\ud800": [[0, 4, 1]]}}',  # a lone surrogate
        b'{"id": "\xff", "attributes": {}}',  # not UTF-8
        b'{"id": "a", "source": "\xff", "attributes": {}}',
    ],
)
def test_malformed_lines_are_bad_records_at_their_line(line: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    for scan in (0, 1 << 40):
        monkeypatch.setattr(attributes, "SCAN_BYTES", scan)
        with pytest.raises(BadRecordError) as info:
            read_summaries("f.jsonl", 3, line, lambda name: True)
        assert (info.value.path, info.value.line) == ("f.jsonl", 3)


def test_stats_json_is_the_same_when_every_line_is_scanned(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixture corpus's attributes (language, PII, both dedups, contamination) read both ways."""
    results = []
    real_scan = attributes._scan
    scanned: list[object] = []
    monkeypatch.setattr(
        attributes, "_scan", lambda raw, wanted: scanned.append(real_scan(raw, wanted)) or scanned[-1]
    )
    for scan in (attributes.SCAN_BYTES, 0):
        monkeypatch.setattr(attributes, "SCAN_BYTES", scan)
        config = StatsConfig(root=str(pipeline.root), output=str(tmp_path / f"out{scan}"), processes=1)
        data = collect_stats(config).data
        results.append(json.dumps(data, sort_keys=True).replace(f"out{scan}", "out"))
    assert results[0] == results[1]
    assert json.loads(results[0])["total"]["pii"]
    assert scanned and None not in scanned  # the second run read every line off its bytes
