"""What is written: positive weights up to k, renormalised; confidence; the novelty rule."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from attribution import dask_engine, weighting
from attribution.candidates import Candidates, written
from attribution.catalogue import catalogue_from_frame
from attribution.confidence import confidence, confidence_label
from attribution.novelty import fit_centroids, novel
from attribution.reference import brute_force_topk
from attribution.scorer import KnnScorer, ParameterError
from attribution.search import normalize
from contract import schema as S
from contract.io import check_attribution_weights
from contract.resemblance import LABEL_NONE, LABEL_STRONG, LABEL_WEAK, STRONG, WEAK
from tests.attribution.engine_data import clips_frame, gens_frame, random_emb


def written_slowly(weight: np.ndarray, valid: np.ndarray, k: int) -> list[dict[int, float]]:
    """One row at a time, the obvious way: {position: weight} per generation."""
    rows = []
    for w, v in zip(weight, valid):
        pos = [j for j in range(len(w)) if w[j] > 0]
        if not pos:
            first = [j for j in range(len(w)) if v[j]]
            rows.append({first[0]: 0.0} if first else {})
            continue
        pos.sort(key=lambda j: (-w[j], j))
        kept = pos[:k]
        total = sum(w[j] for j in kept) if len(pos) > k else 1.0
        rows.append({j: (w[j] / total if len(pos) > k else w[j]) for j in kept})
    return rows


weights = hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 12)),
                     elements=st.sampled_from([0.0, 0.0, 0.1, 0.25, 0.5, 1.0, 3.0]))


@given(weights, st.integers(1, 14), st.integers(0, 12))
def test_written_equals_the_row_by_row_rule(raw: np.ndarray, k: int, pad: int) -> None:
    valid = np.ones(raw.shape, dtype=bool)
    valid[:, raw.shape[1] - min(pad, raw.shape[1] - 1):] = False  # padding at the end
    total = np.where(valid, raw, 0.0).sum(axis=1, keepdims=True)
    weight = np.divide(np.where(valid, raw, 0.0), total, out=np.zeros_like(raw),
                       where=total > 0)
    got = written(weight, valid, k)
    for q, want in enumerate(written_slowly(weight, valid, k)):
        live = got.pos[q] >= 0
        assert got.pos[q][live].tolist() == sorted(want)  # by rank, ascending
        assert (got.pos[q][~live] == -1).all() and (got.weight[q][~live] == 0).all()
        np.testing.assert_allclose(got.weight[q][live], [want[j] for j in sorted(want)],
                                   rtol=0, atol=1e-15)
        assert live.sum() <= k
        s = got.weight[q].sum()
        assert s == 0 or abs(s - 1) < 1e-12


def test_positive_weights_up_to_k_are_kept_bit_for_bit() -> None:
    weight = np.array([[0.5, 0.0, 0.3, 0.2], [0.0, 0.0, 0.0, 0.0]])
    got = written(weight, np.ones((2, 4), dtype=bool), 3)
    assert got.pos.tolist() == [[0, 2, 3], [0, -1, -1]]
    assert got.weight.tolist() == [[0.5, 0.3, 0.2], [0.0, 0.0, 0.0]]
    cut = written(weight, np.ones((2, 4), dtype=bool), 2)
    assert cut.pos[0].tolist() == [0, 2]
    np.testing.assert_allclose(cut.weight[0], [0.625, 0.375], rtol=0, atol=1e-15)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_confidence_of_a_copy_a_mix_and_nothing() -> None:
    rng = np.random.default_rng(0)
    c = _unit(rng.standard_normal((3, 64)))
    mix = _unit(0.6 * c[0] + 0.4 * c[1])
    gen = np.stack([c[0], mix, mix, c[2]])
    cand = np.broadcast_to(c, (4, 3, 64))
    pos = np.array([[0, -1], [0, 1], [2, -1], [0, -1]])
    weight = np.array([[1.0, 0.0], [0.6, 0.4], [1.0, 0.0], [0.0, 0.0]])
    got = confidence(gen, cand, pos, weight)
    np.testing.assert_allclose(got[:2], [1.0, 1.0], rtol=0, atol=1e-12)
    assert 0 <= got[2] < 0.2  # credited the wrong clip: low confidence
    assert got[3] == 0.0  # no credit, no confidence


def test_confidence_labels_and_thresholds() -> None:
    assert 0 < WEAK < STRONG < 1
    assert confidence_label(1.0) == confidence_label(STRONG) == LABEL_STRONG
    assert confidence_label(np.nextafter(STRONG, 0)) == confidence_label(WEAK) == LABEL_WEAK
    assert confidence_label(np.nextafter(WEAK, 0)) == confidence_label(0.0) == LABEL_NONE
    with pytest.raises(ValueError, match=r"x=1.5: expected a confidence in \[0, 1\]"):
        confidence_label(1.5)


def planted(seed: int = 0, d: int = 128, topics: int = 12, per: int = 120, n: int = 40):
    """Clips = topic + own detail; novel = the same topics with new detail; copies; mixes."""
    rng = np.random.default_rng(seed)
    centre = _unit(rng.standard_normal((topics, d)))
    clips = _unit(centre[np.repeat(np.arange(topics), per)]
                  + 0.8 * _unit(rng.standard_normal((topics * per, d))))
    novel_g = _unit(centre[rng.integers(0, topics, n)] + 0.8 * _unit(rng.standard_normal((n, d))))
    src = rng.integers(0, len(clips), (n, 2))
    copy = _unit(clips[src[:, 0]] + 0.2 * _unit(rng.standard_normal((n, d))))
    mix = _unit(0.6 * clips[src[:, 0]] + 0.4 * clips[src[:, 1]]
                + 0.2 * _unit(rng.standard_normal((n, d))))
    return clips, novel_g, copy, mix, src


def credited(frame: pl.DataFrame) -> np.ndarray:
    return frame.group_by(S.GENERATION_ID, maintain_order=True).agg(
        pl.col(S.WEIGHT).sum())[S.WEIGHT].to_numpy()


def test_novel_generations_in_a_dense_topic_get_nothing_and_copies_get_credit() -> None:
    clips, novel_g, copy, mix, src = planted()
    out = KnnScorer(depth=128, novelty_ratio=0.5).fit(clips_frame(clips)).score(
        gens_frame(np.vstack([novel_g, copy, mix])))
    check_attribution_weights(out, "out")
    w = credited(out)
    n = len(novel_g)
    assert (w[:n] == 0).all()  # every novel generation: no credit at all
    assert (w[n:] > 0).all()  # every copy and every mix is attributed
    top = out.filter(pl.col(S.WEIGHT) > 0).group_by(S.GENERATION_ID, maintain_order=True).agg(
        pl.col(S.CLIP_ID).sort_by(S.WEIGHT, descending=True).first())[S.CLIP_ID].to_list()
    assert top[:n] == [f"c{i:03d}" for i in src[:, 0]]  # the copied clip gets the most
    conf = out.group_by(S.GENERATION_ID, maintain_order=True).agg(
        pl.col(S.CONFIDENCE).first())[S.CONFIDENCE].to_numpy()
    assert (conf[:n] == 0).all() and (conf[n:2 * n] > STRONG).all()


def test_the_old_floor_credits_the_same_novel_generations() -> None:
    """The fixed cosine floor, kept for comparison, is what the concepts rule replaces."""
    clips, novel_g, *_ = planted()
    out = KnnScorer(depth=128, novelty="floor").fit(clips_frame(clips)).score(gens_frame(novel_g))
    assert (credited(out) > 0).mean() > 0.9


@pytest.mark.parametrize("ratio", [0.0, 1.5])
def test_novelty_ratio_outside_its_range_is_rejected(ratio: float) -> None:
    c = fit_centroids(_unit(np.random.default_rng(1).standard_normal((40, 8))), 4)
    with pytest.raises(ValueError, match=f"novelty_ratio={ratio}"):
        novel(c[:2], np.zeros(2), c, ratio)


def test_centroids_depend_only_on_the_sample() -> None:
    sample = _unit(np.random.default_rng(2).standard_normal((400, 16)))
    a, b = fit_centroids(sample, 8), fit_centroids(sample.copy(), 8)
    assert a.tobytes() == b.tobytes() and a.shape == (8, 16)
    assert fit_centroids(sample[:12], 8).shape == (3, 16)  # at least 4 clips per concept


@pytest.mark.parametrize("write", [1, 3, 6])
def test_engine_writes_what_the_rule_keeps_from_brute_force(write: int) -> None:
    rng = np.random.default_rng(write)
    gen, clips = random_emb(rng, 30, 8), random_emb(rng, 200, 8)
    cat = catalogue_from_frame(clips_frame(clips), partition_rows=37)
    params = {"min_similarity": 0.0}
    res = dask_engine.run(cat, normalize(gen), 12, "softmax", params, needs_embeddings=True,
                          block_size=7, tile=5, write=write)
    top = brute_force_topk(normalize(gen), normalize(clips), 12).topk
    cand = normalize(clips)[np.maximum(top.idx, 0)]
    cands = Candidates(top.sim, top.valid, normalize(gen), cand)
    sel = written(weighting.weigh("softmax", cands, **params), top.valid, write)
    np.testing.assert_array_equal(res.idx, np.where(sel.pos >= 0, np.take_along_axis(
        top.idx, np.maximum(sel.pos, 0), axis=1), -1))
    np.testing.assert_array_equal(res.rank, sel.pos + 1)
    np.testing.assert_allclose(res.weight, sel.weight, rtol=0, atol=1e-12)
    assert res.confidence is not None and ((res.confidence >= 0) & (res.confidence <= 1)).all()


def test_depth_is_checked_clamped_and_never_below_k() -> None:
    clips = clips_frame(random_emb(np.random.default_rng(3), 30, 4))
    with pytest.raises(ParameterError, match="depth=0: expected an integer >= 1"):
        KnnScorer(depth=0).fit(clips)
    assert KnnScorer(k=2, depth=500).fit(clips).depth_ == 30
    assert KnnScorer(k=8, depth=4).fit(clips).depth_ == 8
    out = KnnScorer(k=3, depth=10, method="softmax", min_similarity=-1.0).fit(clips).score(
        gens_frame(random_emb(np.random.default_rng(4), 5, 4)))
    assert out.group_by(S.GENERATION_ID).len()["len"].to_list() == [3] * 5
    check_attribution_weights(out, "out")
