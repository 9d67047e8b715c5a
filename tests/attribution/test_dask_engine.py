"""The Dask graph equals the plain brute force, and gives the same bits on every scheduler."""

from __future__ import annotations


import numpy as np
import pytest

from attribution import dask_engine, weighting
from attribution.candidates import Candidates
from attribution.catalogue import catalogue_from_frame, open_catalogue
from attribution.dask_engine import CONNECT_TIMEOUT, connect
from attribution.reference import brute_force_topk
from attribution.search import normalize
from contract.errors import ParameterError, ResidualsError
from tests.attribution.engine_data import clips_frame, random_emb, write


def _reference(gen: np.ndarray, clips: np.ndarray, k: int, method: str,
               groups: np.ndarray | None = None, **params: float):
    """Brute force on the whole problem, weighted in one call (no blocks)."""
    ref = brute_force_topk(gen, clips, k, groups)
    top = ref.topk
    gen_u, clips_u = normalize(gen), normalize(clips)
    cand = np.where(top.valid[:, :, None], clips_u[np.maximum(top.idx, 0)], 0.0)
    cands = Candidates(top.sim, top.valid, gen_u, cand.astype(np.float32))
    return top, weighting.weigh(method, cands, **params)


def _run(cat, gen, k, method, **kw):
    params = kw.pop("params", {})
    return dask_engine.run(cat, normalize(gen), k, method, params,
                           needs_embeddings=weighting.needs_embeddings(
                               method, params.get("dedup_threshold")), **kw)


@pytest.mark.parametrize("n,big_n,d,k,block,part", [
    (1, 1, 2, 1, 1, 1), (30, 200, 16, 10, 7, 33), (100, 500, 8, 5, 64, 128),
    (9, 40, 3, 40, 4, 9),
])
@pytest.mark.parametrize("method", ["softmax", "knn-shapley", "nnls"])
@pytest.mark.parametrize("ties", [False, True])
def test_engine_equals_brute_force(n, big_n, d, k, block, part, method, ties) -> None:
    rng = np.random.default_rng(n + big_n + d + ties)
    gen = random_emb(rng, n, d, ties=ties)
    clips = random_emb(rng, big_n, d, ties=ties)
    rng.shuffle(clips)
    cat = catalogue_from_frame(clips_frame(clips), partition_rows=part)
    params = {"tau": -1.0} if method == "knn-shapley" else {"min_similarity": -1.0}
    res = _run(cat, gen, k, method, block_size=block, tile=5, params=params)
    top, weight = _reference(gen, clips, k, method, **params)
    # catalogue index == stored row here because clip ids c000.. are in stored order
    np.testing.assert_array_equal(res.idx, top.idx)
    np.testing.assert_array_equal(res.sim, top.sim)
    np.testing.assert_allclose(res.weight, weight, rtol=0, atol=1e-12)
    assert res.sim.dtype == np.float32 and res.weight.dtype == np.float64


@pytest.mark.parametrize("method,params", [
    ("softmax", {"min_similarity": -1.0}), ("knn-shapley", {"tau": 0.0}),
    ("nnls", {"min_similarity": -1.0}), ("softmax", {"dedup_threshold": 0.9}),
])
def test_weights_equal_one_call_on_whole_problem(method, params) -> None:
    rng = np.random.default_rng(11)
    gen, clips = random_emb(rng, 40, 6), random_emb(rng, 150, 6)
    cat = catalogue_from_frame(clips_frame(clips), partition_rows=31)
    res = _run(cat, gen, 8, method, block_size=9, params=params)
    top, weight = _reference(gen, clips, 8, method, **params)
    np.testing.assert_array_equal(res.idx, top.idx)
    np.testing.assert_allclose(res.weight, weight, rtol=0, atol=1e-12)
    sums = res.weight.sum(axis=1)
    assert np.all(np.isclose(sums, 1.0) | (sums == 0.0))


