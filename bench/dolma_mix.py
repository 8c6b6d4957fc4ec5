"""Does `dolma-kit mix` write what `dolma mix` 1.2.1 writes, from Dolma's own attributes, and how fast?

    .venv/bin/python bench/dolma_mix.py                 # its own 1,454-document real-text corpus
    .venv/bin/python bench/dolma_mix.py --docs 300      # a quick look

Dolma tags the corpus (`gopher_v1`, `pii_regex_v2`: PII spans) and dedupes it (paragraphs →
`bff_duplicate_paragraph_spans`, documents by `$.metadata.origin` → `bff_duplicate_url`, which Dolma writes only
on the rows that have it). Then one mixer config in Dolma's v1.5 style runs through both tools, unchanged:
Gopher thresholds as JSONPath excludes, the URL-duplicate exclude, a `$.metadata[...]` filter, paragraph
deletion and PII masking as `span_replacement`, `discard_fields: [attributes]`; a second stream writes the same
rules in jq (`syntax: jq`) and keeps `attributes`. Both use 2 processes. Rows: documents kept (same ids), same
text, same fields (every key and value, `metadata.provenance` included), ours with `--dolma-compatible`; and the
speed ratio, CPU seconds over each process tree (the mix step only: tagging is done once, untimed), counted
exactly (`tree_cpu_s`), the median of `RUNS` runs of each tool, taken in turn.

Both tools run from compiled bytecode, as installed packages do: pip compiled every module of Dolma's venv,
while this checkout is an editable install, and under `PYTHONDONTWRITEBYTECODE=1` (set in some shells and
CI) every dolma-kit module would be compiled from source again in the driver and in the worker forkserver
(about 0.05 CPU s of each run here). Ours therefore run with `PYTHONPYCACHEPREFIX` under the work folder
(the checkout stays clean) and the first, untimed run fills it.
"""

from __future__ import annotations

import ctypes
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _util import run_measured
from dolma_peer import corpus_shards
from tag_runner import console

PROCESSES = 2
RUNS = 3
"""Timed runs of each tool per speed row; the row shows the medians."""
EXPERIMENT = "dm"
GOPHER = [  # (attribute, op, threshold): Dolma v1.5's cc rules (its 2/3/4-gram names are misspelt there)
    ("word_count", "<", 50),
    ("word_count", ">", 100000),
    ("median_word_length", "<", 3),
    ("median_word_length", ">", 10),
    ("symbol_to_word_ratio", ">", 0.1),
    ("fraction_of_words_with_alpha_character", "<", 0.8),
    ("required_word_count", "<", 2),
    ("fraction_of_lines_starting_with_bullet_point", ">", 0.9),
    ("fraction_of_lines_ending_with_ellipsis", ">", 0.3),
    ("fraction_of_duplicate_lines", ">", 0.3),
    ("fraction_of_characters_in_most_common_2grams", ">", 0.2),
]
PII = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS")


def _layout(corpus: Path, work: Path) -> list[str]:
    """`work/documents/<source>` links to the corpus, so both tools' attributes land under `work/attributes`."""
    docs = work / "documents"
    docs.mkdir(parents=True, exist_ok=True)
    sources = {p.name for p in (corpus / "documents").iterdir()}
    for stale in [p for p in docs.iterdir() if p.is_symlink() and p.name not in sources]:
        stale.unlink()
    for source in sorted((corpus / "documents").iterdir()):
        link = docs / source.name
        if link.is_symlink() and link.resolve() != source.resolve():
            link.unlink()  # a work folder reused for another corpus
        if not link.exists():
            link.symlink_to(source.resolve(), target_is_directory=True)
    return [str(docs / Path(s).parent.name / Path(s).name) for s in corpus_shards(corpus)]


