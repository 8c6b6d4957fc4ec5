"""`dolma-kit decontaminate`: mark documents and paragraphs that share word n-grams with evaluation data.

OLMo removed pretraining documents that leak Paloma's evaluation text; GPT-3 used 13-gram overlap. Here the
evaluation texts become a sorted set of 64-bit gram hashes (`evalset.py`); every document is normalised and
hashed the same way, in batches, with numpy (a document longer than a batch in pieces, with the same result);
a document position whose gram is in the set is a match. Matched grams cover words, covered words mark their
paragraphs (`text.paragraph_spans`: a line with content), and the document is contaminated when it has at
least `min_overlap` matches. Attributes, written like tag's and dedup's
(`attributes.write_attribute_shard`), so `mix` can drop documents or mask paragraphs:

    <exp>__decontam__contaminated            [[0, len, 1.0 | 0.0]]
    <exp>__decontam__overlap_ngrams          [[0, len, matched gram positions]]
    <exp>__decontam__overlap_fraction        [[0, len, words covered by matches / words]]
    <exp>__decontam__contaminated_paragraph  [[start, end, 1.0], …]  (contaminated documents; absent if none)

Beside the attributes: `attributes_schema.json`, `decontaminate_summary.json` (documents in = kept +
removed + rejected, removed = contaminated), and `decontamination_report.json` (leaked documents per source:
id, file and line, which evaluation file, matched grams, a snippet of the first contaminated paragraph).
"""

from __future__ import annotations

import functools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.text import Text

from dolma_kit import storage
from dolma_kit.analysis.decontam_index import index_counts, index_lines
from dolma_kit.analysis.evalset import EvalSet, build_eval_set, normalize_paragraphs, normalized_pieces
from dolma_kit.attributes import SCHEMA_NAME, Attributes, attribute_tasks, write_attribute_shard
from dolma_kit.dedup.minhash import shingle_hashes
from dolma_kit.documents import Document, DocumentReader, dumps
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import (
    ExecutorConfig,
    RunResult,
    ShardStats,
    ShardTask,
    run_shards,
    summary_table,
    write_summary,
)
from dolma_kit.stages import Outcome, Stage, counts_of
from dolma_kit.text import paragraph_spans

PRODUCER = "decontam"
SUMMARY_NAME = "decontaminate_summary.json"
REPORT_NAME = "decontamination_report.json"
STATE_NAME = "decontam_state.json"
REMOVAL_REASON = "contaminated"
BATCH_CHARS = 1 << 20
PIECE_CHARS = 1 << 16
"""A document longer than a batch is matched this many characters at a time (a batch's, if fewer): a piece
takes a few MB and its arrays stay in cache (10 M characters: 1.2 s, against 2.1 s as one text)."""


@dataclass(kw_only=True)
class DecontamConfig:
    """Everything `dolma-kit decontaminate` needs; the CLI fills it, and pipelines will too."""

    eval: list[str]
    """Evaluation files (globs, URLs): JSON Lines (.gz/.zst), parquet, or plain .txt."""
    documents: list[str]
    """Document shards: paths, globs or URLs."""
    experiment: str
    """Attribute folder and the first part of every attribute name."""
    ngram: int = 13
    """Words per gram (13 as GPT-3 and OLMo)."""
    eval_field: str = "text"
    """Field (JSON Lines, `a.b` for nested) or column (parquet) holding the evaluation text."""
    min_words: int = 8
    """Evaluation texts with fewer words are skipped; between this and `ngram` words, one gram of all words."""
    min_overlap: int = 1
    """Matched grams a document needs to count as contaminated."""
    destination: str | None = None
    """Attribute root; default: the `documents/` folder's sibling `attributes/<experiment>/`."""
    work_dir: str | None = None
    """Intermediate files (eval set, per-shard leak lists); default `<attribute root>/_work/decontam/`."""
    processes: int | None = None
    skip_bad: bool = False
    force: bool = False
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    """Local processes (default) or a Ray cluster."""
    report_limit: int = 1000
    """Leaked documents listed per source in the report (counts are always complete)."""
    snippet_chars: int = 240
    batch_chars: int = BATCH_CHARS
    """Characters of documents hashed per numpy batch (memory ≈ 60 bytes per character of a batch); a longer
    document is matched on its own, in pieces (`match_long_document`). Results do not depend on it."""
    index: str | None = None
    """A tokenized folder with a suffix-array index (`dolma-kit index`): the report adds, per evaluation file,
    exact corpus counts of its raw word n-grams (`decontam_index`)."""

    def __post_init__(self) -> None:
        if not self.experiment or "__" in self.experiment or "/" in self.experiment:
            raise DolmaKitError(f"--experiment {self.experiment!r}: must be non-empty, without '/' or '__'")
        if self.ngram < 1:
            raise DolmaKitError(f"--ngram {self.ngram}: must be at least 1")
        if not 1 <= self.min_words <= self.ngram:
            raise DolmaKitError(f"--min-words {self.min_words}: must be in 1..--ngram ({self.ngram})")
        if self.min_overlap < 1:
            raise DolmaKitError(f"--min-overlap {self.min_overlap}: must be at least 1")
        if not self.eval:
            raise DolmaKitError("--eval: give at least one evaluation file")

    def names(self) -> dict[str, str]:
        prefix = f"{self.experiment}__{PRODUCER}__"
        keys = ("contaminated", "overlap_ngrams", "overlap_fraction", "contaminated_paragraph")
        return {k: prefix + k for k in keys}


