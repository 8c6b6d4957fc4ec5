"""A seeded corpus with planted near-duplicates and hard negatives, and its exact ground truth.

Near-duplicate detection can only be scored against pairs whose true similarity is known, so every
planted pair records the exact Jaccard of its word 5-gram sets, computed on the same normalised words the
tools shingle (`dolma_kit.dedup.normalize.normalize_text`, then a whitespace split). Three kinds of
document, shuffled across 2 sources and several shards:

- singles: unrelated ~2 KB English-like pages (a large written vocabulary drawn word by word, so two
  unrelated pages share essentially no 5-gram);
- pairs: a base page and one variant edited (word substitutions, insertions, deletions, paragraph swaps)
  until its Jaccard to the base is as close as possible to a target drawn uniformly from 0.3-1.0, so the
  whole S-curve is sampled. One variant per base keeps every pair independent: recall can then be compared
  with the S-curve pair by pair, with no transitive merges in the truth;
- hard negatives: groups of distinct pages that share a long identical header and footer (~45% of the
  words), like pages of one site. Their pairwise Jaccard (~0.3) is recorded and stays well below any
  sensible threshold, so any merge among them is wrong.

Every family draws from its own `random.Random("<seed>:<kind>:<index>")` (string seeds hash with SHA-512,
so no PYTHONHASHSEED dependence): the same arguments give byte-identical shards.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import random
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from dolma_kit.dedup.normalize import normalize_text

GENERATOR_VERSION = 1
NGRAM = 5
SOURCES = ("web", "forum")

_NOUNS = """
time year people way day man woman child world life hand part place case week company system program question
work government number night point home water room mother area money story fact month lot right study book eye
job word business issue side kind head house service friend father power hour game line end member law car city
community name president team minute idea kid body information back parent face level office door health person
art war history party result change morning reason research girl guy moment air teacher force education foot boy
age policy process music market sense nation plan college interest death experience effect class control field
development role effort rate heart drug show leader light voice wife police mind price report decision son view
relationship town road arm difference value building action model season society tax director position player
record paper space ground form event official matter center couple site project activity star table need court
oil situation cost industry figure street image phone data picture practice piece land product doctor wall
patient worker news test movie north love support technology step baby computer type attention film tree source
organization hair window evidence population river garden bridge kitchen village island forest valley harbor
library museum station engine signal network journal garment recipe climate harvest council budget contract
factory tunnel circuit ceremony festival mountain desert ocean planet theory method sample measure feature
pattern surface volume lantern orchard canal meadow pottery ledger quarry satchel vessel compass beacon glacier
chamber corridor balcony cellar pasture furnace anchor saddle chisel needle thread barrel cradle ribbon velvet
marble copper timber granite pebble crystal feather shadow whisper rumor verdict treaty charter pamphlet ballad
sonnet riddle puzzle ladder basket blanket candle carpet cottage fountain gallery helmet jacket kettle lagoon
monastery nursery parcel quilt rooftop scaffold terrace umbrella vineyard warehouse yacht zeppelin abbey bakery
cabinet dungeon estuary ferry greenhouse hangar inlet jetty kiosk lighthouse mansion niche observatory pavilion
"""

_VERBS = """
built changed found made kept left brought began seemed helped showed heard played moved lived believed held
wrote provided sat stood lost paid met included continued set learned led understood watched followed stopped
created spoke read allowed added spent grew opened walked offered remembered considered appeared bought waited
served sent expected stayed fell reached remained suggested raised passed sold required reported decided pulled
described explained developed carried broke received agreed supported hit produced covered caught drew chose
designed measured visited planned repaired collected reviewed improved launched painted polished gathered
borrowed traded sketched carved mended wrapped folded stitched hammered lifted tossed guarded rescued praised
questioned admired ignored doubted trusted welcomed greeted thanked warned taught studied copied printed
signed sealed buried hid sorted counted weighed tested tasted smelled touched noticed described
"""

_ADJECTIVES = """
other new good high old great big small large national young different long little important political bad
white real best right social only public sure low early able human local late hard major better economic strong
possible whole free military true federal international full special easy clear recent certain personal open red
difficult available likely short single medical current wrong private past foreign fine common poor natural
significant similar hot central happy serious ready simple physical general environmental financial blue dark
various entire close legal religious cold final main green nice huge popular traditional cultural quiet narrow
ancient modern rural urban careful bright gentle rusty dusty silent golden hollow crooked fragile humble eager
brave clever curious fierce grumpy jolly lively nervous proud silly tender wicked witty zealous amber crimson
scarlet violet frosty misty muddy rocky sandy stormy sunny windy wooden woolen leather silver
"""


def _words(text: str) -> list[str]:
    """Word lists are written as text blocks: easier to read and extend than hundreds of quoted literals."""
    return text.split()


_ADVERBS = _words(
    "quickly slowly recently finally often rarely usually clearly nearly simply quietly carefully"
)
_DETERMINERS = _words("the the the a a this that their its our each every some another")
_PREPOSITIONS = _words("of of in in to for with on at from by about into through after over between")
_CONJUNCTIONS = ["and", "but", "because", "while", "although", "so", "and then"]
_SUBJECTS = ["they", "we", "she", "he", "it", "people", "most of them", "the others"]
NOUNS, VERBS, ADJECTIVES = _words(_NOUNS), _words(_VERBS), _words(_ADJECTIVES)
VOCAB = NOUNS + VERBS + ADJECTIVES


def _phrase(rng: random.Random) -> list[str]:
    words = [rng.choice(_DETERMINERS)]
    if rng.random() < 0.5:
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(NOUNS))
    if rng.random() < 0.3:
        words += [rng.choice(_PREPOSITIONS), rng.choice(_DETERMINERS), rng.choice(NOUNS)]
    return words


def sentence(rng: random.Random) -> list[str]:
    """One sentence as words: subject, verb, object, optional phrases; capitalised, ending with `.`."""
    words = _phrase(rng) if rng.random() < 0.7 else rng.choice(_SUBJECTS).split()
    if rng.random() < 0.15:
        words.append(rng.choice(_ADVERBS))
    words += [rng.choice(VERBS), *_phrase(rng)]
    for _ in range(rng.choice((0, 1, 1, 2))):
        words += [rng.choice(_PREPOSITIONS), *_phrase(rng)]
    if rng.random() < 0.4:
        words[-1] += ","
        words += [*rng.choice(_CONJUNCTIONS).split(), *rng.choice(_SUBJECTS).split(), rng.choice(VERBS)]
        words += _phrase(rng)
    words[0] = words[0].capitalize()
    words[-1] += "."
    return words


def paragraphs(rng: random.Random, chars: int) -> list[list[str]]:
    """Paragraphs (lists of words) of 3-5 sentences until the text is about `chars` characters long."""
    out: list[list[str]] = []
    size = 0
    while size < chars:
        para = [w for _ in range(rng.randint(3, 5)) for w in sentence(rng)]
        out.append(para)
        size += sum(len(w) + 1 for w in para) + 1
    return out


def render(paras: list[list[str]]) -> str:
    return "\n\n".join(" ".join(p) for p in paras)


def shingles(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    """The word n-gram set both the truth and the tools are about (a text shorter than n: one shingle)."""
    words = normalize_text(text).split()
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _edit(rng: random.Random, paras: list[list[str]], ops: list[tuple]) -> list[list[str]]:
    """Apply a prefix of an edit script to a copy of `paras` (positions are taken modulo current sizes)."""
    out = [list(p) for p in paras]
    for op, x, y, word in ops:
        if op == "swap" and len(out) > 1:
            i, j = x % len(out), y % len(out)
            out[i], out[j] = out[j], out[i]
            continue
        para = out[x % len(out)]
        k = y % len(para)
        tail = para[k][len(para[k].rstrip(".,")) :]  # keep the sentence's punctuation where it was
        if op == "sub":
            para[k] = word + tail
        elif op == "ins":
            para.insert(k, word)
        elif op == "del" and len(para) > 5:
            del para[k]
            if tail and k > 0:
                para[k - 1] = para[k - 1].rstrip(".,") + tail
    return out


def near_duplicate(rng: random.Random, base: list[list[str]], target: float) -> tuple[list[list[str]], float]:
    """A variant of `base` whose exact 5-gram Jaccard to it is as close to `target` as edits allow.

    One random edit script is drawn; the length of its applied prefix is found by bisection (Jaccard falls
    almost monotonically as edits accumulate), then the closest of the neighbouring prefixes is kept.
    """
    base_set = shingles(render(base))
    n_words = sum(len(p) for p in base)
    kinds = ["sub"] * 6 + ["ins"] * 2 + ["del"] * 2 + ["swap"]
    script = [
        (rng.choice(kinds), rng.randrange(10**6), rng.randrange(10**6), rng.choice(VOCAB))
        for _ in range(2 * n_words)
    ]

    def j_at(k: int) -> float:
        return jaccard(base_set, shingles(render(_edit(rng, base, script[:k]))))

    lo, hi = 0, len(script)  # j_at(lo) >= target > j_at(hi), approximately
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if j_at(mid) >= target:
            lo = mid
        else:
            hi = mid
    best = min(range(max(0, lo - 2), min(len(script), lo + 3)), key=lambda k: abs(j_at(k) - target))
    variant = _edit(rng, base, script[:best])
    return variant, jaccard(base_set, shingles(render(variant)))


@dataclass(frozen=True)
class DedupCorpusSpec:
    """What to generate; the directory name and the cache check derive from it."""

    docs: int = 20_000
    shards: int = 8
    seed: int = 0
    doc_chars: int = 2_000
    pair_fraction: float = 0.4  # share of documents that are in planted pairs (base + variant)
    hard_negatives: int = 2_000
    group_size: int = 20
    shared_fraction: float = 0.45  # share of a hard negative's words in the header + footer
    j_low: float = 0.3
    j_high: float = 1.0
    version: int = GENERATOR_VERSION

    def dirname(self) -> str:
        return f"dedup-corpus-{self.docs}d-{self.shards}s-seed{self.seed}"


def _pair(spec: DedupCorpusSpec, i: int) -> tuple[str, str, float, float]:
    rng = random.Random(f"{spec.seed}:pair:{i}")
    base = paragraphs(rng, spec.doc_chars)
    target = rng.uniform(spec.j_low, spec.j_high)
    variant, j = near_duplicate(rng, base, target)
    return render(base), render(variant), target, j


def _group(spec: DedupCorpusSpec, g: int, size: int) -> tuple[list[str], list[float]]:
    rng = random.Random(f"{spec.seed}:group:{g}")
    shared = int(spec.doc_chars * spec.shared_fraction / 2)
    header, footer = paragraphs(rng, shared), paragraphs(rng, shared)
    bodies = [paragraphs(rng, int(spec.doc_chars * (1 - spec.shared_fraction))) for _ in range(size)]
    texts = [render(header + body + footer) for body in bodies]
    sets = [shingles(t) for t in texts]
    return texts, [jaccard(a, b) for a, b in combinations(sets, 2)]


def _single(spec: DedupCorpusSpec, i: int) -> str:
    return render(paragraphs(random.Random(f"{spec.seed}:single:{i}"), spec.doc_chars))


def ensure_dedup_corpus(spec: DedupCorpusSpec, out: Path, processes: int) -> tuple[Path, bool]:
    """Generate `out/<spec.dirname()>` (documents + truth.json) unless a matching one exists.

    Returns (root, reused). truth.json is written last, so its presence with the same spec means complete.
    """
    root = out / spec.dirname()
    truth_path = root / "truth.json"
    if truth_path.exists() and json.loads(truth_path.read_text()).get("spec") == asdict(spec):
        return root, True
    n_pairs = int(spec.docs * spec.pair_fraction) // 2
    n_groups = spec.hard_negatives // spec.group_size
    n_single = spec.docs - 2 * n_pairs - n_groups * spec.group_size
    if n_single < 0:
        raise ValueError(
            f"{spec.docs} documents cannot hold {n_pairs} pairs and {spec.hard_negatives} negatives"
        )
    with ProcessPoolExecutor(max_workers=max(1, processes)) as pool:
        pairs = list(pool.map(_pair, [spec] * n_pairs, range(n_pairs), chunksize=16))
        groups = list(pool.map(_group, [spec] * n_groups, range(n_groups), [spec.group_size] * n_groups))
        singles = list(pool.map(_single, [spec] * n_single, range(n_single), chunksize=64))

    docs: list[tuple[str, str, dict]] = []  # (id, text, metadata)
    truth_pairs, truth_groups = [], []
    for i, (base, variant, target, j) in enumerate(pairs):
        a, b = f"p{i:06d}a", f"p{i:06d}b"
        docs += [(a, base, {"kind": "base"}), (b, variant, {"kind": "variant", "target_jaccard": target})]
        truth_pairs.append({"a": a, "b": b, "jaccard": round(j, 6), "target": round(target, 6)})
    for g, (texts, js) in enumerate(groups):
        ids = [f"h{g:04d}m{m:03d}" for m in range(len(texts))]
        docs += [(d, t, {"kind": "hard_negative", "group": g}) for d, t in zip(ids, texts, strict=True)]
        truth_groups.append({"ids": ids, "max_jaccard": max(js), "mean_jaccard": sum(js) / len(js)})
    docs += [(f"s{i:06d}", t, {"kind": "single"}) for i, t in enumerate(singles)]
    random.Random(f"{spec.seed}:shuffle").shuffle(docs)

    per_source = spec.shards // len(SOURCES)
    with ExitStack() as stack:
        handles = []
        for source in SOURCES:
            (root / "documents" / source).mkdir(parents=True, exist_ok=True)
            for k in range(per_source):
                path = root / "documents" / source / f"part-{k:04d}.jsonl.gz"
                handles.append((source, stack.enter_context(gzip.open(path, "wt", encoding="utf-8"))))
        for n, (doc_id, text, meta) in enumerate(docs):
            source, f = handles[n % len(handles)]
            f.write(json.dumps({"id": doc_id, "text": text, "source": source, "metadata": meta}) + "\n")
    truth = {"spec": asdict(spec), "pairs": truth_pairs, "hard_negative_groups": truth_groups}
    truth_path.write_text(json.dumps(truth) + "\n")
    return root, False


# ------------------------------------------------------------------------------------------ scoring against the truth


def s_curve(j: float, bands: int, rows: int) -> float:
    return 1.0 - (1.0 - j**rows) ** bands


@functools.cache
def _p_verified(j: float, bands: int, rows: int, threshold: float) -> float:
    """P(some band agrees on all rows AND ≥ threshold·b·r values agree), values agreeing independently w.p. j.

    A dynamic programme over bands of (values agreeing so far, some band complete): this is what a
    verifying LSH can find at best, so it is the fair reference for our recall.
    """
    need = math.ceil(threshold * bands * rows - 1e-9)
    per_band = [math.comb(rows, k) * j**k * (1 - j) ** (rows - k) for k in range(rows + 1)]
    state = {(0, False): 1.0}
    for _ in range(bands):
        nxt: dict[tuple[int, bool], float] = defaultdict(float)
        for (agree, full), p in state.items():
            for k, pk in enumerate(per_band):
                nxt[(agree + k, full or k == rows)] += p * pk
        state = nxt
    return sum(p for (agree, full), p in state.items() if full and agree >= need)


def p_candidate_and_verified(j: float, bands: int, rows: int, threshold: float) -> float:
    """`_p_verified` at j rounded to 0.001 (cached: the programme costs ~10 ms a call)."""
    return _p_verified(round(j, 3), bands, rows, threshold)


def score(labels: dict[str, str], truth: dict, threshold: float, texts: dict[str, str]) -> dict[str, Any]:
    """Pairwise precision/recall against the planted truth; hard-negative merges; false positives by J."""
    planted = {(p["a"], p["b"]): p["jaccard"] for p in truth["pairs"]}
    hard = {d: g for g, group in enumerate(truth["hard_negative_groups"]) for d in group["ids"]}
    clusters: dict[str, list[str]] = defaultdict(list)
    for doc_id, label in labels.items():
        clusters[label].append(doc_id)
    predicted = [tuple(sorted(p)) for m in clusters.values() if len(m) > 1 for p in combinations(m, 2)]
    tp = hard_merges = 0
    fp_j: list[float] = []
    for a, b in predicted:
        if a in hard or b in hard:
            hard_merges += 1
        j = planted.get((a, b))
        if j is None:
            j = jaccard(shingles(texts[a]), shingles(texts[b]))
        if j >= threshold:
            tp += 1
        else:
            fp_j.append(j)
    predicted_set = set(predicted)
    true_pairs = [k for k, j in planted.items() if j >= threshold]
    found = sum(1 for k in true_pairs if k in predicted_set)
    return {
        "predicted_pairs": len(predicted),
        "true_positives": tp,
        "precision": tp / len(predicted) if predicted else 1.0,
        "recall": found / len(true_pairs) if true_pairs else 1.0,
        "hard_negative_merges": hard_merges,
        "false_positive_j": sorted(round(j, 3) for j in fp_j),
        "missed": len(true_pairs) - found,
    }
