"""MinHash signatures, (bands, rows) choice, LSH candidates, verification and clustering (library level)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from dolma_kit.dedup.lsh import (
    ShingleSets,
    Signatures,
    band_keys,
    candidate_pairs,
    connected_components,
    exact_jaccard,
    lsh_and_cluster,
    required_matches,
    synthetic_signatures,
)
from dolma_kit.dedup.minhash import (
    MAX_HASH,
    MinhashConfig,
    SignatureComputer,
    candidate_probability,
    estimated_jaccard,
    fmix32,
    optimal_param,
    permutations,
    shingle_hashes,
    signatures_from_hashes,
    unique_per_document,
)
from dolma_kit.dedup.normalize import normalize_text
from dolma_kit.errors import DolmaKitError

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
WORDS = sorted({"".join(random.Random(i).choices(_LETTERS, k=3 + i % 6)) for i in range(5000)})  # no digits:
# normalize_text maps digits to 0


def random_text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def edit(rng: random.Random, text: str, n_edits: int) -> str:
    """Replace `n_edits` random words: a near duplicate."""
    words = text.split()
    for i in rng.sample(range(len(words)), n_edits):
        words[i] = "edit" + "".join(rng.choices(_LETTERS, k=6))
    return " ".join(words)


def shingles(text: str, n: int = 5) -> list[bytes]:
    words = normalize_text(text).split()
    if not words:
        return []
    return [" ".join(words[i : i + n]).encode() for i in range(max(len(words) - n + 1, 1))]


def jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a)), set(shingles(b))
    return len(sa & sb) / len(sa | sb)


# --------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
@pytest.mark.parametrize("num_perm", [64, 112, 128])
def test_optimal_param_matches_datasketch(threshold: float, num_perm: int) -> None:
    assert optimal_param(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_config_derives_or_validates_bands_and_rows() -> None:
    assert (MinhashConfig(threshold=0.7).bands, MinhashConfig(threshold=0.7).rows) == (12, 9)
    assert MinhashConfig(bands=14, rows=8).bands == 14
    with pytest.raises(DolmaKitError, match="at most --num-perm"):
        MinhashConfig(bands=15, rows=8)
    with pytest.raises(DolmaKitError, match="together"):
        MinhashConfig(bands=14)
    assert candidate_probability(0.0, 14, 8) == 0.0 and candidate_probability(1.0, 14, 8) == 1.0


# --------------------------------------------------------------------------------------------- signatures


def test_shingle_hashes_follow_the_shingle_definition() -> None:
    texts = ["a b c d e f g", "a b", "", "x  y\tz", "c d e f g"]
    hashes, counts = shingle_hashes([normalize_text(t) for t in texts], 5)
    assert counts.tolist() == [3, 1, 0, 1, 1]  # fewer than n words: one shingle; empty: none
    assert hashes[2] == hashes[5]  # "c d e f g" hashes the same wherever it occurs
    alone, _ = shingle_hashes(["c d e f g"], 5)
    assert alone[0] == hashes[5]
    # distinct shingles get distinct hashes (no collisions among 100k random ones)
    rng = random.Random(0)
    texts = [random_text(rng, 1000) for _ in range(100)]
    hashes, _ = shingle_hashes(texts, 5)
    distinct = {s for t in texts for s in shingles(t)}
    assert len(np.unique(hashes)) == len(distinct)


def test_signatures_are_datasketch_minhash_given_the_same_shingle_hashes() -> None:
    """Same permutations and affine32 arithmetic as datasketch: bit-identical for the same 32-bit hashes."""
    rng = random.Random(1)
    texts = [random_text(rng, rng.randrange(1, 400)) for _ in range(20)]
    hashes, counts = shingle_hashes(texts, 5)
    a, b = permutations(112, 42)
    sig = signatures_from_hashes(hashes, counts, a, b, chunk=300)  # small chunks: exercise the splitting
    offsets = np.concatenate(([0], np.cumsum(counts)))
    for i, text in enumerate(texts):
        table = dict(zip(shingles(text), hashes[offsets[i] : offsets[i + 1]].tolist(), strict=True))
        m = MinHash(num_perm=112, seed=42, hashfunc=table.__getitem__)
        for s in table:
            m.update(s)
        assert np.array_equal(m.hashvalues, sig[i])


def test_fmix32_matches_python_integers() -> None:
    def ref(h: int) -> int:
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        return h ^ (h >> 16)

    values = np.array([0, 1, 2**31, 2**32 - 1, 123456789], dtype=np.uint32)
    assert fmix32(values).tolist() == [ref(int(v)) for v in values]


def test_empty_document_has_max_signature_and_is_never_a_candidate() -> None:
    sig = SignatureComputer(MinhashConfig())(["", "   ", "!!! ...", "a real text here"])
    assert (sig[:3] == MAX_HASH).all() and not (sig[3] == MAX_HASH).all()
    keys, valid = band_keys(sig, 0, 9)
    assert valid.tolist() == [False, False, False, True]
    assert len(candidate_pairs(keys, valid, 8)) == 0


def test_estimated_jaccard_tracks_exact_and_datasketch() -> None:
    rng = random.Random(2)
    compute = SignatureComputer(MinhashConfig(num_perm=256, bands=32, rows=8))
    ours, theirs, exact = [], [], []
    for k in range(30):
        base = random_text(rng, 400)
        other = edit(rng, base, 2 + k)
        sig = compute([base, other])
        ours.append(float(estimated_jaccard(sig[0], sig[1])))
        ds = [MinHash(num_perm=256, seed=7) for _ in range(2)]
        for m, t in zip(ds, (base, other), strict=True):
            m.update_batch(shingles(t))
        theirs.append(ds[0].jaccard(ds[1]))
        exact.append(jaccard(base, other))
    ours_a, theirs_a, exact_a = np.array(ours), np.array(theirs), np.array(exact)
    sd = np.sqrt(exact_a * (1 - exact_a) / 256) + 1e-3
    assert np.all(np.abs(ours_a - exact_a) < 4.5 * sd)
    assert abs(np.mean(ours_a - exact_a)) < 0.01  # unbiased
    assert abs(np.mean(ours_a - theirs_a)) < 0.01  # and no different from datasketch's sha1 scheme
    assert exact_a.min() < 0.6 < 0.9 < exact_a.max()  # the range covered the threshold


# --------------------------------------------------------------------------------------------- LSH + clusters


def test_candidate_pairs_are_windows_within_buckets() -> None:
    keys = np.array([5, 7, 5, 5, 9, 7, 5], dtype=np.uint64)
    valid = np.array([True, True, True, True, True, True, False])
    pairs = {tuple(p) for p in candidate_pairs(keys, valid, window=8).tolist()}
    assert pairs == {(0, 2), (0, 3), (2, 3), (1, 5)}
    chained = {tuple(p) for p in candidate_pairs(keys, valid, window=2).tolist()}
    assert chained == {(0, 2), (2, 3), (1, 5)}  # large buckets: next members only, never k² pairs


def test_connected_components_label_is_smallest_member() -> None:
    pairs = np.array([[5, 9], [1, 5], [9, 3], [7, 8], [2, 2]])
    labels = connected_components(11, pairs)
    assert labels.tolist() == [0, 1, 2, 1, 4, 1, 6, 7, 7, 1, 10]
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 2000, (1500, 2))
    labels = connected_components(2000, pairs)
    # reference: Python union-find
    parent = list(range(2000))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in pairs.tolist():
        ru, rv = find(u), find(v)
        parent[max(ru, rv)] = min(ru, rv)
    assert labels.tolist() == [find(x) for x in range(2000)]


def test_required_matches() -> None:
    assert required_matches(0.7, 100) == 70
    assert required_matches(0.7, 112) == 79  # 78.4 → 79
    assert required_matches(1.0, 112) == 112


def test_planted_near_duplicates_cluster_and_hard_negatives_stay_apart() -> None:
    rng = random.Random(3)
    config = MinhashConfig(threshold=0.7)
    texts, truth = [], []
    for c in range(40):  # 40 clusters of 2-4 near duplicates (J ≈ 0.85-0.95)
        base = random_text(rng, 300)
        for _ in range(rng.randint(2, 4)):
            texts.append(base if not truth or truth[-1] != c else edit(rng, base, rng.randint(1, 3)))
            truth.append(c)
    texts += [random_text(rng, 300) for _ in range(200)]  # unique documents
    truth += list(range(1000, 1200))
    header, footer = random_text(rng, 250), random_text(rng, 250)
    hard = [f"{header} {random_text(rng, 400)} {footer}" for _ in range(30)]  # J ≈ 0.45 with each other
    texts += hard
    truth += list(range(2000, 2030))
    order = list(range(len(texts)))
    rng.shuffle(order)
    texts = [texts[i] for i in order]
    truth = [truth[i] for i in order]

    sigs = Signatures([SignatureComputer(config)(texts)])
    labels, counts = lsh_and_cluster(sigs, config.b, config.r, config.threshold)
    truth_a = np.array(truth)
    same_pred = labels[:, None] == labels[None, :]
    same_true = truth_a[:, None] == truth_a[None, :]
    upper = np.triu(np.ones_like(same_pred), 1)
    tp = np.sum(same_pred & same_true & upper)
    assert np.sum(same_pred & ~same_true & upper) == 0  # precision 1: no false merges
    assert tp / np.sum(same_true & upper) > 0.97
    # hard negatives became candidates through the shared boilerplate, and verification kept them apart
    assert counts["rejected"] > 0
    hard_idx = [i for i, t in enumerate(truth) if t >= 2000]
    assert len(set(labels[hard_idx].tolist())) == len(hard_idx)


def test_hard_negatives_many_candidates_zero_merges() -> None:
    """A sensitive banding (28 × 4) makes nearly every boilerplate pair a candidate; none may merge."""
    rng = random.Random(4)
    header, footer = random_text(rng, 300), random_text(rng, 300)
    texts = [f"{header} {random_text(rng, 300)} {footer}" for _ in range(40)]
    config = MinhashConfig(bands=28, rows=4, threshold=0.7)
    sigs = Signatures([SignatureComputer(config)(texts)])
    labels, counts = lsh_and_cluster(sigs, config.b, config.r, config.threshold)
    assert counts["candidates"] > 100 and counts["verified"] == 0
    assert labels.tolist() == list(range(40))


@pytest.mark.parametrize("similarity", [0.8, 0.9])
def test_recall_follows_the_s_curve(similarity: float) -> None:
    """Planted copies at similarity J are joined with probability P(candidate | J) × P(estimate ≥ threshold)."""
    from math import comb

    config = MinhashConfig(threshold=0.7)
    sig, origin = synthetic_signatures(40_000, 112, duplicate_fraction=0.1, similarity=similarity, seed=5)
    labels, _ = lsh_and_cluster(Signatures([sig]), config.b, config.r, config.threshold)
    dups = np.flatnonzero(origin != np.arange(len(origin)))
    recall = float(np.mean(labels[dups] == labels[origin[dups]]))
    k = required_matches(0.7, 112)
    p_verify = sum(comb(112, m) * similarity**m * (1 - similarity) ** (112 - m) for m in range(k, 113))
    expected = float(candidate_probability(similarity, config.b, config.r)) * p_verify
    assert abs(recall - expected) < 0.02, (recall, expected)


# --------------------------------------------------------------------------------------------- exact verification


def shingle_sets(config: MinhashConfig, texts: list[str]) -> tuple[Signatures, ShingleSets]:
    sig, hashes, counts = SignatureComputer(config).with_shingles(texts)
    return Signatures([sig]), ShingleSets([(hashes, np.concatenate(([0], np.cumsum(counts))))])


def test_shingle_sets_are_the_sorted_unique_full_hashes() -> None:
    texts = [normalize_text(t) for t in ["a b c d e f a b c d e f", "", "x y", "a b c d e f g"]]
    full, counts = shingle_hashes(texts, 5, full=True)
    assert full.dtype == np.uint64
    short, _ = shingle_hashes(texts, 5)
    assert np.array_equal((full >> np.uint64(32)).astype(np.uint32), short)  # signatures use the high half
    unique, ucounts = unique_per_document(full, counts)
    assert counts.tolist() == [8, 0, 1, 3] and ucounts.tolist() == [6, 0, 1, 3]  # 8 shingles, 6 distinct
    offsets = np.concatenate(([0], np.cumsum(ucounts)))
    for i in range(len(texts)):
        doc = unique[offsets[i] : offsets[i + 1]]
        assert np.array_equal(doc, np.unique(full[sum(counts[:i]) : sum(counts[: i + 1])]))
    sig, hashes, hcounts = SignatureComputer(MinhashConfig()).with_shingles(texts, normalized=True)
    assert np.array_equal(hashes, unique) and np.array_equal(hcounts, ucounts)
    assert np.array_equal(sig, SignatureComputer(MinhashConfig())(texts, normalized=True))


def test_exact_jaccard_matches_python_sets() -> None:
    rng = random.Random(8)
    bases = [random_text(rng, rng.randint(3, 200)) for _ in range(10)]
    texts = [t for b in bases for t in (b, edit(rng, b, min(3, len(b.split()))))] + [""]
    _sigs, sets = shingle_sets(MinhashConfig(), texts)
    pairs = np.array([(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))], dtype=np.int64)
    got = exact_jaccard(sets, pairs, chunk=500)  # many chunks
    want = [jaccard(texts[i], texts[j]) if texts[i] and texts[j] else 0.0 for i, j in pairs]
    assert np.allclose(got, want)
    # split over two shards: the same values
    _sig, hashes, counts = SignatureComputer(MinhashConfig()).with_shingles(texts)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    k = 7
    two = ShingleSets(
        [
            (hashes[: offsets[k]], offsets[: k + 1]),
            lambda: (hashes[offsets[k] :], offsets[k:] - offsets[k]),
        ],
        lengths=[k, len(texts) - k],
    )
    assert np.allclose(exact_jaccard(two, pairs), want)


def below_threshold_pair(config: MinhashConfig) -> tuple[str, str]:
    """A pair whose true Jaccard is just below the threshold but whose estimate passes and shares a band."""
    compute = SignatureComputer(config)
    for seed in range(200):
        rng = random.Random(seed)
        base = random_text(rng, 300)
        for k in range(9, 14):
            other = edit(rng, base, k)
            if not config.threshold - 0.04 <= jaccard(base, other) < config.threshold:
                continue
            labels, _ = lsh_and_cluster(
                Signatures([compute([base, other])]), config.b, config.r, config.threshold
            )
            if labels[1] == 0:  # a candidate, and the estimate passed
                return base, other
    raise AssertionError("no such pair found")


def test_exact_verification_rejects_a_pair_just_below_the_threshold() -> None:
    config = MinhashConfig(threshold=0.7)
    base, other = below_threshold_pair(config)
    j = jaccard(base, other)
    assert 0.66 <= j < 0.7
    rng = random.Random(9)
    close = edit(rng, base, 2)  # J ≈ 0.94: a true near duplicate
    texts = [base, other, close]
    sigs, sets = shingle_sets(config, texts)
    labels_est, _ = lsh_and_cluster(sigs, config.b, config.r, config.threshold)
    labels_exact, counts = lsh_and_cluster(sigs, config.b, config.r, config.threshold, shingles=sets)
    assert labels_est.tolist() == [0, 0, 0]  # the estimate joins the pair below the threshold
    assert labels_exact.tolist() == [0, 1, 0]  # the exact Jaccard does not; the true duplicate still joins
    assert counts["rejected"] >= 1


def test_exact_verification_keeps_planted_duplicates_and_rejects_hard_negatives() -> None:
    rng = random.Random(3)
    config = MinhashConfig(threshold=0.7)
    texts, truth = [], []
    for c in range(40):
        base = random_text(rng, 300)
        for i in range(rng.randint(2, 4)):
            texts.append(base if i == 0 else edit(rng, base, rng.randint(1, 3)))
            truth.append(c)
    header, footer = random_text(rng, 250), random_text(rng, 250)
    texts += [f"{header} {random_text(rng, 400)} {footer}" for _ in range(30)]
    truth += list(range(2000, 2030))
    sigs, sets = shingle_sets(config, texts)
    labels, counts = lsh_and_cluster(sigs, config.b, config.r, config.threshold, shingles=sets)
    truth_a = np.array(truth)
    same_pred = labels[:, None] == labels[None, :]
    same_true = truth_a[:, None] == truth_a[None, :]
    upper = np.triu(np.ones_like(same_pred), 1)
    assert np.sum(same_pred & ~same_true & upper) == 0
    assert np.sum(same_pred & same_true & upper) / np.sum(same_true & upper) > 0.97
    assert counts["rejected"] > 0


def test_verify_option_is_validated_and_names_the_files() -> None:
    assert MinhashConfig().verify == "exact"
    assert MinhashConfig().signature_key().endswith("-x")
    assert not MinhashConfig(verify="estimate").signature_key().endswith("-x")
    assert MinhashConfig().cluster_key() != MinhashConfig(verify="estimate").cluster_key()
    with pytest.raises(DolmaKitError, match="--verify"):
        MinhashConfig(verify="approx")  # type: ignore[arg-type]


def test_a_long_document_hashed_in_windows_gives_the_same_signature_and_shingles() -> None:
    """Windows of words overlapping by ngram - 1 hold every shingle exactly: a document longer than a group
    gets the signature and the shingle set it would get in one piece (memory follows the window)."""
    import random

    from dolma_kit.dedup.minhash import MinhashConfig, SignatureComputer

    rng = random.Random(1)
    words = ["".join(rng.choice("abcdefg") for _ in range(rng.randint(1, 6))) for _ in range(300)]
    texts = [" ".join(rng.choice(words) for _ in range(n)) for n in (0, 1, 4, 5, 6, 50, 5000)]
    texts += [" ".join(["x" * 300] * 7), " ".join(["y" * 50] * 3 + ["z"] * 40), "w" * 1000]
    whole = SignatureComputer(MinhashConfig(), batch_chars=1 << 30)
    for batch_chars in (20, 64, 1000):
        windowed = SignatureComputer(MinhashConfig(), batch_chars=batch_chars)
        got, want = (
            windowed.with_shingles(texts, normalized=True),
            whole.with_shingles(texts, normalized=True),
        )
        for a, b in zip(got, want, strict=True):
            assert np.array_equal(a, b)