def ours_env(work: Path) -> dict[str, str]:
    """The environment of our runs: bytecode cached under `work` (module docstring), the rest as it is."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work.resolve() / "pycache")
    return env


def _run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Any:
    console.print(f"[dim]$ {' '.join(cmd[:5])} … (log: {log})[/]")
    measured = run_measured(cmd, log, env=env)
    if measured.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({measured.returncode}): {log.read_text()[-2000:]}")
    return measured


_PR_SET_CHILD_SUBREAPER = 36


def tree_cpu_s(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """CPU seconds of `cmd` and of every process it starts, exactly (Linux).

    This process becomes the subreaper of the command's processes, so those that outlive their parent (our
    worker forkserver, and the workers it forks) are reaped here and counted in `RUSAGE_CHILDREN`.
    `run_measured` samples /proc every 0.1 s and loses what a process the command does not reap spends after
    its last sample: about 0.15 CPU s of a 2-process `dolma-kit mix` (Dolma's mixer is threads of one process,
    which both count in full)."""
    console.print(f"[dim]$ {' '.join(cmd[:5])} … (log: {log})[/]")
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("wb") as out:
        code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    while True:  # the orphans: they end with the command (a forkserver exits when its driver has)
        try:
            os.wait()
        except ChildProcessError:
            break
    if code != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({code}): {log.read_text()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def make_attributes(dolma: Path, shards: list[str], work: Path) -> None:
    """Dolma's own attributes for the mixer: tagger scores and spans, paragraph and URL duplicates."""
    marker = work / "attributes" / ".complete"
    spec = json.dumps([[s, Path(s).stat().st_size] for s in shards])
    if marker.exists() and marker.read_text() == spec:
        return  # made from these very shards
    shutil.rmtree(work / "attributes", ignore_errors=True)
    _run(
        [
            str(dolma),
            "tag",
            "--documents",
            *shards,
            "--experiment",
            EXPERIMENT,
            "--taggers",
            "gopher_v1",
            "pii_regex_v2",
            "--processes",
            str(PROCESSES),
        ],
        work / "tag.log",
    )
    for name, dedupe in (
        ("dedupe_paragraphs", {"paragraphs": {"attribute_name": "bff_duplicate_paragraph_spans"}}),
        ("dedupe_urls", {"documents": {"attribute_name": "bff_duplicate_url", "key": "$.metadata.origin"}}),
    ):
        bloom = work / f"{name}.bloom"
        bloom.unlink(missing_ok=True)
        cfg = {
            "documents": shards,
            "dedupe": {"name": name, "skip_empty": True, **dedupe},
            "bloom_filter": {"file": str(bloom), "read_only": False, "size_in_bytes": 1 << 24,
                             "estimated_doc_count": 100_000},
            "processes": 1,
        }  # fmt: skip
        path = work / f"{name}.json"
        path.write_text(json.dumps(cfg, indent=1))
        _run([str(dolma), "-c", str(path), "dedupe"], work / f"{name}.log")
    marker.write_text(spec)


def mixer_config(work: Path, out: Path) -> dict[str, Any]:
    """A v1.5-style Dolma mixer config over the attributes of `make_attributes` (JSONPath and jq streams)."""
    prefix = f"{EXPERIMENT}__gopher_v1__"
    jsonpath = [
        f"$.attributes[?(@.{prefix}{a} && @.{prefix}{a}[0] && @.{prefix}{a}[0][2] {op} {t})]"
        for a, op, t in GOPHER
    ]
    jsonpath.append("$@.attributes[?(@.bff_duplicate_url && @.bff_duplicate_url[0] && @.bff_duplicate_url[0][2] >= 1.0)]")  # fmt: skip
    jsonpath.append("$.metadata[?(@.origin == 'never-an-origin')]")
    jq = [
        f'.attributes.{prefix}{a} | if type == "array" and length > 0 then .[0][2] {op} {t} else false end'
        for a, op, t in GOPHER
    ]
    jq.append("(.attributes.bff_duplicate_url // []) | length > 0 and .[0][2] >= 1.0")
    spans = [{"span": "$.attributes.bff_duplicate_paragraph_spans", "min_score": 0.5, "replacement": ""}] + [
        {"span": f"$.attributes.{EXPERIMENT}__pii_regex_v2__{kind}", "min_score": 0.5,
         "replacement": f"|||{kind}|||"}
        for kind in PII
    ]  # fmt: skip
    common = {
        "documents": [str(work / "documents" / "*" / "*.jsonl.gz")],
        "attributes": [EXPERIMENT, "dedupe_paragraphs", "dedupe_urls"],
        "span_replacement": spans,
    }
    return {
        "streams": [
            {
                "name": "v15",
                **common,
                "output": {"path": str(out / "v15"), "max_size_in_bytes": 1 << 30, "discard_fields": ["attributes"]},
                "filter": {"exclude": jsonpath},
            },
            {
                "name": "jq",
                **common,
                "output": {"path": str(out / "jq"), "max_size_in_bytes": 1 << 30},
                "filter": {"exclude": jq, "syntax": "jq"},
            },
        ],
        "work_dir": {"input": str(work / "_dolma_work" / "in"), "output": str(work / "_dolma_work" / "out")},
        "processes": PROCESSES,
    }  # fmt: skip


