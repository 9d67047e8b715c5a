"""Fairness metrics against plain definitions, and policy comparison."""

from __future__ import annotations

import itertools

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import schema as S
from ledger.allocate import allocate
from ledger.fairness import (
    AMOUNT_SHARE,
    DELTA_MINOR,
    METRIC,
    METRICS,
    POPULATION_SHARE,
    compare,
    gini,
    lorenz,
    summary,
    top_share,
)
from ledger.policy import parse_policy
from tests.ledger.test_components import inputs


def gini_pairs(x: list[int]) -> float:
    """Mean absolute difference over twice the mean: the definition, O(n^2)."""
    n, total = len(x), sum(x)
    if n == 0 or total == 0:
        return 0.0
    return sum(abs(a - b) for a, b in itertools.product(x, x)) / (2 * n * total)


def test_gini_by_hand() -> None:
    assert gini([5, 5, 5, 5]) == 0.0
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)
    assert gini([1, 2, 3]) == pytest.approx(2 / 9)
    assert gini([]) == 0.0 and gini([0, 0]) == 0.0
    with pytest.raises(ValueError):
        gini([-1, 2])


@given(st.lists(st.integers(0, 10**6), max_size=40))
def test_gini_matches_pairwise_definition(x: list[int]) -> None:
    assert gini(x) == pytest.approx(gini_pairs(x), abs=1e-12)
    assert 0.0 <= gini(x) < 1.0


def test_lorenz() -> None:
    curve = lorenz([3, 1, 0, 4])
    assert curve[POPULATION_SHARE].to_list() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve[AMOUNT_SHARE].to_list() == pytest.approx([0, 0, 0.125, 0.5, 1.0])
    assert lorenz([0, 0])[AMOUNT_SHARE].to_list() == [0.0, 0.5, 1.0]


def test_top_share() -> None:
    x = list(range(1, 101))  # total 5050
    assert top_share(x, 0.01) == pytest.approx(100 / 5050)
    assert top_share(x, 0.10) == pytest.approx(sum(range(91, 101)) / 5050)
    assert top_share([7], 0.01) == 1.0  # ceil: at least one creator
    assert top_share([0, 0], 0.5) == 0.0
    with pytest.raises(ValueError):
        top_share(x, 0)


def allocation(body: str):  # noqa: ANN201
    policy = parse_policy(body + '\n[pool]\ncurrency = "USD"\n', source="p.toml")
    return allocate(policy, inputs(), pool_minor=10000, batch_id="b")


def test_summary() -> None:
    s = summary(allocation('[components]\nattribution = 1'))
    assert list(s) == list(METRICS)
    assert s["pool"] == 10000 and s["creators_paid"] == 2
    assert s["median_payout"] == 5000.0 and s["largest_payout"] == 8750
    assert s["gini"] == pytest.approx(gini([8750, 1250]))
    assert s["top1"] == pytest.approx(0.875) and s["top10"] == pytest.approx(0.875)


def test_compare() -> None:
    a = allocation('[components]\nattribution = 1')
    b = allocation('[components]\nequal = 1')
    metrics, movers = compare(a, b, n=5)
    assert metrics[METRIC].to_list() == list(METRICS)
    row = dict(zip(metrics[METRIC], metrics[S.COMPARE_B]))
    assert row["gini"] == 0.0 and row["largest_payout"] == 5000
    assert movers[S.CREATOR_ID].to_list() == ["b", "a"]  # b gains, a loses; c unchanged
    assert movers[DELTA_MINOR].to_list() == [3750, -3750]
    _, only_one = compare(a, b, n=0)
    assert only_one.height == 0
    same_metrics, none_moved = compare(a, a)
    assert none_moved.height == 0
    assert same_metrics[S.COMPARE_A].equals(same_metrics[S.COMPARE_B])


def test_compare_orders_ties_by_id() -> None:
    a = allocation('[components]\nequal = 1\n[rules]\nexclude_opted_out = false')
    b = allocation('[components]\nattribution = 1\n[rules]\nexclude_opted_out = false')
    _, movers = compare(a, b, n=1)
    assert movers.height == 2
    assert movers[DELTA_MINOR][0] > 0 > movers[DELTA_MINOR][1]
    assert isinstance(movers, pl.DataFrame)
