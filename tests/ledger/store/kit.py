"""Small builders for ledger-store tests: requests and a plain allocator.

The allocator here is deliberately simple and independent of the policy
engine: fixed allocated amounts per creator, then a minimum payout with carry
forward (paid = allocated + carried if that reaches the minimum, else 0).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from contract import schema as S
from ledger.store.posting import BatchLines, BatchRequest


def request(
    creators: list[str] | int,
    *,
    period: str = "2026-01",
    pool: int = 10_000,
    currency: str = "USD",
    tag: str = "inputs-a",
    clips: bool = True,
) -> BatchRequest:
    """A batch request over ``creators`` (ids, or a count of ``c000000``-style ids)."""
    if isinstance(creators, int):
        ids = pl.Series(S.CREATOR_ID, range(creators)).cast(pl.String).str.zfill(7)
        ids = ("c" + ids).alias(S.CREATOR_ID)
    else:
        ids = pl.Series(S.CREATOR_ID, creators, dtype=pl.String)
    frame = pl.DataFrame({S.CREATOR_ID: ids}).with_columns(
        ("Creator " + pl.col(S.CREATOR_ID)).alias(S.DISPLAY_NAME))
    credits = None
    if clips:
        credits = pl.concat([
            frame.select(S.CREATOR_ID, (pl.col(S.CREATOR_ID) + suffix).alias(S.CLIP_ID),
                         pl.lit(w).alias(S.WEIGHT))
            for suffix, w in (("-clip1", 0.75), ("-clip2", 0.25))
        ])
    return BatchRequest(
        period=period, currency=currency, pool_minor=pool, policy_name="test",
        policy_text=f"# test policy\nmin_payout = 1\n", input_hashes={"inputs": tag},
        creators=frame, clip_credits=credits,
    )


def split(creators: list[str], pool: int, withheld: int = 0) -> dict[str, int]:
    """Split ``pool - withheld`` as evenly as integers allow (the first get the remainder)."""
    n = len(creators)
    base, extra = divmod(pool - withheld, n)
    return {c: base + (1 if i < extra else 0) for i, c in enumerate(creators)}


def allocator(amounts: Mapping[str, int] | pl.DataFrame, *, withheld: int = 0,
              min_payout: int = 1):  # type: ignore[no-untyped-def]
    """An allocator paying fixed ``amounts`` with a minimum payout and carry-forward."""
    if isinstance(amounts, pl.DataFrame):
        alloc = amounts
    else:
        alloc = pl.DataFrame({S.CREATOR_ID: list(amounts), S.ALLOCATED_MINOR: list(amounts.values())},
                             schema={S.CREATOR_ID: pl.String, S.ALLOCATED_MINOR: pl.Int64})

    def run(carried: pl.DataFrame) -> BatchLines:
        df = alloc.join(carried.rename({S.CARRIED_MINOR: S.CARRIED_IN_MINOR}), on=S.CREATOR_ID,
                        how="full", coalesce=True).with_columns(
            pl.col(S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR).fill_null(0))
        total = pl.col(S.ALLOCATED_MINOR) + pl.col(S.CARRIED_IN_MINOR)
        pool = max(int(alloc[S.ALLOCATED_MINOR].sum()), 1)
        df = df.with_columns(
            (pl.col(S.ALLOCATED_MINOR) / pool).alias(S.SHARE),
            pl.col(S.ALLOCATED_MINOR).cast(pl.Float64).alias(S.EXACT_MINOR),
            pl.when(total >= min_payout).then(total).otherwise(0).alias(S.PAID_MINOR),
            pl.lit(True).alias(S.ELIGIBLE),
            pl.lit(None, pl.String).alias(S.REASON),
        ).with_columns((total - pl.col(S.PAID_MINOR)).alias(S.CARRIED_OUT_MINOR))
        return BatchLines(df, withheld)

    return run


def even_allocator(n: int, pool: int, *, min_payout: int = 1):  # type: ignore[no-untyped-def]
    """``allocator`` over ``n`` generated creators with a vectorised even split."""
    req = request(n, clips=False)
    ids = req.creators[S.CREATOR_ID]
    base, extra = divmod(pool, n)
    amounts = pl.DataFrame({S.CREATOR_ID: ids}).with_row_index("i").select(
        S.CREATOR_ID, (pl.lit(base) + (pl.col("i") < extra).cast(pl.Int64)).alias(
            S.ALLOCATED_MINOR))
    return allocator(amounts, min_payout=min_payout)
