"""Properties of the pure parts of posting: line checks and the lines digest."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import schema as S
from contract.errors import ResidualsError
from ledger.store.posting import LINE_COLUMNS, check_lines, lines_digest


@st.composite
def allocations(draw):  # type: ignore[no-untyped-def]
    """Valid lines: allocated sums with withheld to the pool; paid + carry conserve."""
    n = draw(st.integers(1, 30))
    allocated = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
    carried = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n))
    paid_all = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    withheld = draw(st.integers(0, 10**6))
    ids = [f"c{i:03d}" for i in range(n)]
    lines = pl.DataFrame({
        S.CREATOR_ID: ids,
        S.SHARE: [a / max(sum(allocated), 1) for a in allocated],
        S.EXACT_MINOR: [float(a) for a in allocated],
        S.ALLOCATED_MINOR: allocated,
        S.CARRIED_IN_MINOR: carried,
        S.PAID_MINOR: [a + c if p else 0 for a, c, p in zip(allocated, carried, paid_all)],
        S.CARRIED_OUT_MINOR: [0 if p else a + c for a, c, p in zip(allocated, carried, paid_all)],
        S.ELIGIBLE: [True] * n,
        S.REASON: [None] * n,
    }, schema_overrides={S.REASON: pl.String})
    pool = sum(allocated) + withheld
    carried_in = lines.select(S.CREATOR_ID, pl.col(S.CARRIED_IN_MINOR).alias(S.CARRIED_MINOR)
                              ).filter(pl.col(S.CARRIED_MINOR) != 0)
    creators = lines.select(S.CREATOR_ID)
    return lines, pool, withheld, carried_in, creators, draw(st.randoms())


@given(allocations())
def test_valid_lines_pass_and_digest_ignores_row_order(case) -> None:  # type: ignore[no-untyped-def]
    lines, pool, withheld, carried_in, creators, rnd = case
    checked = check_lines(lines, pool_minor=pool, withheld_minor=withheld,
                          carried_in=carried_in, creators=creators)
    order = list(range(lines.height))
    rnd.shuffle(order)
    shuffled = lines[order]
    assert lines_digest(shuffled) == lines_digest(checked)
    assert checked.columns == LINE_COLUMNS


@given(allocations(), st.sampled_from(["pool", "conserve", "carried", "negative"]))
def test_any_broken_line_is_refused(case, how: str) -> None:  # type: ignore[no-untyped-def]
    lines, pool, withheld, carried_in, creators, rnd = case
    i = rnd.randrange(lines.height)
    bump = pl.int_range(pl.len()) == i
    if how == "pool":
        pool += 1
    elif how == "conserve":
        lines = lines.with_columns(pl.when(bump).then(pl.col(S.PAID_MINOR) + 1)
                                   .otherwise(pl.col(S.PAID_MINOR)).alias(S.PAID_MINOR))
    elif how == "carried":
        carried_in = pl.concat([carried_in, pl.DataFrame(
            {S.CREATOR_ID: ["zz-not-in-lines"], S.CARRIED_MINOR: [5]})])
    else:
        lines = lines.with_columns(pl.when(bump).then(-1 - pl.col(S.CARRIED_OUT_MINOR))
                                   .otherwise(pl.col(S.CARRIED_OUT_MINOR))
                                   .alias(S.CARRIED_OUT_MINOR))
    with pytest.raises(ResidualsError):
        check_lines(lines, pool_minor=pool, withheld_minor=withheld, carried_in=carried_in,
                    creators=creators)


@given(allocations())
def test_digest_sees_every_amount(case) -> None:  # type: ignore[no-untyped-def]
    lines, *_, rnd = case
    i = rnd.randrange(lines.height)
    col = rnd.choice([S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR, S.PAID_MINOR, S.CARRIED_OUT_MINOR])
    changed = lines.with_columns(pl.when(pl.int_range(pl.len()) == i).then(pl.col(col) + 1)
                                 .otherwise(pl.col(col)).alias(col))
    assert lines_digest(changed) != lines_digest(lines)
