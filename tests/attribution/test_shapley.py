"""Exact KNN-Shapley against subset enumeration, efficiency, and the Jia et al. recursion."""

from __future__ import annotations

from math import factorial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attribution import knn_shapley
from attribution.shapley import coverage_shapley, shapley_from_values


def utility_all_subsets(v: np.ndarray, k: int) -> np.ndarray:
    """U(S) for every subset S (bit i of the index = rank-i candidate is in S)."""
    n = v.size
    masks = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
    first_k = masks & (np.cumsum(masks, axis=1) <= k)
    return (first_k * v[None, :]).sum(axis=1) / k


def shapley_by_enumeration(v: np.ndarray, k: int) -> np.ndarray:
    """Shapley values from the subset formula: sum_S |S|!(N-|S|-1)!/N! (U(S+i) - U(S))."""
    n = v.size
    u = utility_all_subsets(v, k)
    subsets = np.arange(2**n)
    size = np.array([bin(m).count("1") for m in subsets])
    coef = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) if s < n else 0.0
                     for s in range(n + 1)])
    out = np.zeros(n)
    for i in range(n):
        without = subsets[(subsets >> i) & 1 == 0]
        out[i] = np.sum(coef[size[without]] * (u[without | (1 << i)] - u[without]))
    return out


def jia_classifier_recursion(correct: np.ndarray, k: int) -> np.ndarray:
    """Jia et al. (2019), Theorem 1, literally: for 0/1 values and N >= K."""
    n = correct.size
    s = np.zeros(n)
    s[n - 1] = correct[n - 1] / n
    for i in range(n - 2, -1, -1):  # 0-based i is the paper's alpha_{i+1}
        rank = i + 1
        s[i] = s[i + 1] + (correct[i] - correct[i + 1]) / k * min(k, rank) / rank
    return s


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 12])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 13])
def test_equals_subset_enumeration(n: int, k: int) -> None:
    rng = np.random.default_rng(1000 * n + k)
    # arbitrary values, with ties and zeros, in rank order
    v = rng.choice([0.0, 0.0, 0.25, 0.5, 1.0], size=n) * rng.choice([1.0, 0.3], size=n)
    v[rng.random(n) < 0.3] = rng.random()
    np.testing.assert_allclose(shapley_from_values(v[None, :], k)[0],
                               shapley_by_enumeration(v, k), rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 4, 12, 20])
def test_coverage_utility_equals_enumeration_with_ties(k: int) -> None:
    sim = np.sort(np.array([0.9, 0.9, 0.8, 0.75, 0.75, 0.75, 0.6, 0.55, 0.4, 0.3, 0.3, 0.1]))[::-1]
    tau = 0.5
    got = coverage_shapley(sim[None, :], np.ones((1, sim.size), bool), n_neighbors=k, tau=tau)
    want = shapley_by_enumeration(np.maximum(sim - tau, 0.0), k)
    np.testing.assert_allclose(got.values[0], want, rtol=0, atol=1e-12)
    # symmetry: tied similarities get equal values
    assert got.values[0, 0] == got.values[0, 1]
    assert got.values[0, 3] == got.values[0, 4] == got.values[0, 5]
    # exactly zero past the last candidate above tau
    assert np.all(got.values[0, sim <= tau] == 0.0)
    assert got.exact[0]


@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=40),
       st.integers(1, 50))
def test_efficiency_values_sum_to_utility_of_everything(values: list[float], k: int) -> None:
    v = np.array(values)
    s = shapley_from_values(v[None, :], k)[0]
    assert abs(s.sum() - v[:k].sum() / k) <= 1e-12 * max(1.0, np.abs(v).sum())


