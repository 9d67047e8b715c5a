"""Exact money: currencies, parsing, formatting, and the one rounding function."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import schema as S
from contract.errors import ResidualsError
from ledger.money import (
    AMOUNT_MINOR,
    CURRENCY_EXPONENTS,
    EXACT_MINOR,
    SHARE,
    exact_group_sum,
    exact_sum,
    exponent,
    format_minor,
    largest_remainder,
    largest_remainder_slow,
    tie_keys,
    tie_keys_slow,
    to_minor,
)


def frame(shares: list[float], ids: list[str] | None = None) -> pl.DataFrame:
    ids = ids if ids is not None else [f"c{i:03d}" for i in range(len(shares))]
    return pl.DataFrame({S.CREATOR_ID: ids, SHARE: [float(s) for s in shares]})


# ---- currencies ---------------------------------------------------------------

@pytest.mark.parametrize(("code", "exp"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("BHD", 3),
                                           ("GBP", 2), ("CHF", 2), ("KWD", 3), ("usd", 2)])
def test_exponents(code: str, exp: int) -> None:
    assert exponent(code) == exp


def test_unknown_currency_is_named() -> None:
    with pytest.raises(ResidualsError, match="unknown currency 'XYZ'"):
        exponent("XYZ")


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("1234.56", "USD", 123456), ("0", "USD", 0), ("10", "USD", 1000), ("5", "JPY", 5),
    ("1.234", "BHD", 1234), ("1,000.50", "EUR", 100050), (Decimal("0.01"), "USD", 1),
    (7, "JPY", 7),
])
def test_to_minor(amount: object, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor  # type: ignore[arg-type]


@pytest.mark.parametrize(("amount", "currency", "message"), [
    ("1.234", "USD", "more than 2 decimals"),
    ("0.5", "JPY", "more than 0 decimals"),
    ("-1.00", "USD", "negative"),
    ("abc", "USD", "not a decimal amount"),
    (0.1, "USD", "decimal string"),
    ("NaN", "USD", "not a finite amount"),
])
def test_to_minor_rejects(amount: object, currency: str, message: str) -> None:
    with pytest.raises(ResidualsError, match=message):
        to_minor(amount, currency, what="rules.min_payout")  # type: ignore[arg-type]


def test_to_minor_names_what() -> None:
    with pytest.raises(ResidualsError, match=r"^p.toml: key pool.amount: '1.001'"):
        to_minor("1.001", "USD", what="p.toml: key pool.amount")


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (123456, "USD", "1,234.56 USD"), (5, "JPY", "5 JPY"), (1234, "BHD", "1.234 BHD"),
    (7, "USD", "0.07 USD"), (-150, "EUR", "-1.50 EUR"), (1234567, "JPY", "1,234,567 JPY"),
])
def test_format_minor(minor: int, currency: str, text: str) -> None:
    assert format_minor(minor, currency) == text


@given(st.integers(0, 10**15), st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_format_then_parse_round_trips(minor: int, currency: str) -> None:
    assert to_minor(format_minor(minor, currency).split()[0], currency) == minor


# ---- the rounding function ----------------------------------------------------

def test_largest_remainder_by_hand() -> None:
    # exact 33.33.., 33.33.., 33.33..: one leftover unit, to whichever hashes highest
    out = largest_remainder(frame([1, 1, 1]), 100, "batch-1")
    assert sorted(out[AMOUNT_MINOR].to_list()) == [33, 33, 34]
    # exact 12.5, 37.5, 50: leftover 1 unit -> tie between .5 and .5 broken by hash
    out = largest_remainder(frame([1, 3, 4]), 100, "b")
    amounts = out[AMOUNT_MINOR].to_list()
    assert sum(amounts) == 100 and amounts[2] == 50 and sorted(amounts[:2]) in ([12, 38], [13, 37])
    # exact 0.6, 0.3, 0.1 of 7 = 4.2, 2.1, 0.7 -> floors 4, 2, 0, leftover 1 to 0.7
    out = largest_remainder(frame([0.6, 0.3, 0.1]), 7, "b")
    assert out[AMOUNT_MINOR].to_list() == [4, 2, 1]
    assert out[EXACT_MINOR].to_list() == pytest.approx([4.2, 2.1, 0.7])


def test_tie_break_follows_the_hash_not_the_row() -> None:
    ids = [f"creator-{i}" for i in range(10)]
    out = largest_remainder(frame([1.0] * 10, ids), 3, "batch-x")
    winners = set(out.filter(pl.col(AMOUNT_MINOR) == 1)[S.CREATOR_ID])
    keys = dict(zip(ids, tie_keys_slow(ids, "batch-x")))
    assert winners == set(sorted(ids, key=keys.__getitem__, reverse=True)[:3])
    # another batch id draws differently for at least one of several batches
    draws = {frozenset(largest_remainder(frame([1.0] * 10, ids), 3, f"b{k}")
                       .filter(pl.col(AMOUNT_MINOR) == 1)[S.CREATOR_ID]) for k in range(8)}
    assert len(draws) > 1


def test_zero_pool_and_zero_shares() -> None:
    assert largest_remainder(frame([0, 0]), 0, "b")[AMOUNT_MINOR].to_list() == [0, 0]
    assert largest_remainder(frame([0, 2]), 5, "b")[AMOUNT_MINOR].to_list() == [0, 5]
    with pytest.raises(ResidualsError, match="every share is zero"):
        largest_remainder(frame([0, 0]), 5, "b")
    with pytest.raises(ResidualsError, match="zero creators"):
        largest_remainder(frame([]), 5, "b")


@pytest.mark.parametrize("bad", [[-1.0, 2.0], [math.nan, 1.0], [math.inf, 1.0]])
def test_bad_shares(bad: list[float]) -> None:
    with pytest.raises(ResidualsError, match="finite number >= 0"):
        largest_remainder(frame(bad), 10, "b")


def test_duplicate_ids_and_negative_pool() -> None:
    with pytest.raises(ResidualsError, match="unique"):
        largest_remainder(frame([1, 1], ["a", "a"]), 10, "b")
    with pytest.raises(ResidualsError, match="negative"):
        largest_remainder(frame([1]), -1, "b")
    with pytest.raises(ResidualsError, match="64-bit"):
        largest_remainder(frame([1]), 1 << 63, "b")
    assert largest_remainder(frame([1, 1]), (1 << 63) - 1, "b")[AMOUNT_MINOR].sum() == (1 << 63) - 1


def test_huge_pool_and_many_creators_stay_exact() -> None:
    pool = 10**18 + 7  # more than float64 can count in units
    out = largest_remainder(frame([1.0, 2.0, 3.0]), pool, "b")
    assert int(out[AMOUNT_MINOR].sum()) == pool
    exact = [Fraction(pool * k, 6) for k in (1, 2, 3)]
    for got, want in zip(out[AMOUNT_MINOR].to_list(), exact):
        assert math.floor(want) <= got <= math.floor(want) + 1


shares_st = st.lists(st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
                     min_size=1, max_size=50).filter(lambda xs: any(x > 0 for x in xs))


@given(shares_st, st.integers(0, 10**12), st.text(max_size=8))
def test_largest_remainder_matches_fraction_reference(shares: list[float], pool: int,
                                                      batch: str) -> None:
    df = frame(shares)
    out = largest_remainder(df, pool, batch)
    slow = largest_remainder_slow(dict(zip(df[S.CREATOR_ID], shares)), pool, batch)
    assert dict(zip(out[S.CREATOR_ID], out[AMOUNT_MINOR])) == slow


@given(shares_st, st.integers(0, 10**12), st.text(max_size=8), st.randoms(use_true_random=False))
def test_largest_remainder_properties(shares: list[float], pool: int, batch: str,
                                      rnd: random.Random) -> None:
    df = frame(shares)
    out = largest_remainder(df, pool, batch)
    amounts = out[AMOUNT_MINOR].to_numpy()
    assert int(amounts.sum()) == pool
    assert (amounts >= 0).all()
    total = sum(Fraction(s) for s in shares)
    for s, a in zip(shares, amounts):  # within one unit of the exact (Fraction) share
        assert abs(Fraction(int(a)) - Fraction(s) / total * pool) < 1
        if s == 0:
            assert a == 0
    order = list(range(len(shares)))
    rnd.shuffle(order)
    again = largest_remainder(df[order], pool, batch).sort(S.CREATOR_ID)
    assert again.equals(out.sort(S.CREATOR_ID))


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=50).filter(any),
       st.integers(1, 10**6), st.integers(0, 10**9), st.integers(-30, 30))
def test_scaling_shares_changes_nothing(shares: list[int], k: int, pool: int, p2: int) -> None:
    base = largest_remainder(frame(shares), pool, "b")[AMOUNT_MINOR]
    by_int = largest_remainder(frame([s * k for s in shares]), pool, "b")[AMOUNT_MINOR]
    by_pow2 = largest_remainder(frame([s * 2.0**p2 for s in shares]), pool, "b")[AMOUNT_MINOR]
    assert base.equals(by_int) and base.equals(by_pow2)


@given(st.lists(st.text(min_size=0, max_size=12), max_size=30), st.text(max_size=10))
def test_tie_keys_match_the_slow_reference(ids: list[str], batch: str) -> None:
    got = tie_keys(pl.Series(ids, dtype=pl.String), batch)
    assert got.tolist() == tie_keys_slow(ids, batch)


def test_tie_keys_of_a_slice() -> None:
    s = pl.Series(["alpha", "beta", "gamma", "δέλτα"])
    assert tie_keys(s.slice(1, 3), "b").tolist() == tie_keys_slow(["beta", "gamma", "δέλτα"], "b")


@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), max_size=60),
       st.randoms(use_true_random=False))
def test_exact_sum_ignores_order(values: list[float], rnd: random.Random) -> None:
    shuffled = values[:]
    rnd.shuffle(shuffled)
    assert exact_sum(np.array(values)) == exact_sum(np.array(shuffled))
    if values:
        assert exact_sum(np.array(values)) == pytest.approx(math.fsum(values),
                                                            abs=1e-9 * max(map(abs, values)) * 64)


def test_exact_group_sum() -> None:
    df = pl.DataFrame({"k": ["b", "a", "b", "a"], "v": [0.1, 0.2, 0.3, 0.4]})
    out = exact_group_sum(df, "k", "v", "s").sort("k")
    assert out["k"].to_list() == ["a", "b"]
    assert out["s"].to_list() == pytest.approx([0.6, 0.4])
    assert exact_group_sum(df.reverse(), "k", "v", "s").sort("k").equals(out)


# ---- exact integer sums (64-bit overflow) ------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=60))
def test_int_sum_is_exact_where_int64_wraps(values: list[int]) -> None:
    from ledger.money import int_sum

    assert int_sum(pl.Series(values, dtype=pl.Int64)) == sum(values)


def test_int_sum_of_the_wrapping_revenues() -> None:
    from ledger.money import INT64_MAX, int_sum

    series = pl.Series([INT64_MAX, INT64_MAX, 202], dtype=pl.Int64)
    assert int(series.sum()) == 200  # what polars gives: wrapped round
    assert int_sum(series) == 2 * INT64_MAX + 202


@pytest.mark.parametrize("amount", ["92233720368547758.08", "1e30"])
def test_to_minor_refuses_beyond_int64(amount: str) -> None:
    with pytest.raises(ResidualsError, match="64-bit"):
        to_minor(amount, "USD", what="--pool")
    assert to_minor("92233720368547758.07", "USD") == 2**63 - 1


def test_exact_sums_of_subnormal_values() -> None:
    """Values far below 2**-1022 (a confidence discount of 1e-313, say) still sum exactly:
    the grid's scale 2**1060 does not fit one float64, so it is applied in two steps."""
    import numpy as np
    import polars as pl

    from ledger.money import exact_group_sum, exact_position_sum

    vals = np.array([2.2e-313, 1.1e-313, 3.3e-313, 0.0])
    got = exact_position_sum(np.array([0, 0, 1, 1]), vals, 2)
    assert got[0] > 0 and got[1] == 3.3e-313
    frame = exact_group_sum(pl.DataFrame({"k": ["a", "a", "b", "b"], "v": vals}), "k", "v", "s")
    assert dict(frame.sort("k").iter_rows()) == {"a": got[0], "b": got[1]}
