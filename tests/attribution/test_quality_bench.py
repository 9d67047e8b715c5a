"""The metrics, the selection rule and the LDS of bench/ on hand-checked cases; both scripts
end to end on tiny data."""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import polars as pl
import pytest

from tests.conftest import ROOT


def _load(script: str):
    name = f"bench_{script}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{script}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def aq():
    return _load("attribution_quality")


def frame(rows: list[tuple[int, int, int, float]]) -> pl.DataFrame:
    """(g, c, creator, w) rows, ranked in the order given within each generation."""
    g = np.array([r[0] for r in rows])
    rank = np.arange(len(g)) - np.searchsorted(g, g)
    return pl.DataFrame({"g": g, "c": [r[1] for r in rows], "creator": [r[2] for r in rows],
                         "rank": rank, "w": [float(r[3]) for r in rows]})


# Truth: g0 <- clip 0 (0.75, creator 0) and clip 2 (0.25, creator 1); g1 novel; g2 <- clip 3.
TRUTH = pl.DataFrame({"g": [0, 0, 2], "c": [0, 2, 3], "creator": [0, 1, 1],
                      "w": [0.75, 0.25, 1.0]})
# Attributed: g0 ranks a non-source first; g1 (novel) gets full credit; g2 nothing.
ATT = frame([(0, 4, 2, 0.5), (0, 0, 0, 0.3), (0, 2, 1, 0.2), (1, 1, 0, 1.0), (2, 3, 1, 0.0)])


def test_recall_counts_only_positive_weights_among_the_largest() -> None:
    assert aq().recall(ATT, TRUTH) == pytest.approx(2 / 3)
    assert aq().recall(ATT, TRUTH, at=2) == pytest.approx(1 / 3)  # c2 is third by weight
    perfect = frame([(0, 0, 0, 0.75), (0, 2, 1, 0.25), (2, 3, 1, 1.0)])
    assert aq().recall(perfect, TRUTH) == 1.0
    assert aq().mean_average_precision(perfect, TRUTH) == 1.0


def test_mean_average_precision_by_hand() -> None:
    # g0: miss, hit at 2, hit at 3 -> (1/2 + 2/3) / 2; g2: nothing -> 0
    assert aq().mean_average_precision(ATT, TRUTH) == pytest.approx((1 / 2 + 2 / 3) / 2 / 2)


def test_second_copy_of_a_found_source_is_a_miss() -> None:
    # clip 0 met twice (a copy canonicalised to 0) at positions 1 and 2, then clip 2 at 3
    att = frame([(0, 0, 0, 0.5), (0, 0, 0, 0.3), (0, 2, 1, 0.2)])
    truth = TRUTH.filter(pl.col("g") == 0)
    assert aq().recall(att, truth) == 1.0
    assert aq().mean_average_precision(att, truth) == pytest.approx((1 + 2 / 3) / 2)


def test_share_l1_novel_credit_false_novel_and_duplicators_by_hand() -> None:
    # attributed mass: creator 0: 0.3 + 1.0, creator 1: 0.2, creator 2: 0.5 (total 2)
    # planted mass: creator 0: 0.75, creator 1: 1.25 (total 2)
    assert aq().share_l1(ATT, TRUTH) == pytest.approx(0.275 + 0.525 + 0.25)
    assert aq().novel_credit(ATT, np.array([1])) == 1.0
    assert aq().novel_credit(ATT, np.array([1, 5])) == 0.5  # g5 has no rows: 0
    assert aq().novel_credit(ATT, np.array([], dtype=np.int64)) == 0.0
    assert aq().false_novel(ATT, np.array([0, 2])) == 0.5
    # novel g1 paid 1.0, sourced g2 paid nothing: 2 of 3 generations misrouted
    assert aq().misrouted(ATT, np.array([1]), np.array([0, 2])) == pytest.approx(2 / 3)
    assert aq().misrouted(ATT, np.array([], dtype=np.int64), np.array([0])) == 0.0
    assert aq().duplicator_ratio(ATT, TRUTH, np.array([0])) == pytest.approx(0.65 / 0.375)
    assert math.isnan(aq().duplicator_ratio(ATT, TRUTH, np.array([], dtype=np.int64)))
    nothing = ATT.with_columns(w=pl.lit(0.0))
    assert aq().share_l1(nothing, TRUTH) == pytest.approx(1.0)


def _m(recall: float, l1: float, novel: float, false_novel: float,
       dup: float = math.nan, misrouted: float | None = None) -> dict[str, float]:
    wrong = (novel + false_novel) / 2 if misrouted is None else misrouted
    return {"recall@10": recall, "retrieval@10": recall, "mAP": recall, "share_L1": l1,
            "novel_credit": novel, "false_novel": false_novel, "misrouted": wrong,
            "dup_ratio": dup}


def test_worst_takes_the_worst_family_of_each_metric() -> None:
    w = aq().worst({"a": _m(0.9, 0.01, 0.0, 0.0, 1.01), "b": _m(0.6, 0.2, 0.5, 0.1),
                    "c": _m(0.8, 0.05, 0.1, 0.3, 0.9)})
    assert w["recall@10"] == 0.6 and w["share_L1"] == 0.2
    assert w["novel_credit"] == 0.5 and w["false_novel"] == 0.3
    assert w["dup_error"] == pytest.approx(0.1)