@pytest.mark.parametrize("seed", range(8))
def test_zero_one_values_match_jia_classifier_recursion(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    k = int(rng.integers(1, n + 1))  # the paper's base case assumes N >= K
    correct = (rng.random(n) < 0.5).astype(float)
    np.testing.assert_allclose(shapley_from_values(correct[None, :], k)[0],
                               jia_classifier_recursion(correct, k), rtol=0, atol=1e-12)


def test_base_case_when_k_exceeds_n_is_v_over_k() -> None:
    # with K > N every point is always among the K nearest: U is additive, s_i = v_i / K
    v = np.array([[1.0, 0.0, 1.0]])
    np.testing.assert_allclose(shapley_from_values(v, 5), v / 5, rtol=0, atol=1e-15)


def test_vectorised_rows_equal_single_rows() -> None:
    rng = np.random.default_rng(7)
    v = rng.random((50, 9))
    block = shapley_from_values(v, 4)
    for q in (0, 17, 49):
        np.testing.assert_array_equal(block[q], shapley_from_values(v[q:q + 1], 4)[0])


def test_truncated_list_is_exact_when_it_ends_below_tau() -> None:
    rng = np.random.default_rng(3)
    sim = -np.sort(-(rng.random((30, 40)) ** rng.uniform(0.1, 3.0, (30, 1))), axis=1)
    valid = np.ones_like(sim, dtype=bool)
    tau, k, cut = 0.5, 5, 25
    full = coverage_shapley(sim, valid, n_neighbors=k, tau=tau)
    part = coverage_shapley(sim[:, :cut], valid[:, :cut], n_neighbors=k, tau=tau)
    ends_low = sim[:, cut - 1] <= tau
    assert ends_low.any() and np.array_equal(part.exact, ends_low)
    np.testing.assert_allclose(part.values[ends_low], full.values[ends_low, :cut],
                               rtol=0, atol=1e-12)
    # too short: every listed value is off by one common offset in [0, v_L / max(K, L)]
    short = ~ends_low
    assert short.any()
    diff = part.values[short] - full.values[short, :cut]
    np.testing.assert_allclose(diff, diff[:, :1].repeat(cut, axis=1), rtol=0, atol=1e-12)
    bound = (sim[short, cut - 1] - tau) / max(k, cut)
    assert np.all(diff[:, 0] >= -1e-15) and np.all(diff[:, 0] <= bound + 1e-15)


def test_padding_means_whole_catalogue_and_is_exact() -> None:
    sim = np.array([[0.9, 0.8, -np.inf]])
    valid = np.array([[True, True, False]])
    res = coverage_shapley(sim, valid, n_neighbors=2, tau=0.1)
    assert res.exact.all() and res.values[0, 2] == 0.0
    full = coverage_shapley(np.array([[0.9, 0.8, 0.7]]), np.ones((1, 3), bool),
                            n_neighbors=2, tau=0.1)
    assert not full.exact[0] and full.n_inexact == 1
    assert coverage_shapley(np.array([[0.9, 0.8, 0.7]]), np.ones((1, 3), bool), n_neighbors=2,
                            tau=0.1, catalogue_size=3).exact[0]


# ---- public hard-label knn_shapley ------------------------------------------------------

def knn_shapley_slow(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray,
                     k: int) -> np.ndarray:
    """Mean over test points of enumerated Shapley values of the KNN classifier utility."""
    out = np.zeros(len(x))
    for q in range(len(xt)):
        dist = [float(np.sqrt(np.sum((xt[q] - x[i]) ** 2))) for i in range(len(x))]
        order = sorted(range(len(x)), key=lambda i: (dist[i], i))
        correct = np.array([float(y[i] == yt[q]) for i in order])
        values = shapley_by_enumeration(correct, k)
        out[order] += values
    return out / len(xt)


@pytest.mark.parametrize("k", [1, 3, 10, 15])
def test_knn_shapley_equals_enumeration(k: int) -> None:
    rng = np.random.default_rng(k)
    x = rng.normal(size=(10, 3))
    x[7] = x[2]  # an exact duplicate: tie broken by index
    y = rng.integers(0, 3, size=10)
    xt = rng.normal(size=(6, 3))
    yt = rng.integers(0, 3, size=6)
    got = knn_shapley(x, y, xt, yt, k)
    assert got.dtype == np.float64 and got.shape == (10,)
    np.testing.assert_allclose(got, knn_shapley_slow(x, y, xt, yt, k), rtol=0, atol=1e-12)


def test_knn_shapley_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="same d"):
        knn_shapley(np.zeros((3, 2)), np.zeros(3), np.zeros((2, 4)), np.zeros(2), 1)
    with pytest.raises(ValueError, match="one label per point"):
        knn_shapley(np.zeros((3, 2)), np.zeros(2), np.zeros((2, 2)), np.zeros(2), 1)
    with pytest.raises(ValueError, match="k must be"):
        knn_shapley(np.zeros((3, 2)), np.zeros(3), np.zeros((2, 2)), np.zeros(2), 0)
