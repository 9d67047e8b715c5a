"""The metrics of bench/attribution_quality.py on hand-checked cases, and the script end to end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from attribution.candidates import Candidates
from tests.conftest import ROOT


def _bench():
    name = "attribution_quality_bench"
    if name not in sys.modules:
        path = ROOT / "bench" / "attribution_quality.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def tiny(idx: list[list[int]]):
    """Two generations over 6 clips of 3 creators; clip 5 is a copy of clip 0.

    Generation 0 has planted sources 0 (0.75) and 2 (0.25); generation 1 is novel.
    Creators: clips 0, 1, 5 -> creator 0 (the duplicator); 2, 3 -> 1; 4 -> 2.
    """
    aq = _bench()
    idx_arr = np.array(idx, dtype=np.int64)
    n, k = idx_arr.shape
    cands = Candidates(sim=np.ones((n, k), np.float32), valid=np.ones((n, k), bool))
    return aq.Bench(
        cands=cands, idx=idx_arr, canon=np.array([0, 1, 2, 3, 4, 0]),
        clip_creator=np.array([0, 0, 1, 1, 2, 0]),
        truth_gen=np.array([0, 0]), truth_src=np.array([0, 2]),
        truth_weight=np.array([0.75, 0.25]),
        duplicators=np.array([True, False, False]), n_creators=3,
    )


def test_perfect_weights_score_perfectly() -> None:
    aq = _bench()
    b = tiny([[0, 2, 4], [1, 3, 4]])
    w = np.array([[0.75, 0.25, 0.0], [0.0, 0.0, 0.0]])
    m = aq.metrics(b, w)
    assert m["recall@10"] == 1.0 and m["mAP"] == 1.0 and m["wrecall"] == 1.0
    assert m["overlap"] == pytest.approx(1.0) and m["share_L1"] == pytest.approx(0.0)
    assert m["novel"] == 0.0 and m["dup_ratio"] == pytest.approx(1.0)
    assert m["attributed"] == 1.0


def test_copy_counts_as_source_and_ranking_by_weight() -> None:
    aq = _bench()
    # the copy (5) of source 0 is found, ranked second by weight behind a non-source
    b = tiny([[4, 5, 2], [1, 3, 4]])
    w = np.array([[0.5, 0.3, 0.2], [0.2, 0.0, 0.8]])
    m = aq.metrics(b, w)
    assert m["recall@10"] == 1.0 and m["wrecall"] == 1.0
    # ranked list 4 (miss), 5 (hit at 2), 2 (hit at 3): AP = (1/2 + 2/3) / 2
    assert m["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m["overlap"] == pytest.approx(min(0.75, 0.3) + min(0.25, 0.2))
    # attributed creator mass: c0 0.3 + 0.2, c1 0.2, c2 0.5 + 0.8 over 2.0; planted 0.75, 0.25, 0
    share = np.array([0.5, 0.2, 1.3]) / 2.0
    assert m["share_L1"] == pytest.approx(np.abs(share - [0.75, 0.25, 0.0]).sum())
    assert m["novel"] == pytest.approx(1.0)
    assert m["dup_ratio"] == pytest.approx(share[0] / 0.75)


def test_zero_weight_candidates_are_not_retrieved() -> None:
    aq = _bench()
    b = tiny([[0, 2, 4], [1, 3, 4]])
    w = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    m = aq.metrics(b, w)
    assert m["recall@10"] == 0.5 and m["wrecall"] == 0.75 and m["mAP"] == pytest.approx(0.5)
    assert aq.retrieval_recall(b) == (1.0, 1.0)


def test_script_runs_end_to_end_on_tiny_samples(tmp_path: Path, capsys) -> None:
    from residuals.samples import make_samples

    aq = _bench()
    make_samples(tmp_path, creators=12, clips=120, generations=40, dim=16, seed=3)
    assert aq.main(["--data", str(tmp_path), "--more-k", "12"]) == 0
    out = capsys.readouterr().out
    assert "retrieval baseline: exact cosine top-10 recall" in out
    assert out.count("| nnls") == 4  # tuning and evaluation, with and without grouping
    assert "targets, default nnls at k = 12" in out