def test_choose_satisfies_constraints_then_worst_recall_then_worst_l1() -> None:
    good = _m(0.9, 0.01, 0.0, 0.0)
    results = {
        "best on one family only": {"x": good, "y": _m(0.95, 0.01, 0.5, 0.0)},  # novel fails
        "lower recall": {"x": good, "y": _m(0.6, 0.01, 0.1, 0.0)},
        "higher L1": {"x": good, "y": _m(0.7, 0.2, 0.1, 0.0)},
        "chosen": {"x": good, "y": _m(0.7, 0.1, 0.1, 0.0)},
    }
    assert aq().choose(results) == "chosen"
    # the real family takes no part in the constraints
    results["chosen"]["real"] = _m(0.1, 0.9, 1.0, 0.5)
    assert aq().choose(results) == "chosen"
    # nothing feasible: the smallest worst misrouted share wins among recalls near the best
    bad = {n: {"x": _m(r, 0.1, 0.9, 0.0, misrouted=m)}
           for n, r, m in (("a", 0.85, 0.10), ("b", 0.9, 0.30))}
    assert aq().choose(bad) == "a"
    # ... but one that misroutes less by crediting the wrong clips does not compete
    bad["c"] = {"x": _m(0.9 - aq().RECALL_SLACK - 0.05, 0.1, 0.9, 0.0, misrouted=0.01)}
    assert aq().choose(bad) == "a"


def test_choose_breaks_ties_within_noise_by_the_smaller_depth() -> None:
    noise = aq().NOISE
    results = {"deep": {"x": _m(0.80, 0.01, 0.0, 0.0)},
               "shallow": {"x": _m(0.80 - noise / 2, 0.02, 0.0, 0.0)},
               "shallower but worse": {"x": _m(0.80 - 2 * noise, 0.01, 0.0, 0.0)}}
    depths = {"deep": 128, "shallow": 32, "shallower but worse": 16}
    assert aq().choose(results, depths) == "shallow"
    assert aq().choose(results) == "deep"  # without depths: the highest recall


def test_target_checks_split_synthetic_and_real() -> None:
    text = [d for d, _, _ in aq().target_checks({"real": _m(0.8, 0.05, 1.0, 0.0)})]
    assert text == ["real recall@10 0.8000 >= 0.85", "real share_L1 0.0500 <= 0.1"]
    results = aq().target_checks({"x": _m(0.75, 0.04, 0.1, 0.0, 1.02),
                                  "real": _m(0.8, 0.05, 1.0, 0.0)})
    assert [ok for _, _, ok in results] == [True, True, True, True, True, False, True]


def test_quality_script_end_to_end_on_small_families(capsys) -> None:
    default = aq().DEFAULT_CONFIG
    assert default is not None, "the library defaults must be a row of CONFIGS"
    argv = ["--families", "topics,duplicates", "--configs", f"{default},softmax D=32",
            "--scale", "0.05"]
    assert aq().main(argv) == 0
    out = capsys.readouterr().out
    assert "chosen by the selection rule on the tuning seeds: " in out
    assert out.count(f"| {default} | topics |") == 1
    assert f"targets, {default} (held-out): synthetic worst recall@10" in out


# ---- LDS ----------------------------------------------------------------------------------------

def lds_mod():
    return _load("attribution_lds")


def test_lds_is_one_when_the_log_likelihood_follows_the_weights() -> None:
    m = lds_mod()
    subsets = m.half_subsets(6, 20, seed=1)
    assert (subsets.sum(axis=1) == 3).all()
    w = np.array([[1.0, 0, 0, 0, 0, 0], [0.5, 0.3, 0.2, 0, 0, 0]])
    pred = subsets @ w.T
    score, rho = m.lds(w, subsets, np.exp(2 * pred) - 3)  # any increasing function
    assert score == pytest.approx(1.0) and rho == pytest.approx([1.0, 1.0])
    assert m.lds(w, subsets, -pred)[0] == pytest.approx(-1.0)
    # no weight: the prediction is constant, correlation 0
    assert m.lds(np.zeros_like(w), subsets, pred)[0] == 0.0


def test_lds_of_unrelated_weights_is_near_zero() -> None:
    m = lds_mod()
    rng = np.random.default_rng(0)
    subsets = m.half_subsets(40, 200, seed=2)
    w = rng.random((30, 40))
    score, _ = m.lds(w, subsets, rng.standard_normal((200, 30)))
    assert abs(score) < 0.05


def test_lds_script_end_to_end(capsys) -> None:
    assert lds_mod().main(["--subsets", "4", "--k", "5"]) == 0
    out = capsys.readouterr().out
    for name in lds_mod().METHODS:
        assert f"| {name} |" in out


def test_novelty_scores_auc_by_hand() -> None:
    auc = _load("novelty_scores").auc
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    # novel 2 beats sourced 1 only, novel 5 beats both: 3 wins of 4 pairs
    assert auc(np.array([2.0, 5.0]), np.array([1.0, 3.0])) == 0.75
    assert auc(np.array([1.0]), np.array([1.0])) == 0.5  # a tie counts half
