"""Balance deltas are summed exactly per (account, currency): the one-sum fast path
equals the split-halves path and Python's integers, and a sum beyond 64 bits is refused."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import schema as S
from contract.errors import ResidualsError
from ledger.store.posting import _exact_deltas, _split_deltas

I64 = (-(2**63), 2**63 - 1)
rows = st.lists(st.tuples(st.integers(1, 6), st.sampled_from(["USD", "EUR"]),
                          st.one_of(st.integers(-1000, 1000), st.integers(*I64))),
                max_size=40)


def _frame(data: list[tuple[int, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(data, schema={"account_id": pl.Int64, S.CURRENCY: pl.String,
                                      "delta": pl.Int64}, orient="row")


def _plain(data: list[tuple[int, str, int]]) -> dict[tuple[int, str], int]:
    sums: dict[tuple[int, str], int] = {}
    for acc, cur, d in data:
        sums[(acc, cur)] = sums.get((acc, cur), 0) + d
    return {k: v for k, v in sums.items() if v != 0}


def _as_dict(df: pl.DataFrame) -> dict[tuple[int, str], int]:
    return {(a, c): d for a, c, d in df.select("account_id", S.CURRENCY, "delta").iter_rows()}


@given(rows)
def test_fast_and_split_sums_are_python_sums(data):
    expected = _plain(data)
    fits = all(I64[0] <= v <= I64[1] for v in expected.values())
    for fn in (_exact_deltas, _split_deltas):
        if fits:
            assert _as_dict(fn(_frame(data))) == expected
        else:
            with pytest.raises(ResidualsError, match="64"):
                fn(_frame(data))


def test_fast_path_order_follows_first_appearance():
    out = _exact_deltas(_frame([(3, "USD", 5), (1, "USD", 2), (3, "USD", -5), (2, "USD", 1)]))
    assert out.rows() == [(1, "USD", 2), (2, "USD", 1)]
