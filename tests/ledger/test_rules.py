"""Rules: licence multipliers, eligibility, minimum share, cap and floor, carry-forward."""

from __future__ import annotations

import math
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from contract import schema as S
from contract.errors import ResidualsError
from ledger import rules as R
from ledger.money import AMOUNT_MINOR, SHARE


def test_license_multiplier() -> None:
    clips = pl.DataFrame({S.LICENSE: ["CC-BY", "editorial", None, "other"]})
    expr = R.license_multiplier({"CC-BY": 1.0, "editorial": 0.5}, 0.25)
    assert clips.select(expr.alias("m"))["m"].to_list() == [1.0, 0.5, 0.25, 0.25]
    assert clips.with_columns(R.license_multiplier({}, 2.0).alias("m"))["m"].to_list() == [2.0] * 4
    nulls = pl.DataFrame({S.LICENSE: [None, None]})
    assert nulls.select(R.license_multiplier({"A": 3.0}, 1.0).alias("m"))["m"].to_list() == [
        1.0, 1.0]


def test_eligibility() -> None:
    creators = pl.DataFrame({S.CREATOR_ID: ["a", "b", "c", "d"],
                             S.OPTED_OUT: [False, True, False, True],
                             "n_clips": [3, 5, 1, 0]})
    out = R.eligibility(creators, exclude_opted_out=True, min_clips=2)
    assert out[R.ELIGIBLE].to_list() == [True, False, False, False]
    assert out[R.REASON].to_list() == [None, "opted out", "fewer than 2 clips", "opted out"]
    out = R.eligibility(creators, exclude_opted_out=False, min_clips=1)
    assert out[R.ELIGIBLE].to_list() == [True, True, True, False]
    assert out[R.REASON].to_list()[3] == "fewer than 1 clip"


def test_min_share_redistributes_pro_rata() -> None:
    frame = pl.DataFrame({S.CREATOR_ID: ["a", "b", "c"], SHARE: [0.5, 0.3, 0.05],
                          R.ELIGIBLE: [True, True, True], R.REASON: [None, None, None]},
                         schema_overrides={R.REASON: pl.String})
    out = R.min_share(frame, 0.1)
    assert out[SHARE].to_list() == pytest.approx([0.5 * 0.85 / 0.8, 0.3 * 0.85 / 0.8, 0.0])
    assert out[R.ELIGIBLE].to_list() == [True, True, False]
    assert out[R.REASON].to_list() == [None, None, R.REASON_MIN_SHARE]
    assert R.min_share(frame, 0.0).equals(frame)
    gone = R.min_share(frame, 0.9)
    assert gone[SHARE].to_list() == [0.0, 0.0, 0.0] and not gone[R.ELIGIBLE].any()


def shares(values: list[float]) -> pl.DataFrame:
    return pl.DataFrame({S.CREATOR_ID: [f"c{i:02d}" for i in range(len(values))],
                         SHARE: [float(v) for v in values]})


def test_cap_by_hand() -> None:
    # 60/30/10 of 1000 with a cap of 400: a gets 400, the excess 200 goes to b, c
    # in proportion 3:1 -> b 450? no: b would exceed the cap too, so b 400, c 200.
    out = R.bounded_amounts(shares([0.6, 0.3, 0.1]), 1000, "b", cap_minor=400)
    assert out[AMOUNT_MINOR].to_list() == [400, 400, 200]
    # 50/30/20 with cap 450: a 450, b and c share 550 as 3:2 -> 330, 220
    out = R.bounded_amounts(shares([0.5, 0.3, 0.2]), 1000, "b", cap_minor=450)
    assert out[AMOUNT_MINOR].to_list() == [450, 330, 220]


def test_floor_by_hand() -> None:
    # 90/8/2 of 1000 with a floor of 50: c 20 -> 50, b 80 stays above;
    # a and b pay for it pro rata: l * (900 + 80) = 950 -> a 872.4, b 77.55
    out = R.bounded_amounts(shares([0.9, 0.08, 0.02]), 1000, "b", floor_minor=50)
    got = out[AMOUNT_MINOR].to_list()
    assert got[2] == 50 and sum(got) == 1000
    assert got[0] in (872, 873) and got[1] in (77, 78)


