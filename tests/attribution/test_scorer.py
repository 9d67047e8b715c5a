"""KnnScorer: the scikit-learn-style protocol and the attributions table it returns."""

from __future__ import annotations

import inspect

import numpy as np
import polars as pl
import pytest

from attribution import weighting
from attribution.reference import brute_force_topk
from attribution.candidates import DEFAULT_DEPTH
from attribution.scorer import KnnScorer, ParameterError, default_method, write_attributions
from contract import schema as S
from contract.errors import ContractError, ResidualsError
from contract.io import check_attribution_weights, read_table
from tests.attribution.engine_data import clips_frame, gens_frame, random_emb, write


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return random_emb(rng, 80, 6), random_emb(rng, 25, 6)


def test_init_only_stores_arguments() -> None:
    scorer = KnnScorer(k=3, method="softmax", scheduler="local", workers=2, block_size=7,
                       temperature=0.1)
    assert vars(scorer) == {"k": 3, "method": "softmax", "scheduler": "local", "workers": 2,
                            "block_size": 7, "partition_rows": scorer.partition_rows,
                            "tile": scorer.tile, "depth": DEFAULT_DEPTH,
                            "n_concepts": scorer.n_concepts, "fan_in": 8,
                            "method_params": {"temperature": 0.1}}
    assert list(inspect.signature(KnnScorer).parameters)[:5] == [
        "k", "method", "scheduler", "workers", "block_size"]


def test_fit_refuses_a_fan_in_below_two(data) -> None:
    clips, _ = data
    with pytest.raises(ParameterError, match=r"^fan_in=1: expected an integer >= 2$"):
        KnnScorer(k=2, fan_in=1).fit(clips_frame(clips))


def test_fit_returns_self_with_learned_state(data) -> None:
    clips, _ = data
    scorer = KnnScorer(k=4)
    assert scorer.fit(clips_frame(clips)) is scorer
    assert scorer.catalogue_.n_clips == 80 and scorer.method_ == default_method()
    assert default_method() == getattr(weighting, "DEFAULT_METHOD", "softmax")


def test_score_table_matches_reference(data, tmp_path) -> None:
    clips, gens = data
    cdf = clips_frame(clips, ids=[f"c{i:03d}" for i in np.random.default_rng(1).permutation(80)])
    gdf = gens_frame(gens)[::-1]  # input order is kept, whatever it is
    out = KnnScorer(k=5, depth=5, method="softmax", block_size=4, partition_rows=16,
                    min_similarity=-1.0).fit(cdf).score(gdf)
    assert out.schema == pl.Schema({**S.ATTRIBUTIONS_SCHEMA, S.CONFIDENCE: pl.Float64()})
    assert out.height == 25 * 5
    assert out[S.GENERATION_ID].unique(maintain_order=True).to_list() == \
        gdf[S.GENERATION_ID].to_list()
    assert out[S.RANK].to_list() == [1, 2, 3, 4, 5] * 25
    # reference: brute force on the clips in clip_id order (the catalogue order)
    order = np.argsort(cdf[S.CLIP_ID].to_numpy())
    gen_rows = np.arange(25)[::-1]
    ref = brute_force_topk(gens[gen_rows], clips[order], 5)
    assert out[S.CLIP_ID].to_list() == cdf[S.CLIP_ID].to_numpy()[order][ref.idx.ravel()].tolist()
    np.testing.assert_array_equal(out[S.SIMILARITY].to_numpy(), ref.topk.sim.ravel())
    creators = dict(zip(cdf[S.CLIP_ID].to_list(), cdf[S.CREATOR_ID].to_list()))
    assert out[S.CREATOR_ID].to_list() == [creators[c] for c in out[S.CLIP_ID].to_list()]
    check_attribution_weights(out, "out")
    path = tmp_path / "a.parquet"
    write_attributions(out, path)
    assert read_table(path, S.ATTRIBUTIONS).equals(out)