def test_segments_through_engine(tmp_path) -> None:
    rng = np.random.default_rng(12)
    big_n = 90
    clip_of = rng.integers(0, 30, big_n)
    seg_of = [f"s{i}" for i in range(big_n)]
    ids = [f"c{c:02d}" for c in clip_of]
    clips = random_emb(rng, big_n, 5, ties=True)
    df = clips_frame(clips, ids=ids, segments=seg_of)
    cat = open_catalogue(write(df, tmp_path / "c.parquet", 10), partition_rows=20)
    gen = random_emb(rng, 12, 5, ties=True)
    res = _run(cat, gen, 6, "softmax", block_size=5)
    # reference on the catalogue order: rows sorted by (clip_id, segment_id)
    order = np.lexsort((np.array(seg_of), np.array(ids)))
    groups = np.unique(np.array(ids)[order], return_inverse=True)[1]
    ref = brute_force_topk(gen, clips[order], 6, groups)
    np.testing.assert_array_equal(res.idx, ref.idx)
    np.testing.assert_array_equal(res.sim, ref.topk.sim)


def test_same_bits_for_any_worker_count_and_sync() -> None:
    rng = np.random.default_rng(13)
    gen, clips = random_emb(rng, 300, 12), random_emb(rng, 2000, 12)
    cat = catalogue_from_frame(clips_frame(clips), partition_rows=256)
    runs = [_run(cat, gen, 10, "knn-shapley", block_size=64, workers=w, scheduler=s)
            for w, s in ((1, None), (2, None), (16, None), (None, "sync"))]
    for other in runs[1:]:
        for a, b in zip((runs[0].sim, runs[0].idx, runs[0].weight),
                        (other.sim, other.idx, other.weight)):
            assert a.tobytes() == b.tobytes()


def test_graph_does_not_depend_on_workers() -> None:
    rng = np.random.default_rng(14)
    cat = catalogue_from_frame(clips_frame(random_emb(rng, 100, 4)), partition_rows=10)
    dsk, keys = dask_engine.build_graph(cat, normalize(random_emb(rng, 50, 4)), 5, "softmax",
                                        {}, needs_embeddings=False, block_size=8)
    assert len(keys) == 7  # ceil(50 / 8) weighting tasks
    assert sum(1 for key in dsk if key[0].startswith("score-")) == 10  # one read per partition
    dsk4, _ = dask_engine.build_graph(cat, normalize(random_emb(rng, 50, 4)), 5, "softmax",
                                      {}, needs_embeddings=False, block_size=8, parallelism=40)
    # 4 block groups per partition
    assert sum(1 for key in dsk4 if key[0].startswith("score-")) == 40
    merges = [key for key in dsk if key[0].startswith("merge-")]
    assert merges and all(len(dsk[m][1]) <= dask_engine.FAN_IN for m in merges)


@pytest.mark.parametrize("fan_in", [2, 3, 64])
def test_fan_in_shapes_the_tree_not_the_result(fan_in: int) -> None:
    rng = np.random.default_rng(16)
    gen, clips = random_emb(rng, 40, 6), random_emb(rng, 400, 6)
    cat = catalogue_from_frame(clips_frame(clips), partition_rows=20)  # 20 partitions
    dsk, _ = dask_engine.build_graph(cat, normalize(gen), 5, "softmax", {},
                                     needs_embeddings=False, block_size=16, fan_in=fan_in)
    merges = [key for key in dsk if key[0].startswith("merge-")]
    assert merges and max(len(dsk[m][1]) for m in merges) == min(fan_in, 20)
    base = _run(cat, gen, 5, "softmax", block_size=16)
    got = _run(cat, gen, 5, "softmax", block_size=16, fan_in=fan_in)
    for a, b in zip((base.sim, base.idx, base.weight), (got.sim, got.idx, got.weight)):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("fan_in", [1, 0, 2.5, True])
def test_bad_fan_in_is_named(fan_in: object) -> None:
    rng = np.random.default_rng(17)
    cat = catalogue_from_frame(clips_frame(random_emb(rng, 10, 3)), partition_rows=5)
    with pytest.raises(ParameterError, match=r"^fan_in=.*: expected an integer >= 2$"):
        dask_engine.build_graph(cat, normalize(random_emb(rng, 4, 3)), 2, "softmax", {},
                                needs_embeddings=False, fan_in=fan_in)


def test_progress_is_reported() -> None:
    rng = np.random.default_rng(15)
    cat = catalogue_from_frame(clips_frame(random_emb(rng, 60, 3)), partition_rows=10)
    seen: list[tuple[int, int]] = []
    _run(cat, random_emb(rng, 20, 3), 3, "softmax", block_size=5,
         progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] and len({t for _, t in seen}) == 1


