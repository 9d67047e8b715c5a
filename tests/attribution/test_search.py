"""Blocked top-k (topk_block + merges) equals the plain brute force, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attribution.reference import brute_force_topk
from attribution.search import (
    exact_similarity,
    merge_many,
    merge_partials,
    normalize,
    select_topk,
    topk_block,
)
from tests.attribution.engine_data import random_emb


def blocked(gen: np.ndarray, clips: np.ndarray, k: int, cuts: list[int], tile: int,
            groups: np.ndarray | None = None, order: list[int] | None = None):
    """Split the catalogue at ``cuts``, score each piece, merge in ``order``."""
    g, c = normalize(gen), normalize(clips)
    bounds = [0, *sorted(cuts), len(c)]
    parts = [
        topk_block(g, c[lo:hi], np.arange(lo, hi), k,
                   None if groups is None else groups[lo:hi], tile=tile)
        for lo, hi in zip(bounds[:-1], bounds[1:])
    ]
    if order is not None:
        parts = [parts[i] for i in order]
    out = parts[0]
    for p in parts[1:]:
        out = merge_partials(out, p)
    return out


def assert_same(a, b) -> None:
    np.testing.assert_array_equal(a.idx, b.idx)
    np.testing.assert_array_equal(a.sim, b.sim)
    if a.grp is not None or b.grp is not None:
        np.testing.assert_array_equal(a.grp, b.grp)


@pytest.mark.parametrize("n,big_n,d,k,tile", [
    (1, 1, 1, 1, 1), (5, 40, 8, 3, 7), (17, 300, 32, 10, 64), (64, 1000, 64, 5, 128),
    (3, 50, 300, 50, 16),
])
@pytest.mark.parametrize("ties", [False, True])
def test_blocked_equals_brute_force(n: int, big_n: int, d: int, k: int, tile: int,
                                    ties: bool) -> None:
    rng = np.random.default_rng(n * 1000 + big_n + ties)
    gen, clips = random_emb(rng, n, d, ties=ties), random_emb(rng, big_n, d, ties=ties)
    ref = brute_force_topk(gen, clips, k)
    cuts = sorted(rng.integers(0, big_n + 1, size=3).tolist())
    assert_same(blocked(gen, clips, k, cuts, tile), ref)


def test_ties_broken_by_catalogue_index() -> None:
    clips = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    gen = np.array([[1.0, 0.0]], dtype=np.float32)
    out = blocked(gen, clips, 3, [2], tile=1)
    assert out.idx.tolist() == [[0, 1, 3]]
    assert out.sim.tolist() == [[1.0, 1.0, 1.0]]


def test_fewer_clips_than_k_pads() -> None:
    rng = np.random.default_rng(1)
    out = blocked(random_emb(rng, 4, 3), random_emb(rng, 2, 3), 5, [1], tile=4)
    assert (out.idx[:, 2:] == -1).all() and np.isneginf(out.sim[:, 2:]).all()
    assert (out.idx[:, :2] >= 0).all()


@pytest.mark.parametrize("ties", [False, True])
def test_segments_aggregate_to_best_segment(ties: bool) -> None:
    rng = np.random.default_rng(7 + ties)
    big_n = 120
    groups = np.sort(rng.integers(0, 40, big_n))
    gen, clips = random_emb(rng, 9, 6, ties=ties), random_emb(rng, big_n, 6, ties=ties)
    ref = brute_force_topk(gen, clips, 7, groups)
    for tile in (1, 5, 64):
        out = blocked(gen, clips, 7, [30, 31, 90], tile, groups)
        assert_same(out, ref)
    valid = ref.grp >= 0
    for row_grp, row_valid in zip(ref.grp, valid):  # each clip at most once per generation
        kept = row_grp[row_valid]
        assert len(set(kept.tolist())) == len(kept)


def test_segment_best_is_max_over_its_segments() -> None:
    clips = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6]], dtype=np.float32)
    groups = np.array([0, 0, 1, 1])
    gen = np.array([[0.0, 1.0]], dtype=np.float32)
    out = blocked(gen, clips, 2, [1, 3], tile=1, groups=groups)
    assert out.idx.tolist() == [[2, 1]]  # clip 1 via its segment 2; clip 0 via segment 1
    assert out.grp.tolist() == [[1, 0]]


def test_merge_is_order_independent() -> None:
    rng = np.random.default_rng(3)
    gen, clips = random_emb(rng, 11, 5, ties=True), random_emb(rng, 200, 5, ties=True)
    cuts = [20, 21, 80, 150]
    ref = blocked(gen, clips, 6, cuts, 9)
    for perm in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        assert_same(blocked(gen, clips, 6, cuts, 9, order=perm), ref)
    g, c = normalize(gen), normalize(clips)
    parts = [topk_block(g, c[lo:hi], np.arange(lo, hi), 6, tile=9)
             for lo, hi in zip([0, *cuts], [*cuts, 200])]
    assert_same(merge_many(parts[::-1]), ref)
    assert_same(merge_many([merge_many(parts[:2]), merge_many(parts[2:])]), ref)


def test_merge_shape_mismatch_rejected() -> None:
    a = select_topk(np.array([0]), np.array([0.5]), np.array([1]), None, 2, 3)
    b = select_topk(np.array([0]), np.array([0.5]), np.array([1]), None, 3, 3)
    with pytest.raises(ValueError, match="shapes"):
        merge_partials(a, b)


def test_exact_similarity_does_not_depend_on_batching() -> None:
    rng = np.random.default_rng(5)
    g, c = normalize(random_emb(rng, 30, 77)), normalize(random_emb(rng, 30, 77))
    whole = exact_similarity(g, c)
    parts = np.concatenate([exact_similarity(g[i:i + 7], c[i:i + 7]) for i in range(0, 30, 7)])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_allclose(whole, (g.astype(np.float64) * c).sum(axis=1), rtol=1e-12)


def test_normalize_unit_rows() -> None:
    x = np.array([[3.0, 4.0], [0.0, -2.0]], dtype=np.float32)
    np.testing.assert_allclose(normalize(x), [[0.6, 0.8], [0.0, -1.0]], rtol=1e-7)
    assert normalize(x).dtype == np.float32


@st.composite
def problems(draw: st.DrawFn):
    d = draw(st.integers(1, 4))
    n = draw(st.integers(1, 5))
    big_n = draw(st.integers(1, 30))
    k = draw(st.integers(1, big_n + 2))
    ints = st.integers(-2, 2)
    gen = draw(arrays(np.float32, (n, d), elements=ints.map(float)))
    clips = draw(arrays(np.float32, (big_n, d), elements=ints.map(float)))
    gen[np.abs(gen).sum(axis=1) == 0, 0] = 1.0
    clips[np.abs(clips).sum(axis=1) == 0, 0] = 1.0
    cuts = draw(st.lists(st.integers(0, big_n), max_size=4))
    tile = draw(st.integers(1, 8))
    seg = draw(st.booleans())
    groups = np.sort(np.array(draw(st.lists(st.integers(0, big_n), min_size=big_n,
                                             max_size=big_n)))) if seg else None
    return gen, clips, k, cuts, tile, groups


@given(problems())
def test_property_blocked_equals_brute_force(problem) -> None:
    gen, clips, k, cuts, tile, groups = problem
    assert_same(blocked(gen, clips, k, cuts, tile, groups), brute_force_topk(gen, clips, k, groups))


@pytest.mark.parametrize("depth", [1, 10, 64, 128, 199])
@pytest.mark.parametrize("ties", [False, True])
def test_faiss_preselection_equals_numpy_path_and_brute_force(depth: int, ties: bool) -> None:
    """Search depths of attribution: faiss-preselected rows are the exact top-k, bit for bit."""
    rng = np.random.default_rng(depth + 1000 * ties)
    gen = normalize(random_emb(rng, 40, 32, ties=ties))
    clips = normalize(random_emb(rng, 400, 32, ties=ties))
    keys = np.arange(400) * 3 + 2  # tie-break order is the catalogue index, not the row
    fast = topk_block(gen, clips, keys, depth)
    slow = topk_block(gen, clips, keys, depth, use_faiss=False)
    assert_same(fast, slow)
    ref = brute_force_topk(gen, clips, depth)
    np.testing.assert_array_equal(fast.idx, keys[ref.idx])
    np.testing.assert_array_equal(fast.sim, ref.sim)


def test_preselection_proves_rows_on_spread_data() -> None:
    from attribution.search import preselect_topk

    rng = np.random.default_rng(3)
    gen, clips = normalize(rng.normal(size=(50, 64))), normalize(rng.normal(size=(3000, 64)))
    _, proved = preselect_topk(gen, clips, np.arange(3000), 20)
    assert proved.mean() > 0.9  # the fast path is the one taken


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_preselection_order_and_score_errors_do_not_change_the_result(
        monkeypatch: pytest.MonkeyPatch, shift: float) -> None:
    """faiss's tie order never matters; scores off by more than the bound make rows unproved."""
    from attribution import search

    rng = np.random.default_rng(4)
    gen = normalize(random_emb(rng, 30, 16, ties=True))
    clips = normalize(random_emb(rng, 500, 16, ties=True))
    real = search._faiss_knn

    def scrambled(g: np.ndarray, c: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        approx, pos = real(g, c, width)
        return approx[:, ::-1] + np.float32(shift), pos[:, ::-1]

    monkeypatch.setattr(search, "_faiss_knn", scrambled)
    _, proved = search.preselect_topk(gen, clips, np.arange(500), 10)
    assert proved.any() if shift == 0.0 else not proved.any()
    assert_same(topk_block(gen, clips, np.arange(500), 10), brute_force_topk(gen, clips, 10))


def test_unproved_rows_take_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """No margin: most rows cannot be proved, the mixed result is still exact."""
    from attribution import search

    monkeypatch.setattr(search, "MARGIN_MIN", 0)
    monkeypatch.setattr(search, "MARGIN_DIV", 10**9)
    rng = np.random.default_rng(5)
    gen = normalize(random_emb(rng, 60, 24, ties=True))
    clips = normalize(random_emb(rng, 700, 24, ties=True))
    _, proved = search.preselect_topk(gen, clips, np.arange(700), 12)
    assert 0 < proved.sum() < len(proved) or not proved.any()
    assert_same(topk_block(gen, clips, np.arange(700), 12), brute_force_topk(gen, clips, 12))
