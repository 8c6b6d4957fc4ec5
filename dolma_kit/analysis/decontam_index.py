"""Exact corpus counts of the evaluation n-grams from a suffix-array index (`decontaminate --index TOKENS`).

Decontamination proper hashes normalised word n-grams of the documents (lowercase, punctuation dropped), so it
finds a leak however it is cased or punctuated. This adds the other view, over what the model is trained on:
for each evaluation text, how many of its word n-grams occur verbatim in the tokenized corpus, and how often.
An n-gram is the text's words `w1 … wn` joined by single spaces after a leading space, encoded with the
corpus's own tokenizer (the mid-sentence form; see docs/content-trace.md), and counted exactly by the index.
"""

from __future__ import annotations

from typing import Any

from dolma_kit.analysis.evalset import iter_eval_texts

#: evaluation texts counted (a few hundred thousand n-grams at most: about 0.3 ms a count on one core)
MAX_TEXTS = 5000


def index_counts(
    tokens: str, eval_paths: list[str], *, field: str, ngram: int, min_words: int
) -> dict[str, Any]:
    """Per evaluation file: texts counted, their n-grams, how many occur in the corpus, and the texts with the
    most n-grams found (up to 20 per file), each with its largest count."""
    from dolma_kit.index.store import TokenIndex

    index = TokenIndex.open(tokens)
    files: list[dict[str, Any]] = []
    budget = MAX_TEXTS
    for path in eval_paths:
        texts = ngrams_checked = ngrams_found = 0
        found: list[dict[str, Any]] = []
        for number, text in enumerate(iter_eval_texts(path, field), 1):
            words = text.split()
            if len(words) < max(ngram, min_words) or budget == 0:
                continue
            budget -= 1
            texts += 1
            counts = [
                index.count(index.encode(" " + " ".join(words[i : i + ngram])))
                for i in range(len(words) - ngram + 1)
            ]
            ngrams_checked += len(counts)
            hits = sum(c > 0 for c in counts)
            ngrams_found += hits
            if hits:
                found.append(
                    {"text": number, "ngrams": len(counts), "in_corpus": hits, "max_count": max(counts)}
                )
        found.sort(key=lambda f: (-f["in_corpus"] / f["ngrams"], f["text"]))
        files.append(
            {
                "file": path,
                "texts": texts,
                "ngrams": ngrams_checked,
                "ngrams_in_corpus": ngrams_found,
                "texts_with_ngrams_in_corpus": len(found),
                "top": found[:20],
            }
        )
    return {"tokens": tokens, "ngram": ngram, "max_texts": MAX_TEXTS, "files": files}


def index_lines(report: dict[str, Any]) -> str:
    """The run's summary lines for `index_counts` in a decontamination report ("" without an index)."""
    counts = report.get("index_counts")
    if not counts:
        return ""
    return "".join(
        f"index: {f['ngrams_in_corpus']:,} of {f['ngrams']:,} n-grams of {f['texts']:,} texts of {f['file']} "
        f"occur verbatim in {counts['tokens']}\n"
        for f in counts["files"]
    )