def read_docs(folder: Path) -> dict[str, dict[str, Any]]:
    """Every document under `folder` (any depth), by id."""
    out = {}
    for part in sorted(p for p in folder.rglob("*.gz") if "_mix" not in p.parts):
        with gzip.open(part, "rt", encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                out[doc["id"]] = doc
    return out


def _diff(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if a is None or b is None:
        return "kept only by " + ("dolma" if b is None else "dolma-kit")
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {json.dumps(a.get(k))[:60]} vs {json.dumps(b.get(k))[:60]}" for k in keys[:2])


def compare(corpus: Path, dolma: Path, work: Path) -> list[dict[str, Any]]:
    """Run `dolma mix` and `dolma-kit mix --dolma-compatible` on one config; rows for dolma_conformance.py."""
    shards = _layout(corpus, work)
    make_attributes(dolma, shards, work)
    rows: list[dict[str, Any]] = []
    theirs_out, ours_out = work / "mixed-dolma", work / "mixed-ours"
    for folder in (theirs_out, ours_out, work / "mixed-ours-default"):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(work / "_dolma_work", ignore_errors=True)
    cfg_path = work / "mixer.json"
    cfg_path.write_text(json.dumps(mixer_config(work, theirs_out), indent=1))
    _run([str(dolma), "-c", str(cfg_path), "mix"], work / "mix-dolma.log")
    ours_cfg = work / "mixer-ours.json"
    ours_cfg.write_text(json.dumps(mixer_config(work, ours_out), indent=1))
    run_ours = (
        "import sys; from dolma_kit.mix.recipe import load_recipe; from dolma_kit.mix.stage import mix; "
        "mix(load_recipe(sys.argv[1]), processes=int(sys.argv[2]), force=True, dolma_compatible=True)"
    )
    _run(
        [sys.executable, "-c", run_ours, str(ours_cfg), str(PROCESSES)], work / "mix-ours.log", ours_env(work)
    )
    default_out = work / "mixed-ours-default"
    default_cfg = work / "mixer-ours-default.json"
    default_cfg.write_text(json.dumps(mixer_config(work, default_out), indent=1))
    _run([sys.executable, "-m", "dolma_kit", "mix", str(default_cfg), "-p", str(PROCESSES), "--force"],
         work / "mix-ours-default.log", ours_env(work))  # fmt: skip
    summary = json.loads((default_out / "v15" / "mix_summary.json").read_text())["streams"][0]
    theirs, ours = read_docs(theirs_out / "v15"), read_docs(default_out / "v15")
    ids = sorted(set(theirs) | set(ours))
    rows.append(
        {
            "stage": "mix",
            "what": "v15 without --dolma-compatible: documents kept (ids)",
            "equal": sum(i in theirs and i in ours for i in ids),
            "total": len(ids),
            "example": f"the run said: {summary['dolma']['notes']}; absent names: {summary['dolma']['absent']}",
        }
    )
    for stream in ("v15", "jq"):
        theirs, ours = read_docs(theirs_out / stream), read_docs(ours_out / stream)
        ids = sorted(set(theirs) | set(ours))
        checks = {
            "documents kept (ids)": [i for i in ids if i not in theirs or i not in ours],
            "text": [
                i for i in ids if i not in theirs or i not in ours or theirs[i]["text"] != ours[i]["text"]
            ],
            "all fields": [i for i in ids if theirs.get(i) != ours.get(i)],
        }
        for what, bad in checks.items():
            rows.append(
                {
                    "stage": "mix",
                    "what": f"{stream}: {what} (of {len(theirs)} Dolma kept)",
                    "equal": len(ids) - len(bad),
                    "total": len(ids),
                    "example": f"{bad[0]}: {_diff(theirs.get(bad[0]), ours.get(bad[0]))}" if bad else "",
                }
            )
    rows += speed_rows(dolma, work, run_ours, len(shards))
    return rows


def _one_document(work: Path) -> Path:
    """A one-document copy of the layout (empty attribute rows): what each tool spends before mixing anything."""
    tiny = work / "tiny"
    shutil.rmtree(tiny, ignore_errors=True)
    row = {"id": "one", "text": "One short document.", "source": "tiny", "metadata": {"origin": "x"}}
    for sub in ["documents", *(f"attributes/{e}" for e in (EXPERIMENT, "dedupe_paragraphs", "dedupe_urls"))]:
        path = tiny / sub / "tiny" / "one.jsonl.gz"
        path.parent.mkdir(parents=True)
        line = row if sub == "documents" else {"id": "one", "attributes": {}}
        path.write_bytes(gzip.compress((json.dumps(line) + "\n").encode(), mtime=0))
    return tiny


def speed_rows(dolma: Path, work: Path, run_ours: str, shards: int) -> list[dict[str, Any]]:
    """CPU seconds of each stream alone (the v1.5 JSONPath config is the common case; jq is Dolma's other), and
    of the v1.5 stream on one document (start-up: interpreters, imports, worker processes)."""
    rows = []
    tiny = _one_document(work)
    for index, stream in [(0, "v15"), (1, "jq"), (0, "start-up")]:
        runs: dict[str, list[float]] = {"dolma": [], "ours": []}
        for _ in range(RUNS):  # in turn, so a busy spell on the machine falls on both tools
            for tool, seconds in runs.items():
                cfg = mixer_config(tiny if stream == "start-up" else work, work / f"speed-{tool}")
                cfg["streams"] = [cfg["streams"][index]]
                shutil.rmtree(work / f"speed-{tool}", ignore_errors=True)
                shutil.rmtree(work / "_dolma_work", ignore_errors=True)
                path = work / f"speed-{tool}-{stream.replace('-', '')}.json"
                path.write_text(json.dumps(cfg, indent=1))
                cmd = (
                    [str(dolma), "-c", str(path), "mix"]
                    if tool == "dolma"
                    else [sys.executable, "-c", run_ours, str(path), str(PROCESSES)]
                )
                env = ours_env(work) if tool == "ours" else None
                seconds.append(tree_cpu_s(cmd, work / f"speed-{tool}-{stream.replace('-', '')}.log", env))
        times = [statistics.median(runs["dolma"]), statistics.median(runs["ours"])]
        rows.append(
            {
                "stage": "mix",
                "what": (
                    f"speed: {stream} stream, {shards} shards, {PROCESSES} processes (CPU s, process tree)"
                    if stream != "start-up"
                    else f"start-up: the v15 stream on 1 document, {PROCESSES} processes (CPU s)"
                ),
                "equal": 0,
                "total": 0,
                "example": f"dolma-kit {times[0] / max(times[1], 1e-9):.1f}x faster than dolma mix",
                "ours_cpu_s": round(times[1], 2),
                "dolma_cpu_s": round(times[0], 2),
                "runs": {tool: [round(x, 3) for x in seconds] for tool, seconds in runs.items()},
            }
        )
    return rows


def main() -> None:
    from dolma_conformance import part_main

    part_main(compare, "mix", __doc__.split("\n\n")[0])


if __name__ == "__main__":
    main()
