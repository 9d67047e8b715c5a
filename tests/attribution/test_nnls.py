"""Batched Lawson-Hanson NNLS against scipy.optimize.nnls."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import nnls as scipy_nnls

from attribution.nnls import nnls_gram


def problems(seed: int, n: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d, k)), rng.normal(size=(n, d))


def gram_of(a: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.einsum("ndi,ndj->nij", a, a), np.einsum("ndi,nd->ni", a, y)


def reference(a: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0], a.shape[2]))
    for q in range(a.shape[0]):
        cols = np.flatnonzero(mask[q])
        if cols.size:
            out[q, cols] = scipy_nnls(a[q][:, cols], y[q])[0]
    return out


@pytest.mark.parametrize(("d", "k"), [(16, 10), (64, 10), (8, 3), (32, 1)])
def test_matches_scipy(d: int, k: int) -> None:
    a, y = problems(d * k, 300, d, k)
    mask = np.ones((300, k), dtype=bool)
    got = nnls_gram(*gram_of(a, y))
    np.testing.assert_allclose(got, reference(a, y, mask), rtol=0, atol=1e-10)
    assert (got > 0).any() and (got == 0).any()  # both active and inactive variables occur


def test_mask_limits_variables_and_matches_scipy_on_the_subset() -> None:
    a, y = problems(5, 300, 20, 8)
    mask = np.random.default_rng(6).random((300, 8)) < 0.6
    mask[:10] = False  # rows with nothing allowed stay all-zero
    got = nnls_gram(*gram_of(a, y), mask)
    assert np.all(got[~mask] == 0.0) and np.all(got[:10] == 0.0)
    np.testing.assert_allclose(got, reference(a, y, mask), rtol=0, atol=1e-10)


def test_unit_vector_attribution_case() -> None:
    # a generation that is 0.7 * clip0 + 0.3 * clip2 is decomposed exactly
    rng = np.random.default_rng(0)
    c = rng.normal(size=(5, 64))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    g = 0.7 * c[0] + 0.3 * c[2]
    got = nnls_gram((c @ c.T)[None], (c @ g)[None])[0]
    np.testing.assert_allclose(got, [0.7, 0.0, 0.3, 0.0, 0.0], atol=1e-10)


def test_scipy_fallback_path_agrees() -> None:
    a, y = problems(11, 100, 24, 10)
    g, b = gram_of(a, y)
    fast = nnls_gram(g, b)
    forced = nnls_gram(g, b, max_iter=1)  # nearly every row finishes in the fallback
    np.testing.assert_allclose(forced, fast, rtol=0, atol=1e-10)


def test_exact_duplicate_columns_do_not_break_the_solver() -> None:
    a, y = problems(2, 50, 16, 6)
    a[:, :, 3] = a[:, :, 1]  # singular Gram matrices
    g, b = gram_of(a, y)
    got = nnls_gram(g, b)
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    # the objective matches scipy's optimum even though the minimiser is not unique
    ref = reference(a, y, np.ones((50, 6), bool))
    obj = lambda x: np.linalg.norm(np.einsum("ndk,nk->nd", a, x) - y, axis=1)  # noqa: E731
    np.testing.assert_allclose(obj(got), obj(ref), rtol=1e-9, atol=1e-9)


@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 20))
def test_kkt_conditions_hold(seed: int, k: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(4, d, k))
    y = rng.normal(size=(4, d))
    g, b = gram_of(a, y)
    x = nnls_gram(g, b)
    grad = b - np.einsum("nij,nj->ni", g, x)  # minus the gradient of the objective / 2
    scale = 1e-8 * (1.0 + np.abs(b).max() + np.abs(g).max() * np.abs(x).max())
    assert np.all(x >= 0)
    assert np.all(grad <= scale)  # no variable could still improve the fit by growing
    assert np.all(np.abs(grad[x > 0]) <= scale)  # active variables are at a stationary point


def test_shape_checked() -> None:
    with pytest.raises(ValueError, match="gram must have shape"):
        nnls_gram(np.zeros((2, 3, 3)), np.zeros((2, 4)))


@pytest.mark.parametrize("noise", [0.05, 0.5, 2.0])
def test_matches_scipy_at_search_depth(noise: float) -> None:
    """Depth 128 in d = 256: mixtures of a few candidates plus noise, as attribution sees them."""
    rng = np.random.default_rng(int(noise * 100))
    n, d, k = 60, 256, 128
    a = rng.normal(size=(n, d, k))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    mix = np.zeros((n, k))
    mix[np.arange(n)[:, None], rng.integers(0, k, (n, 3))] = rng.random((n, 3))
    y = np.einsum("ndk,nk->nd", a, mix) + noise * rng.normal(size=(n, d)) / np.sqrt(d)
    got = nnls_gram(*gram_of(a, y))
    want = reference(a, y, np.ones((n, k), dtype=bool))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert (got > 0).sum(axis=1).max() > 5  # many active variables: the compression is exercised


def test_a_row_gets_the_same_bits_alone_and_in_any_batch() -> None:
    """Each row is solved on its own: blocks of any composition give identical bits."""
    a, y = problems(21, 40, 48, 32)
    g, b = gram_of(a, y)
    whole = nnls_gram(g, b)
    perm = np.random.default_rng(1).permutation(40)
    shuffled = nnls_gram(g[perm], b[perm])
    alone = np.concatenate([nnls_gram(g[q:q + 1], b[q:q + 1]) for q in range(40)])
    assert whole.tobytes() == alone.tobytes()
    assert whole[perm].tobytes() == shuffled.tobytes()


def test_warm_up_loads_the_solver() -> None:
    from attribution.nnls import warm_up

    warm_up()  # a tiny problem through the compiled path, no error
    np.testing.assert_allclose(nnls_gram(np.eye(2)[None] * 2.0, np.ones((1, 2))), [[0.5, 0.5]])
