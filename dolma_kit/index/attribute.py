"""Which parts of a text occur verbatim in the training data, where, and when the model was trained on them.

The spans are OLMoTrace's (Liu et al. 2025): for every position i of the text, the longest token sequence
starting at i that occurs in the corpus, L(i); a span [i, i + L(i)) is *maximal* when no span starting
earlier contains it (i + L(i) > i - 1 + L(i - 1)); spans shorter than `min_len` tokens are dropped, and the
rest are ranked by rarity, the sum of the log unigram probabilities of their tokens (lowest first: a long
span of rare tokens is the strongest sign of verbatim learning). Since L(i + 1) ≥ L(i) - 1, one pass with two
pointers finds every L(i) with at most 2·n exact counts, each a binary search of the suffix array.
The EOS id never occurs inside a span (documents are separated by it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dolma_kit.index.engine import TokenIndexError
from dolma_kit.index.schedule import Schedule, Seen
from dolma_kit.index.store import Occurrence, TokenIndex


@dataclass(slots=True)
class Span:
    """One maximal span of the text found in the corpus."""

    start: int
    """First token of the span in the text's token ids."""
    end: int
    """Exclusive."""
    text: str | None
    count: int
    """Occurrences in the corpus."""
    rarity: float
    """Sum of log unigram probabilities of its tokens (lower: rarer; spans are ranked by it)."""
    occurrences: list[Occurrence] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    """With a run: per occurrence, when it was trained on."""


def longest_matches(index: TokenIndex, ids: list[int]) -> list[int]:
    """L(i) for every position: the length of the longest prefix of ids[i:] that occurs in the corpus."""
    n = len(ids)
    lengths = [0] * n
    end = 0
    for i in range(n):
        end = max(end, i)
        while end < n and ids[end] != index.eos_id and index.count(ids[i : end + 1]) > 0:
            end += 1
        lengths[i] = end - i
    return lengths


def maximal_spans(lengths: list[int], min_len: int) -> list[tuple[int, int]]:
    """The [i, i + L(i)) not contained in an earlier span, of at least `min_len` tokens."""
    spans, reach = [], 0
    for i, length in enumerate(lengths):
        if length and i + length > reach:
            reach = i + length
            if length >= min_len:
                spans.append((i, i + length))
    return spans


def attribute(
    index: TokenIndex,
    ids: list[int],
    *,
    min_len: int = 4,
    max_spans: int = 10,
    docs: int = 5,
    schedule: Schedule | None = None,
) -> list[Span]:
    """The `max_spans` rarest maximal spans of `ids` with up to `docs` occurrences each (module doc)."""
    if min_len < 1:
        raise TokenIndexError(f"--min-len must be at least 1, got {min_len}")
    if not ids:
        return []
    index.check([t for t in ids if t != index.eos_id] or [0])  # ids in range (EOS is allowed: it cuts)
    spans = []
    for start, end in maximal_spans(longest_matches(index, ids), min_len):
        piece = ids[start:end]
        spans.append(Span(start, end, index.decode(piece), index.count(piece), index.unigram_logprob(piece)))
    spans.sort(key=lambda s: (s.rarity, s.start))
    spans = spans[:max_spans]
    for span in spans:
        _, span.occurrences = index.find(ids[span.start : span.end], limit=docs)
        if schedule is not None:
            span.seen = schedule.seen(span.occurrences)
    return spans


@dataclass(slots=True)
class Attribution:
    """What `dolma-kit trace-output` reports: the text, its tokens, and its spans."""

    prompt: str | None
    text: str
    ids: list[int]
    spans: list[Span]
    checkpoint: int | None = None
    """The step of the checkpoint that generated the text, or that a given text is compared with: a span
    trained on only after it was not learned from these documents by then."""
    run: str | None = None


def generate(
    run: str | Path, prompt_ids: list[int], *, checkpoint: int | None, new_tokens: int, eos_id: int
) -> tuple[list[int], int]:
    """Greedy continuation of `prompt_ids` by the run's checkpoint (the newest when None), stopping at EOS:
    (the new ids, the checkpoint's step). Imports the trainer (torch) only here."""
    import torch

    from train.memorization import greedy_continue
    from train.weights import load_model

    if not prompt_ids:
        raise TokenIndexError("--prompt encodes to no tokens")
    cfg, model, step = load_model(run, checkpoint, "cpu")
    window = cfg.data.seq_len
    seq = torch.tensor([prompt_ids[-window:]], dtype=torch.long)
    out: list[int] = []
    vocab = int(cfg.model.vocab_size or 0)
    for _ in range(new_tokens):
        nxt = int(greedy_continue(model, seq[:, -window:], 1, vocab)[0, 0])
        if nxt == eos_id:
            break
        out.append(nxt)
        seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
    return out, step


def trace_output(
    index: TokenIndex,
    *,
    text: str | None = None,
    prompt: str | None = None,
    run: str | Path | None = None,
    checkpoint: int | None = None,
    new_tokens: int = 64,
    min_len: int = 4,
    max_spans: int = 10,
    docs: int = 5,
) -> Attribution:
    """Attribute `text`, or the run's continuation of `prompt` (the generated part only), to the corpus."""
    if (text is None) == (prompt is None):
        raise TokenIndexError("give exactly one of --prompt TEXT (the model generates) or --text TEXT")
    schedule = Schedule(run, index.tokenized.path) if run is not None else None
    step = checkpoint
    if text is not None:
        ids = index.encode(text)
    else:
        if run is None:
            raise TokenIndexError("--prompt needs the RUN whose model generates")
        prompt_ids = index.encode(prompt or "")
        ids, step = generate(
            run, prompt_ids, checkpoint=checkpoint, new_tokens=new_tokens, eos_id=index.eos_id
        )
        text = index.decode(ids) or ""
    spans = attribute(index, ids, min_len=min_len, max_spans=max_spans, docs=docs, schedule=schedule)
    return Attribution(prompt, text, ids, spans, step, None if run is None else str(run))
