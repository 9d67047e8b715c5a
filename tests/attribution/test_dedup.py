"""Near-duplicate groups: components against a slow union-find, and weight splitting."""

from __future__ import annotations

import numpy as np
import pytest

from attribution.candidates import Candidates
from attribution.dedup import duplicate_groups, weigh_grouped
from attribution.weighting import METHODS


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def groups_slow(cand: np.ndarray, valid: np.ndarray, threshold: float) -> np.ndarray:
    """Representative slot of every slot by union-find, one generation at a time."""
    n, k, _ = cand.shape
    rep = np.full((n, k), -1)
    for q in range(n):
        parent = list(range(k))

        def find(i: int) -> int:
            while parent[i] != i:
                i = parent[i]
            return i

        for i in range(k):
            for j in range(i + 1, k):
                if valid[q, i] and valid[q, j] and float(cand[q, i] @ cand[q, j]) > threshold:
                    a, b = find(i), find(j)
                    parent[max(a, b)] = min(a, b)
        for i in range(k):
            if valid[q, i]:
                rep[q, i] = min(j for j in range(k) if valid[q, j] and find(j) == find(i))
    return rep


def block_with_duplicates(seed: int, n: int = 40, k: int = 10, d: int = 16) -> Candidates:
    rng = np.random.default_rng(seed)
    base = unit(rng.normal(size=(n, k, d)))
    # plant copies and chains: slot j copies slot src[j] with small noise
    for q in range(n):
        for j in range(1, k):
            if rng.random() < 0.4:
                src = int(rng.integers(0, j))
                base[q, j] = unit(base[q, src] + rng.normal(scale=0.05, size=d))
    gen = unit(base[:, 0] + rng.normal(scale=0.5, size=(n, d)))
    sim = np.einsum("nkd,nd->nk", base, gen)
    order = np.argsort(-sim, axis=1, kind="stable")
    cand = np.take_along_axis(base, order[:, :, None], axis=1).astype(np.float32)
    sim = np.take_along_axis(sim, order, axis=1).astype(np.float32)
    valid = np.ones((n, k), dtype=bool)
    valid[: n // 4, k - 3:] = False  # some padding
    sim = np.where(valid, sim, -np.inf).astype(np.float32)
    return Candidates(sim=sim, valid=valid, gen=gen.astype(np.float32), cand=cand)


@pytest.mark.parametrize("threshold", [0.9, 0.97, 0.995])
def test_components_match_union_find(threshold: float) -> None:
    c = block_with_duplicates(int(threshold * 1000))
    got = duplicate_groups(c, threshold)
    want = groups_slow(c.cand.astype(np.float32), c.valid, threshold)
    # the vectorised path compares float32 products; avoid borderline pairs
    assert np.array_equal(got.rep, want)
    assert (got.size > 1).any() and (got.size == 1).any()
    for q in range(c.n):
        for i in np.flatnonzero(c.valid[q]):
            assert got.size[q, i] == np.sum(want[q] == want[q, i])
    assert np.all(got.size[~c.valid] == 0)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_ten_exact_copies_earn_what_one_clip_earns(method: str) -> None:
    rng = np.random.default_rng(4)
    d = 24
    gen = unit(rng.normal(size=d))
    clips = unit(gen[None, :] + rng.normal(scale=0.6, size=(4, d)))
    sim = clips @ gen
    order = np.argsort(-sim)
    clips, sim = clips[order], sim[order]
    single = Candidates(sim=sim[None].astype(np.float32), valid=np.ones((1, 4), bool),
                        gen=gen[None].astype(np.float32), cand=clips[None].astype(np.float32))
    copies = np.repeat(np.arange(4), [10, 1, 1, 1])  # clip 0 uploaded ten times
    many = Candidates(sim=single.sim[:, copies], valid=np.ones((1, 13), bool),
                      gen=single.gen, cand=single.cand[:, copies])
    params = {"min_similarity": 0.0} if method != "knn-shapley" else {"tau": 0.0}
    w_one = weigh_grouped(METHODS[method], single, duplicate_groups(single, 0.97), **params)
    w_ten = weigh_grouped(METHODS[method], many, duplicate_groups(many, 0.97), **params)
    assert w_one[0].sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(w_ten[0, :10], np.full(10, w_one[0, 0] / 10), rtol=0, atol=1e-12)
    np.testing.assert_allclose(w_ten[0, 10:], w_one[0, 1:], rtol=0, atol=1e-12)
    plain = METHODS[method](many, **params)
    if method == "nnls":
        # a least-squares decomposition already gives exact copies one clip's total,
        # but all of it to whichever copy enters first: grouping makes the split fair
        assert plain[0, :10].sum() == pytest.approx(w_one[0, 0], abs=1e-9)
        assert np.count_nonzero(plain[0, :10]) == 1
    else:
        # without grouping the ten copies take more than one clip's weight
        assert plain[0, :10].sum() > w_one[0, 0] + 1e-6


def test_grouping_without_embeddings_is_an_error() -> None:
    c = Candidates(sim=np.ones((1, 2), np.float32), valid=np.ones((1, 2), bool))
    with pytest.raises(ValueError, match="candidate embeddings"):
        duplicate_groups(c, 0.97)


def test_grouped_weights_sum_like_the_method_and_respect_padding() -> None:
    c = block_with_duplicates(9)
    for name, fn in METHODS.items():
        params = {"tau": 0.2} if name == "knn-shapley" else {"min_similarity": 0.2}
        w = weigh_grouped(fn, c, duplicate_groups(c, 0.97), **params)
        sums = w.sum(axis=1)
        assert np.all(w >= 0) and np.all(w[~c.valid] == 0)
        assert np.all((np.abs(sums - 1) < 1e-12) | (sums == 0)), name
        assert (sums > 0).any()