def test_frame_and_file_give_same_table(data, tmp_path) -> None:
    clips, gens = data
    a = KnnScorer(k=3).fit(clips_frame(clips)).score(gens_frame(gens))
    cpath = write(clips_frame(clips), tmp_path / "c.parquet", 9)
    gpath = write(gens_frame(gens), tmp_path / "g.parquet", 9)
    b = KnnScorer(k=3, partition_rows=20).fit(cpath).score(gpath)
    assert a.equals(b)


def test_novel_generation_gets_zero_weight() -> None:
    clips = np.eye(4, dtype=np.float32)
    gens = np.array([[1, 0, 0, 0], [-1, -1, -1, -1]], dtype=np.float32)
    out = KnnScorer(k=2, method="softmax", min_similarity=0.5).fit(
        clips_frame(clips)).score(gens_frame(gens))
    sums = out.group_by(S.GENERATION_ID, maintain_order=True).agg(pl.col(S.WEIGHT).sum())
    assert sums[S.WEIGHT].to_list() == [1.0, 0.0]


def test_segment_id_of_best_segment() -> None:
    clips = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)
    df = clips_frame(clips, ids=["a", "a", "b", "b"], segments=["s0", "s1", "s0", "s1"])
    out = KnnScorer(k=2, method="softmax").fit(df).score(gens_frame(
        np.array([[0, 1]], dtype=np.float32)))
    assert out.select(S.CLIP_ID, S.SEGMENT_ID, S.RANK).rows() == [("a", "s1", 1),
                                                                 ("b", "s0", 2)]
    with pytest.raises(ResidualsError, match="k=3: larger than the catalogue, which holds 2"):
        KnnScorer(k=3).fit(df)


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_rejected(data, k) -> None:
    with pytest.raises(ResidualsError, match=f"k={k}: expected an integer >= 1"):
        KnnScorer(k=k).fit(clips_frame(data[0]))


def test_k_larger_than_catalogue_rejected(data) -> None:
    with pytest.raises(ResidualsError, match="k=81: larger than the catalogue"):
        KnnScorer(k=81).fit(clips_frame(data[0]))


def test_unknown_method_rejected(data) -> None:
    with pytest.raises(ResidualsError, match="method='nope': unknown weighting method"):
        KnnScorer(method="nope").fit(clips_frame(data[0]))


def test_bad_generations(data) -> None:
    clips, gens = data
    scorer = KnnScorer(k=2).fit(clips_frame(clips))
    with pytest.raises(ContractError, match="has 5 values, expected 6"):
        scorer.score(gens_frame(gens[:, :5]))
    bad = gens.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ContractError, match="row 3 .*is nan"):
        scorer.score(gens_frame(bad))
    bad[3] = 0.0
    with pytest.raises(ContractError, match="row 3 .*zero norm"):
        scorer.score(gens_frame(bad))


def test_score_before_fit() -> None:
    with pytest.raises(ResidualsError, match="before fit"):
        KnnScorer().score(gens_frame(np.ones((1, 2), np.float32)))


def test_inexact_knn_shapley_generations_are_counted() -> None:
    clips = np.array([[1, 0], [1, 0.05], [1, 0.1], [0, 1]], dtype=np.float32)
    gens = np.array([[1, 0], [0, 1]], dtype=np.float32)
    scorer = KnnScorer(k=2, depth=2, method="knn-shapley", tau=0.6).fit(clips_frame(clips))
    out = scorer.score(gens_frame(gens))
    # generation 0: both listed clips above tau and a third one exists -> not exact
    # generation 1: its second candidate is below tau -> exact
    assert scorer.inexact_generations(out) == 1
    assert KnnScorer(k=4, method="knn-shapley").fit(clips_frame(clips)).inexact_generations(
        KnnScorer(k=4, method="knn-shapley").fit(clips_frame(clips)).score(gens_frame(gens))) == 0
    soft = KnnScorer(k=2, method="softmax").fit(clips_frame(clips))
    assert soft.inexact_generations(soft.score(gens_frame(gens))) == 0