def test_bounds_impossible_name_the_key() -> None:
    with pytest.raises(ResidualsError, match=r"^rules.cap_share: .* 3 creators"):
        R.bounded_amounts(shares([1, 1, 1]), 1000, "b", cap_minor=300)
    with pytest.raises(ResidualsError, match=r"^rules.floor: .*needs 1200"):
        R.bounded_amounts(shares([1, 1, 1]), 1000, "b", floor_minor=400)


def test_zero_share_creators_get_nothing_even_with_a_floor() -> None:
    out = R.bounded_amounts(shares([0.0, 1.0, 3.0]), 100, "b", floor_minor=30)
    assert out[S.CREATOR_ID].to_list() == ["c01", "c02"]
    assert out[AMOUNT_MINOR].to_list() == [30, 70]


def slow_bounded(values: list[int], total: int, cap: int | None, floor: int) -> list[Fraction]:
    """Exact water-filling by trying every (capped top-k, floored bottom-m) split."""
    s = [Fraction(v) for v in values]
    order = sorted(range(len(s)), key=lambda i: s[i])
    c = Fraction(cap) if cap is not None else None
    for k in range(len(s) + 1):
        for m in range(len(s) + 1 - k):
            capped = set(order[len(s) - k:]) if k else set()
            floored = set(order[:m])
            mid = [i for i in range(len(s)) if i not in capped and i not in floored]
            rest = total - k * (cap or 0) - m * floor
            if mid:
                lam = Fraction(rest) / sum(s[i] for i in mid)
            elif rest != 0:
                continue
            else:
                lam = Fraction(0)
            amounts = [c if i in capped else Fraction(floor) if i in floored else lam * s[i]
                       for i in range(len(s))]
            ok = all((c is None or lam * s[i] <= c or i in capped) for i in mid)
            ok = ok and all(floor <= a and (c is None or a <= c) for a in amounts)
            ok = ok and all(lam * s[i] >= c for i in capped) if mid else ok
            ok = ok and all(lam * s[i] <= floor for i in floored) if mid else ok
            if ok:
                return amounts
    raise AssertionError("no water-filling solution")


@given(st.lists(st.integers(1, 100), min_size=1, max_size=7), st.integers(0, 5000),
       st.integers(1, 5000) | st.none(), st.integers(0, 500), st.text(max_size=4))
def test_bounded_amounts_match_exact_water_filling(values: list[int], total: int,
                                                   cap: int | None, floor: int,
                                                   batch: str) -> None:
    n = len(values)
    assume(cap is None or n * cap >= total)
    assume(n * floor <= total)
    assume(cap is None or floor <= cap)
    out = R.bounded_amounts(shares(values), total, batch, cap_minor=cap, floor_minor=floor)
    got = out[AMOUNT_MINOR].to_list()
    assert sum(got) == total
    if total:
        assert all(floor <= g and (cap is None or g <= cap) for g in got)
    exact = slow_bounded(values, total, cap, floor)
    for g, e in zip(got, exact):
        assert math.floor(e) <= g <= math.floor(e) + 1, (got, exact)


def test_carry_forward() -> None:
    frame = pl.DataFrame({"alloc": [500, 900, 0, 0, 1000], "cin": [0, 200, 0, 300, 0]})
    out = R.carry_forward(frame, 1000, allocated="alloc", carried_in="cin", paid="paid",
                          carried_out="cout")
    assert out["paid"].to_list() == [0, 1100, 0, 0, 1000]
    assert out["cout"].to_list() == [500, 0, 0, 300, 0]
    zero = R.carry_forward(frame, 0, allocated="alloc", carried_in="cin", paid="paid",
                           carried_out="cout")
    assert zero["paid"].to_list() == [500, 1100, 0, 300, 1000]
    assert zero["cout"].to_list() == [0, 0, 0, 0, 0]
