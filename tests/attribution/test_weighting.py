"""Weighting methods: the contract every method keeps, and each against a slow reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import nnls as scipy_nnls

from attribution.candidates import Candidates
from attribution.dedup import duplicate_groups
from attribution.weighting import (
    DEFAULT_METHOD,
    METHODS,
    NEEDS_EMBEDDINGS,
    knn_shapley_exact,
    needs_embeddings,
    weigh,
)
from tests.attribution.test_shapley import shapley_by_enumeration


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_block(seed: int, n: int, k: int, d: int, spread: float, pad: int = 0) -> Candidates:
    """Candidate lists in rank order; the last ``pad`` slots of some rows are padding."""
    rng = np.random.default_rng(seed)
    gen = unit(rng.normal(size=(n, d)))
    cand = unit(gen[:, None, :] + spread * rng.normal(size=(n, k, d)))
    sim = np.einsum("nkd,nd->nk", cand, gen)
    order = np.argsort(-sim, axis=1, kind="stable")
    cand = np.take_along_axis(cand, order[:, :, None], axis=1)
    sim = np.take_along_axis(sim, order, axis=1)
    valid = np.ones((n, k), dtype=bool)
    if pad:
        valid[rng.random(n) < 0.5, k - pad:] = False
    return Candidates(sim=np.where(valid, sim, -np.inf).astype(np.float32), valid=valid,
                      gen=gen.astype(np.float32), cand=cand.astype(np.float32))


blocks = st.builds(
    make_block, seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), k=st.integers(1, 12),
    d=st.integers(2, 24), spread=st.sampled_from([0.05, 0.3, 1.0, 3.0]),
    pad=st.integers(0, 3),
).filter(lambda c: c.k > 0)
methods = st.sampled_from(sorted(METHODS))
dedups = st.sampled_from([None, 0.9, 0.97])


def check_contract(w: np.ndarray, cands: Candidates) -> None:
    assert w.dtype == np.float64 and w.shape == (cands.n, cands.k)
    assert np.all(w >= 0)
    assert np.all(w[~cands.valid] == 0)
    sums = w.sum(axis=1)
    assert np.all((np.abs(sums - 1.0) <= 1e-12) | (sums == 0.0))


@given(blocks, methods, dedups)
def test_every_method_keeps_the_weight_contract(cands: Candidates, method: str,
                                                dedup: float | None) -> None:
    check_contract(weigh(method, cands, dedup_threshold=dedup), cands)


@given(blocks, methods, dedups, st.randoms(use_true_random=False))
def test_generations_are_independent_of_block_order(cands: Candidates, method: str,
                                                    dedup: float | None, rnd) -> None:
    perm = np.array(rnd.sample(range(cands.n), cands.n))
    shuffled = Candidates(sim=cands.sim[perm], valid=cands.valid[perm], gen=cands.gen[perm],
                          cand=cands.cand[perm])
    w = weigh(method, cands, dedup_threshold=dedup)
    np.testing.assert_allclose(weigh(method, shuffled, dedup_threshold=dedup), w[perm],
                               rtol=0, atol=1e-12)


@given(blocks, st.integers(0, 11), st.integers(1, 5), methods)
def test_equal_candidates_get_equal_weight(cands: Candidates, at: int, copies: int,
                                           method: str) -> None:
    """Repeating a candidate (same similarity, same embedding) right after itself."""
    at = at % cands.k
    idx = np.concatenate([np.arange(at + 1), np.full(copies, at), np.arange(at + 1, cands.k)])
    rep = Candidates(sim=cands.sim[:, idx], valid=cands.valid[:, idx], gen=cands.gen,
                     cand=cands.cand[:, idx])
    # nnls cannot split exact copies by itself (the minimiser is not unique); with
    # grouping every method can
    dedup = 0.999 if method == "nnls" else None
    w = weigh(method, rep, dedup_threshold=dedup)
    block = w[:, at:at + copies + 1]
    np.testing.assert_allclose(block, block[:, :1].repeat(copies + 1, axis=1), rtol=0,
                               atol=1e-12)


@given(blocks, methods)
def test_copies_with_grouping_earn_what_one_earns(cands: Candidates, method: str) -> None:
    at = 0
    idx = np.concatenate([[0] * 10, np.arange(1, cands.k)])
    rep = Candidates(sim=cands.sim[:, idx], valid=cands.valid[:, idx], gen=cands.gen,
                     cand=cands.cand[:, idx])
    one = weigh(method, cands, dedup_threshold=0.999)
    ten = weigh(method, rep, dedup_threshold=0.999)
    # rows where the first clip is not itself a near-copy of another listed clip
    # (otherwise its group's weight is split among more members, by design)
    alone = duplicate_groups(cands, 0.999).size[:, 0] == 1
    np.testing.assert_allclose(ten[alone, at:10].sum(axis=1), one[alone, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ten[alone, 10:], one[alone, 1:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ten[alone, at:10], ten[alone, at:at + 1].repeat(10, axis=1),
                               rtol=0, atol=1e-15)


def test_knn_shapley_weights_are_normalised_enumerated_shapley_values() -> None:
    cands = make_block(1, n=5, k=9, d=12, spread=0.8)
    tau, big_k = 0.3, 4
    w = weigh("knn-shapley", cands, neighbors=big_k, tau=tau, min_similarity=-1.0)
    for q in range(cands.n):
        s = shapley_by_enumeration(np.maximum(cands.sim[q].astype(np.float64) - tau, 0), big_k)
        want = s / s.sum() if s.sum() > 0 else s
        np.testing.assert_allclose(w[q], want, rtol=0, atol=1e-12)


def test_knn_shapley_resorts_an_unsorted_list() -> None:
    cands = make_block(2, n=4, k=7, d=8, spread=0.5)
    perm = np.array([3, 0, 6, 1, 5, 2, 4])
    mixed = Candidates(sim=cands.sim[:, perm], valid=cands.valid[:, perm])
    np.testing.assert_allclose(weigh("knn-shapley", mixed, tau=0.2),
                               weigh("knn-shapley", cands, tau=0.2)[:, perm], rtol=0, atol=1e-15)


def test_knn_shapley_exact_flags_lists_that_end_above_tau() -> None:
    sim = np.array([[0.9, 0.8, 0.7], [0.9, 0.5, 0.2], [0.9, 0.8, -np.inf]], np.float32)
    valid = np.isfinite(sim)
    cands = Candidates(sim=sim, valid=valid)
    assert knn_shapley_exact(cands, tau=0.6).tolist() == [False, True, True]
    assert knn_shapley_exact(cands, tau=0.6, catalogue_size=3).tolist() == [True, True, True]


@pytest.mark.parametrize("min_weight", [0.0, 0.05, 0.2])
def test_nnls_weights_are_normalised_scipy_solutions(min_weight: float) -> None:
    cands = make_block(3, n=40, k=8, d=32, spread=1.2)
    floor = 0.45
    w = weigh("nnls", cands, min_similarity=floor, min_weight=min_weight)
    for q in range(cands.n):
        want = np.zeros(cands.k)
        if cands.sim[q].max() >= floor:
            a = cands.cand[q].astype(np.float64).T
            want = scipy_nnls(a, cands.gen[q].astype(np.float64))[0]
            want = want / want.sum()
            if min_weight > 0:
                want = np.where((want >= min_weight) | (want == want.max()), want, 0.0)
                want = want / want.sum()
        np.testing.assert_allclose(w[q], want, rtol=0, atol=1e-9)
    assert ((w > 0).sum(axis=1) > 1).any()
    assert (w.sum(axis=1) == 0).any() and (w.sum(axis=1) > 0).any()


def test_softmax_formula_and_floor() -> None:
    sim = np.array([[0.9, 0.8, 0.4], [0.3, 0.2, 0.1]], np.float32)
    cands = Candidates(sim=sim, valid=np.ones((2, 3), bool))
    w = weigh("softmax", cands, temperature=0.1, min_similarity=0.5)
    e = np.exp(np.array([0.9, 0.8], np.float32).astype(np.float64) / 0.1)
    np.testing.assert_allclose(w[0], [*(e / e.sum()), 0.0], rtol=0, atol=1e-12)
    assert np.all(w[1] == 0)  # nothing above the floor: a novel generation
    with pytest.raises(ValueError, match="temperature"):
        weigh("softmax", cands, temperature=0.0)


def test_floors_make_novel_generations_unattributed() -> None:
    sim = np.array([[0.2, 0.1]], np.float32)
    cands = Candidates(sim=sim, valid=np.ones((1, 2), bool),
                       gen=unit(np.ones((1, 4))).astype(np.float32),
                       cand=unit(np.eye(4)[None, :2] + 0.1).astype(np.float32))
    for method in METHODS:
        assert np.all(weigh(method, cands) == 0), method


def test_names_defaults_and_errors() -> None:
    assert DEFAULT_METHOD in METHODS
    assert NEEDS_EMBEDDINGS == {"nnls"}
    assert needs_embeddings("nnls") and not needs_embeddings("softmax")
    assert needs_embeddings("softmax", 0.97)
    cands = Candidates(sim=np.ones((1, 2), np.float32), valid=np.ones((1, 2), bool))
    with pytest.raises(ValueError, match="unknown weighting method 'x'; expected one of"):
        weigh("x", cands)
    with pytest.raises(ValueError, match="nnls needs"):
        weigh("nnls", cands)
    with pytest.raises(ValueError, match="candidate embeddings"):
        weigh("softmax", cands, dedup_threshold=0.9)
    with pytest.raises(ValueError, match="neighbors"):
        weigh("knn-shapley", cands, neighbors=0)
    full = Candidates(sim=cands.sim, valid=cands.valid, gen=np.ones((1, 3), np.float32),
                      cand=np.ones((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="min_weight"):
        weigh("nnls", full, min_weight=1.0)


def test_knn_shapley_similarity_floor_is_per_generation() -> None:
    sim = np.array([[0.54, 0.5, 0.45], [0.6, 0.5, 0.45]], np.float32)
    cands = Candidates(sim=sim, valid=np.ones((2, 3), bool))
    w = weigh("knn-shapley", cands, neighbors=2, tau=0.4, min_similarity=0.55)
    assert np.all(w[0] == 0)  # best similarity below the floor: novel
    assert np.all(w[1] > 0)  # every candidate above tau shares, even those below the floor
    np.testing.assert_allclose(w[1].sum(), 1.0, rtol=0, atol=1e-12)
