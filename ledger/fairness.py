"""Fairness metrics of an allocation, and the comparison of two policies.

Rule: metrics are pure functions of a vector of amounts (integers or floats,
>= 0): the Gini coefficient, the Lorenz curve, the share held by the top
fraction. :func:`summary` reads them over the *eligible* creators'
``allocated_minor`` (what the policy gives this period; opted-out creators
are not part of the population a policy is judged on), and counts as paid
those with ``paid_minor > 0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from contract import schema as S
from ledger.allocate import ALLOCATED_MINOR, ELIGIBLE, PAID_MINOR, Allocation

POPULATION_SHARE = S.POPULATION_SHARE
AMOUNT_SHARE = S.AMOUNT_SHARE
METRIC = S.METRIC
DELTA_MINOR = S.DELTA_MINOR
A, B = S.COMPARE_A, S.COMPARE_B

#: Metric keys of :func:`summary`, in display order.
METRICS = ("pool", "creators_paid", "median_payout", "largest_payout", "gini", "top1", "top10")


def _array(amounts: pl.Series | np.ndarray | Sequence[float]) -> np.ndarray:
    arr = (amounts.to_numpy() if isinstance(amounts, pl.Series)
           else np.asarray(amounts)).astype(np.float64)
    if arr.size and (not np.isfinite(arr).all() or (arr < 0).any()):
        raise ValueError("amounts must be finite and >= 0")
    return arr


def gini(amounts: pl.Series | np.ndarray | Sequence[float]) -> float:
    """Gini coefficient in [0, 1) (0 = everyone equal); 0 for an empty or all-zero vector.

    ``G = sum_i (2i - n - 1) x_(i) / (n sum x)`` over the ascending order
    statistics: the mean absolute difference over twice the mean, without the
    O(n^2) pairs.
    """
    x = np.sort(_array(amounts))
    n = x.size
    total = x.sum()
    if n == 0 or total == 0:
        return 0.0
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def lorenz(amounts: pl.Series | np.ndarray | Sequence[float]) -> pl.DataFrame:
    """The Lorenz curve: ``population_share`` (0..1) and the ``amount_share``
    held by the poorest that fraction, starting at (0, 0)."""
    x = np.sort(_array(amounts))
    n = x.size
    total = x.sum()
    pop = np.arange(0, n + 1, dtype=np.float64) / max(n, 1)
    cum = np.concatenate([[0.0], np.cumsum(x)])
    share = cum / total if total > 0 else pop.copy()
    return pl.DataFrame({POPULATION_SHARE: pop, AMOUNT_SHARE: share})


def top_share(amounts: pl.Series | np.ndarray | Sequence[float], fraction: float) -> float:
    """Share of the total held by the top ``ceil(fraction * n)`` amounts."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    x = np.sort(_array(amounts))[::-1]
    total = x.sum()
    if x.size == 0 or total == 0:
        return 0.0
    k = max(1, math.ceil(fraction * x.size))
    return float(x[:k].sum() / total)


def summary(alloc: Allocation) -> dict[str, Any]:
    """Headline numbers of an allocation (integers are minor units).

    Keys: ``pool``, ``creators_paid`` (paid > 0 this period),
    ``median_payout`` and ``largest_payout`` (over paid creators),
    ``gini``, ``top1``, ``top10`` (over eligible creators' allocations).
    """
    frame = alloc.frame
    paid = frame.filter(pl.col(PAID_MINOR) > 0)[PAID_MINOR]
    eligible = frame.filter(pl.col(ELIGIBLE))[ALLOCATED_MINOR]
    return {
        "pool": alloc.pool_minor,
        "creators_paid": paid.len(),
        "median_payout": float(paid.median()) if paid.len() else 0.0,
        "largest_payout": int(paid.max()) if paid.len() else 0,
        "gini": gini(eligible),
        "top1": top_share(eligible, 0.01),
        "top10": top_share(eligible, 0.10),
    }


def compare(a: Allocation, b: Allocation, n: int = 10) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Compare two allocations of the same period.

    Returns
    -------
    metrics
        One row per :data:`METRICS` key: ``metric``, ``a``, ``b`` (float64).
    movers
        The ``n`` creators who gain most and the ``n`` who lose most from A to
        B (``creator_id``, ``a``, ``b``, ``delta_minor`` = b - a allocated),
        gainers first, ties by creator_id; creators with no change omitted.
    """
    sa, sb = summary(a), summary(b)
    metrics = pl.DataFrame({
        METRIC: list(METRICS),
        A: [float(sa[k]) for k in METRICS],
        B: [float(sb[k]) for k in METRICS],
    })
    joined = (a.frame.select(S.CREATOR_ID, pl.col(ALLOCATED_MINOR).alias(A))
              .join(b.frame.select(S.CREATOR_ID, pl.col(ALLOCATED_MINOR).alias(B)),
                    on=S.CREATOR_ID, how="full", coalesce=True)
              .with_columns(pl.col(A).fill_null(0), pl.col(B).fill_null(0))
              .with_columns((pl.col(B) - pl.col(A)).alias(DELTA_MINOR)))
    gain = (joined.filter(pl.col(DELTA_MINOR) > 0)
            .sort([DELTA_MINOR, S.CREATOR_ID], descending=[True, False]).head(n))
    lose = (joined.filter(pl.col(DELTA_MINOR) < 0)
            .sort([DELTA_MINOR, S.CREATOR_ID], descending=[False, False]).head(n))
    return metrics, pl.concat([gain, lose])