def test_local_cluster_same_bits() -> None:
    rng = np.random.default_rng(16)
    gen, clips = random_emb(rng, 100, 8), random_emb(rng, 600, 8)
    cat = catalogue_from_frame(clips_frame(clips), partition_rows=128)
    messages: list[str] = []
    local = _run(cat, gen, 7, "nnls", block_size=32, scheduler="local", workers=2,
                 announce=messages.append)
    threads = _run(cat, gen, 7, "nnls", block_size=32)
    assert local.idx.tobytes() == threads.idx.tobytes()
    assert local.sim.tobytes() == threads.sim.tobytes()
    assert local.weight.tobytes() == threads.weight.tobytes()
    assert any("dashboard: http://" in m for m in messages)


def test_unreachable_scheduler_fails_fast() -> None:
    rng = np.random.default_rng(17)
    cat = catalogue_from_frame(clips_frame(random_emb(rng, 5, 3)))
    with pytest.raises(ResidualsError,
                       match=f"cannot reach a Dask scheduler within {CONNECT_TIMEOUT:.0f} s"):
        _run(cat, random_emb(rng, 2, 3), 2, "softmax", scheduler="tcp://127.0.0.1:9")


def test_unreachable_scheduler_names_the_parameter() -> None:
    """The library names its parameter (``scheduler=...``); only the CLI names a flag."""
    with pytest.raises(ParameterError) as got, connect("tcp://127.0.0.1:9"):
        pass
    assert str(got.value).startswith("scheduler='tcp://127.0.0.1:9': cannot reach")
    assert got.value.name == "scheduler" and "--" not in str(got.value)


def test_large_k_with_embeddings_caps_the_block(monkeypatch) -> None:
    rng = np.random.default_rng(18)
    gen, clips = random_emb(rng, 50, 4), random_emb(rng, 120, 4)
    cat = catalogue_from_frame(clips_frame(clips), partition_rows=50)
    want = _run(cat, gen, 100, "nnls", block_size=64, params={"min_similarity": -1.0})
    seen: list[int] = []
    real = dask_engine.build_graph

    def spy(*args, **kwargs):
        seen.append(kwargs["block_size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(dask_engine, "CANDIDATE_BYTES", 4 * 100 * 4 * 7)  # 7 generations
    monkeypatch.setattr(dask_engine, "build_graph", spy)
    got = _run(cat, gen, 100, "nnls", block_size=64, params={"min_similarity": -1.0})
    assert seen == [7]
    assert got.idx.tobytes() == want.idx.tobytes() and got.sim.tobytes() == want.sim.tobytes()
    np.testing.assert_allclose(got.weight, want.weight, rtol=0, atol=1e-12)


def test_every_graph_has_keys_of_its_own() -> None:
    """Two runs on one scheduler must never share a task key (it would swap their results)."""
    rng = np.random.default_rng(19)
    cat = catalogue_from_frame(clips_frame(random_emb(rng, 40, 4)), partition_rows=10)
    gen = random_emb(rng, 6, 4)
    graphs = [dask_engine.build_graph(cat, gen, 3, "softmax", {}, needs_embeddings=True,
                                      block_size=2) for _ in range(2)]
    first, second = (set(dsk) for dsk, _ in graphs)
    assert len(first) == len(second) > 0
    assert not first & second


def test_attribution_depth_through_engine_equals_brute_force_on_every_worker_count() -> None:
    """Depth 64 with nnls: the faiss-preselected search and the compiled solver, end to end."""
    rng = np.random.default_rng(17)
    gen, clips = random_emb(rng, 120, 32), random_emb(rng, 999, 32)  # ids c000..c998 in order
    cat = catalogue_from_frame(clips_frame(clips), partition_rows=300)
    params = {"min_similarity": -1.0}
    top, weight = _reference(gen, clips, 64, "nnls", **params)
    runs = [_run(cat, gen, 64, "nnls", block_size=50, workers=w, scheduler=s, params=params)
            for w, s in ((1, None), (2, None), (None, "sync"))]
    np.testing.assert_array_equal(runs[0].idx, top.idx)
    np.testing.assert_array_equal(runs[0].sim, top.sim)
    np.testing.assert_allclose(runs[0].weight, weight, rtol=0, atol=1e-12)
    assert ((runs[0].weight > 0).sum(axis=1) > 3).any()  # decompositions over many candidates
    for other in runs[1:]:
        for a, b in zip((runs[0].sim, runs[0].idx, runs[0].weight),
                        (other.sim, other.idx, other.weight)):
            assert a.tobytes() == b.tobytes()