# --------------------------------------------------------------------------------------------- matching


@dataclass(slots=True)
class Match:
    """What one document shares with the evaluation data."""

    grams: int = 0
    covered_words: int = 0
    words: int = 0
    paragraphs: list[tuple[int, int]] = field(default_factory=list)
    """Contaminated paragraph spans (start, end) in the original text."""
    eval_files: list[int] = field(default_factory=list)


def match_documents(
    texts: list[str], evals: EvalSet, ngram: int, *, max_chars: int = BATCH_CHARS
) -> list[Match]:
    """Match raw texts against the evaluation set, in one batch; a text longer than `max_chars` is matched on
    its own, in pieces of `PIECE_CHARS` (`match_long_document`: the same Match, in memory a piece bounds)."""
    long = [i for i, text in enumerate(texts) if len(text) > max_chars]
    if not long:
        return _match_batch(texts, evals)
    short = [i for i, text in enumerate(texts) if len(text) <= max_chars]
    out: list[Match] = [Match()] * len(texts)
    for i, m in zip(short, _match_batch([texts[i] for i in short], evals), strict=True):
        out[i] = m
    for i in long:
        out[i] = match_long_document(texts[i], evals, min(max_chars, PIECE_CHARS))
    return out


def _match_batch(texts: list[str], evals: EvalSet) -> list[Match]:
    """A batch of raw texts against the evaluation set, all documents at once per gram length.

    Words are those of each paragraph's normalised text, in order, so a matched gram's words map back to the
    paragraphs they came from (a gram across a paragraph break marks both).
    """
    norms: list[str] = []
    para_spans: list[list[tuple[int, int]]] = []
    para_words: list[int] = []
    for text in texts:
        spans = paragraph_spans(text)
        normalized = normalize_paragraphs(text, spans)
        para_spans.append(spans)
        para_words += [n.count(" ") + 1 if n else 0 for n in normalized]  # one space between normalised words
        norms.append(" ".join(n for n in normalized if n))
    n_docs = len(texts)
    if n_docs == 0:
        return []
    pw = np.array(para_words, dtype=np.int64)
    paras_per_doc = np.array([len(s) for s in para_spans], dtype=np.int64)
    para_doc = np.repeat(np.arange(n_docs), paras_per_doc)
    words = np.bincount(para_doc, weights=pw, minlength=n_docs).astype(np.int64)
    word_start = np.concatenate(([0], np.cumsum(words)))
    total_words = int(word_start[-1])
    para_of_word = np.repeat(np.arange(len(pw)), pw)
    grams = np.zeros(n_docs, dtype=np.int64)
    cover = np.zeros(total_words + 1, dtype=np.int64)  # difference array over all words of the batch
    doc_files: list[np.ndarray] = []
    for length in evals.lengths:
        h, counts = shingle_hashes(norms, length, full=True)
        doc = np.repeat(np.arange(n_docs), counts)
        offset = np.arange(len(h)) - np.repeat(np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        valid = words[doc] >= length  # a shorter document's one all-words gram is not a `length`-gram
        hit, idx = evals.lookup(h[valid])
        hit_doc, first = doc[valid][hit], (word_start[doc] + offset)[valid][hit]
        grams += np.bincount(hit_doc, minlength=n_docs)
        np.add.at(cover, first, 1)
        np.add.at(cover, first + length, -1)
        doc_files.append(np.stack([hit_doc, evals.files[idx].astype(np.int64)], axis=1))
    covered = np.cumsum(cover[:-1]) > 0
    word_doc = np.repeat(np.arange(n_docs), words)
    covered_words = np.bincount(word_doc[covered], minlength=n_docs)
    para_hit = np.bincount(para_of_word[covered], minlength=len(pw)) > 0
    pairs = np.unique(np.concatenate(doc_files), axis=0) if doc_files else np.zeros((0, 2), dtype=np.int64)
    out = []
    para_first = np.concatenate(([0], np.cumsum(paras_per_doc)))
    for d in range(n_docs):
        if not grams[d]:
            out.append(Match(words=int(words[d])))
            continue
        hits = np.flatnonzero(para_hit[para_first[d] : para_first[d + 1]])
        files = pairs[pairs[:, 0] == d, 1].tolist()
        out.append(
            Match(
                int(grams[d]), int(covered_words[d]), int(words[d]), [para_spans[d][i] for i in hits], files
            )
        )
    return out


def match_long_document(text: str, evals: EvalSet, max_chars: int) -> Match:
    """`match_documents([text], …)[0]` of a long text, in memory that follows `max_chars`, not the text.

    The text is read in pieces of about `max_chars` characters (`normalized_pieces`), whose paragraphs'
    normalised words, in order, are the whole text's. Each piece's words are hashed behind the `longest - 1`
    words before them (the carried words) and only grams that end in the piece's own words count, so every
    gram is found once, hashed from its own bytes, as in the whole text. A gram marks words up to `longest - 1`
    back, so carried words keep their marks and are settled (counted, their paragraphs listed) only when they
    are no longer carried.
    """
    keep = max(evals.lengths) - 1
    grams = covered = words = 0
    files: set[int] = set()
    paragraphs: list[tuple[int, int]] = []
    tail = ""  # the carried words, normalised, as in the piece before
    tail_span = np.zeros((0, 2), dtype=np.int64)  # [words, 2]: each carried word's paragraph (start, end)
    tail_hit = np.zeros(0, dtype=bool)
    for norms, spans in normalized_pieces(text, max_chars):
        counts = np.array([n.count(" ") + 1 for n in norms], dtype=np.int64)  # one space between words
        words += int(counts.sum())
        window = " ".join([tail, *norms] if tail else norms)
        span = np.concatenate((tail_span, np.repeat(np.array(spans, dtype=np.int64), counts, axis=0)))
        n, before = len(span), len(tail_span)
        cover = np.zeros(n + 1, dtype=np.int64)
        for length in evals.lengths:
            if n < length:  # then the whole text so far is shorter: no `length`-gram ends here
                continue
            h, _ = shingle_hashes([window], length, full=True)
            first = max(before - length + 1, 0)  # earlier grams lie in the carried words: counted before
            hit, idx = evals.lookup(h[first:])
            at = first + np.flatnonzero(hit)
            grams += len(at)
            files.update(evals.files[idx].tolist())
            np.add.at(cover, at, 1)
            np.add.at(cover, at + length, -1)
        hit_words = np.cumsum(cover[:-1]) > 0
        hit_words[:before] |= tail_hit
        settled = n - min(keep, n)
        covered += int(hit_words[:settled].sum())
        _add_paragraphs(paragraphs, span[:settled][hit_words[:settled]])
        cut = len(window)
        for _ in range(n - settled):  # the last `keep` words start after the keep-th space from the end
            cut = window.rfind(" ", 0, cut)
        tail, tail_span, tail_hit = window[cut + 1 :], span[settled:], hit_words[settled:]
    covered += int(tail_hit.sum())
    _add_paragraphs(paragraphs, tail_span[tail_hit])
    if not grams:
        return Match(words=words)
    return Match(grams, covered, words, paragraphs, sorted(files))


def _add_paragraphs(paragraphs: list[tuple[int, int]], spans: np.ndarray) -> None:
    """Append the paragraph spans of covered words ([k, 2], in text order) not listed yet."""
    for start, end in spans[np.unique(spans[:, 0], return_index=True)[1]].tolist():
        if not paragraphs or paragraphs[-1][0] != start:
            paragraphs.append((start, end))


class _Lookahead:
    """`attributes_of` for write_attribute_shard, computed in batches read ahead through a second reader.

    write_attribute_shard hands over one document at a time; matching pays off on batches. A second reader of
    the same shard runs ahead by one batch, and each call pops the next result, checked against the document
    it is asked about. Only results are kept, not documents: the next batch is read when the last result is
    handed out (the first on construction), before the writer reads on, and the reader is stepped one document
    past the batch before matching (a reader holds the document it handed out last), so a long document is
    not held twice, once per reader, while the writer reads it. Contaminated documents are collected for the
    report.
    """

    def __init__(self, task: ShardTask, config: DecontamConfig, evals: EvalSet) -> None:
        self.config = config
        self.evals = evals
        self.names = config.names()
        self.docs = iter(DocumentReader(task.input, on_bad=(lambda exc: None) if config.skip_bad else None))
        self.upcoming: Document | None = next(self.docs, None)
        self.ready: deque[tuple[str, int, Match]] = deque()
        self.leaks: list[dict[str, Any]] = []
        self._fill()

    def _fill(self) -> None:
        keys: list[tuple[str, int]] = []
        texts: list[str] = []
        size = 0
        while self.upcoming is not None and size < self.config.batch_chars:
            keys.append((self.upcoming.id, self.upcoming.line))
            texts.append(self.upcoming.text)
            size += len(texts[-1])
            self.upcoming = next(self.docs, None)
        matches = match_documents(texts, self.evals, self.config.ngram, max_chars=self.config.batch_chars)
        self.ready.extend((i, line, m) for (i, line), m in zip(keys, matches, strict=True))

    def __call__(self, doc: Document) -> Attributes:
        ahead_id, ahead_line, m = self.ready.popleft()
        assert (ahead_id, ahead_line) == (doc.id, doc.line), "the look-ahead reader lost step"
        n, names = len(doc.text), self.names
        contaminated = m.grams >= self.config.min_overlap
        attributes: Attributes = {
            names["contaminated"]: [[0, n, 1.0 if contaminated else 0.0]],
            names["overlap_ngrams"]: [[0, n, float(m.grams)]],
            names["overlap_fraction"]: [[0, n, m.covered_words / m.words if m.words else 0.0]],
        }
        if contaminated:
            attributes[names["contaminated_paragraph"]] = [[s, e, 1.0] for s, e in m.paragraphs]
            s, e = m.paragraphs[0] if m.paragraphs else (0, n)
            snippet = doc.text[s:e]
            if len(snippet) > self.config.snippet_chars:
                snippet = snippet[: self.config.snippet_chars] + "…"
            self.leaks.append(
                {
                    "id": doc.id,
                    "source": doc.source,
                    "file": doc.path,
                    "line": doc.line,
                    "eval_files": [self.evals.paths[i] for i in m.eval_files],
                    "matched_ngrams": m.grams,
                    "overlap_fraction": round(m.covered_words / m.words, 4),
                    "snippet": snippet,
                }
            )
        if not self.ready:
            self._fill()
        return attributes


_EVAL_CACHE: dict[str, EvalSet] = {}


def decontaminate_shard(
    task: ShardTask, stats: ShardStats, *, config: DecontamConfig, eval_dir: str, work: str
) -> None:
    """One document shard → its attribute file, and the list of its leaked documents (in `work`)."""
    if eval_dir not in _EVAL_CACHE:
        _EVAL_CACHE[eval_dir] = EvalSet.load(eval_dir)
    attributes_of = _Lookahead(task, config, _EVAL_CACHE[eval_dir])
    name = config.names()["contaminated"]

    def removal(attributes: Attributes) -> str | None:
        return REMOVAL_REASON if attributes[name][0][2] >= 0.5 else None

    write_attribute_shard(task, stats, attributes_of, skip_bad=config.skip_bad, removal=removal)
    storage.write_text(_leaks_path(work, task), json.dumps(attributes_of.leaks, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------- driver


@dataclass(slots=True)
class DecontamResult:
    run: RunResult
    report: dict[str, Any]
    report_paths: list[str]


def _leaks_path(work: str, task: ShardTask) -> str:
    return storage.join(work, "leaks", task.key + ".json")


def _check_state(work: str, state: dict[str, Any], force: bool) -> None:
    """Attribute files of one run must come from one evaluation set: refuse to mix in another's."""
    path = storage.join(work, STATE_NAME)
    if not force and storage.exists(path):
        have = json.loads(storage.read_text(path))
        if have != state:
            raise DolmaKitError(
                f"{path}: the attributes there were made with other evaluation data or settings ({have}); "
                "pass --force to redo them, or use another --experiment"
            )
    storage.write_text(path, json.dumps(state, indent=1) + "\n")


def build_report(
    config: DecontamConfig, evals: EvalSet, tasks: list[ShardTask], work: str, result: RunResult
) -> dict[str, Any]:
    """Leaked documents per source (up to `report_limit` listed each), with the evaluation set's numbers."""
    per_source: dict[str, dict[str, Any]] = {}
    shard_stats = {s.shard: s for s in result.shards}
    for task in tasks:
        folder = task.key.split("/", 1)[0] if "/" in task.key else ""
        slot = per_source.setdefault(folder, {"documents": 0, "contaminated": 0, "leaks": []})
        slot["documents"] += shard_stats[task.key].kept + shard_stats[task.key].removed
        path = _leaks_path(work, task)
        if not storage.exists(path):
            raise DolmaKitError(
                f"{path}: missing (the work folder was cleaned?); pass --force to redo the shards"
            )
        for leak in json.loads(storage.read_text(path)):
            target = per_source.setdefault(leak["source"], {"documents": 0, "contaminated": 0, "leaks": []})
            target["contaminated"] += 1
            if len(target["leaks"]) < config.report_limit:
                target["leaks"].append(leak)
    total = result.total
    return {
        "experiment": config.experiment,
        "ngram": config.ngram,
        "min_words": config.min_words,
        "min_overlap": config.min_overlap,
        "eval_files": [{"path": p, **s} for p, s in zip(evals.paths, evals.per_file, strict=True)],
        "eval_ngrams": len(evals.hashes),
        "gram_lengths": evals.lengths,
        "documents": total.kept + total.removed,
        "contaminated": total.removed_by.get(REMOVAL_REASON, 0),
        "rejected": total.rejected,
        "per_source": dict(sorted(per_source.items())),
    }


def decontaminate(config: DecontamConfig, **run_options: Any) -> DecontamResult:
    """Build the evaluation set, mark every shard, write schema, summary and report per attribute root."""
    eval_paths = [f.path for f in storage.expand(config.eval)]
    tasks = sorted(
        attribute_tasks(config.documents, config.experiment, config.destination), key=lambda t: t.key
    )
    roots = sorted({t.root for t in tasks})
    work = config.work_dir or storage.join(roots[0], "_work", "decontam")
    evals = build_eval_set(
        eval_paths, field=config.eval_field, ngram=config.ngram, min_words=config.min_words
    )
    eval_dir = storage.join(work, f"eval-{evals.digest()}")
    evals.save(eval_dir)
    state = {
        "eval": evals.digest(),
        "eval_files": eval_paths,
        "ngram": config.ngram,
        "min_words": config.min_words,
        "min_overlap": config.min_overlap,
    }
    _check_state(work, state, config.force)
    fn = functools.partial(decontaminate_shard, config=config, eval_dir=eval_dir, work=work)
    run_options = {"executor": config.executor, **run_options}
    result = run_shards(
        fn, tasks, title="decontaminate", processes=config.processes, force=config.force, **run_options
    )
    report = build_report(config, evals, tasks, work, result)
    if config.index is not None:
        report["index_counts"] = index_counts(
            config.index, eval_paths, field=config.eval_field, ngram=config.ngram, min_words=config.min_words
        )
    schema = {
        "experiment": config.experiment,
        "decontam": {
            "ngram": config.ngram,
            "eval_field": config.eval_field,
            "min_words": config.min_words,
            "min_overlap": config.min_overlap,
            "eval_files": eval_paths,
            "attributes": sorted(config.names().values()),
        },
    }
    paths = []
    for root in roots:
        storage.write_text(storage.join(root, SCHEMA_NAME), dumps(schema) + "\n")
        write_summary(result, storage.join(root, SUMMARY_NAME))
        paths.append(storage.join(root, REPORT_NAME))
        storage.write_text(paths[-1], json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return DecontamResult(result, report, paths)


# --------------------------------------------------------------------------------------------- stage


def _render(config: DecontamConfig, result: DecontamResult) -> list[Any]:
    report = result.report  # too-short eval texts are said on screen: "0 contaminated" is not "clean" then
    short = sum(f.get("texts_skipped_short", 0) for f in report["eval_files"])
    return [
        summary_table(result.run, marks=STAGE.marks),
        Text(
            f"{report['eval_ngrams']:,} evaluation n-grams from {len(report['eval_files'])} file(s); "
            f"{report['contaminated']:,} of {report['documents']:,} documents contaminated\n"
            f"{short:,} evaluation texts skipped as shorter than --min-words {config.min_words}\n"
            + index_lines(report)
            + "\n".join(f"report: {p}" for p in result.report_paths)
        ),
    ]


def _outcome(config: DecontamConfig, result: DecontamResult) -> Outcome:
    extra = {"experiment": config.experiment, "contaminated": result.report.get("contaminated")}
    return Outcome(counts_of(result.run), extra)


STAGE = Stage(
    name="decontaminate",
    config=DecontamConfig,
    run=decontaminate,
    outcome=_outcome,
    render=_render,
    proofs=lambda c: [t.marker for t in attribute_tasks(c.documents, c.experiment, c.destination)],
    marks="contaminated documents",
)
