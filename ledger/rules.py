"""Policy rules: who may be paid, and how shares are bounded and paid out.

Rule: each rule is a pure polars function (an expression, or frame to frame)
that never loses money: what a rule takes from one creator it gives to others
in proportion to their shares, or hands back as explicitly withheld. In order:

1. :func:`license_multiplier` scales each clip's credit (before aggregation),
   and :func:`confidence_multiplier` scales the credit of generations whose
   attribution confidence is low (what they lose is unattributed, like what
   a licence multiplier below 1 takes).
2. :func:`eligibility` excludes opted-out creators and those with too few clips.
3. :func:`min_share` excludes creators whose mixed share is below a threshold;
   their share goes to the others pro rata.
4. :func:`bounded_amounts` pays the allocated pool out in integer minor units
   with a per-creator cap and floor (water-filling: ``p_i = clip(l * s_i, F, C)``
   with one ``l`` so that the payouts sum to the pool).
5. :func:`carry_forward` pays a creator whose balance (allocated + carried in)
   reaches the minimum payout, and carries smaller balances forward.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from contract import schema as S
from contract.errors import ContractError, ResidualsError
from ledger.money import AMOUNT_MINOR, EXACT_MINOR, SHARE, exact_sum, largest_remainder

ELIGIBLE = S.ELIGIBLE
REASON = S.REASON

REASON_OPTED_OUT = "opted out"
REASON_MIN_SHARE = "below minimum share"
REASON_ZERO = "no share"
REASON_CARRIED = "below minimum payout (carried forward)"


def license_multiplier(multipliers: Mapping[str, float], default: float) -> pl.Expr:
    """Per-clip multiplier from the clip's licence (``default`` for a null or
    unlisted licence); an expression over the clips frame."""
    if not multipliers:
        return pl.lit(float(default), dtype=pl.Float64)
    return (pl.col(S.LICENSE).cast(pl.String)
            .replace_strict(dict(multipliers), default=float(default), return_dtype=pl.Float64)
            .fill_null(float(default)))


def confidence_multiplier(columns: list[str], min_confidence: float | None,
                          factor: float) -> pl.Expr:
    """Per-attribution multiplier: ``factor`` where the generation's ``confidence``
    is below ``min_confidence``, else 1; an expression over the attributions frame.

    ``min_confidence=None`` (the default) leaves every credit as it is. A policy
    that sets it needs attributions with a ``confidence`` column.
    """
    if min_confidence is None:
        return pl.lit(1.0, dtype=pl.Float64)
    if S.CONFIDENCE not in columns:
        raise ContractError(S.ATTRIBUTIONS.filename, "has no confidence column; the policy's "
                            "rules.min_confidence needs it (recompute with residuals attribute)",
                            column=S.CONFIDENCE)
    return (pl.when(pl.col(S.CONFIDENCE) < float(min_confidence))
            .then(pl.lit(float(factor), dtype=pl.Float64))
            .otherwise(pl.lit(1.0, dtype=pl.Float64)))


def eligibility(creators: pl.DataFrame, *, exclude_opted_out: bool, min_clips: int,
                n_clips: str = S.N_CLIPS) -> pl.DataFrame:
    """Add ``eligible`` and ``reason`` (why not) to a creators frame.

    Opted-out creators (when ``exclude_opted_out``) and creators with fewer
    than ``min_clips`` clips in the corpus are not eligible.
    """
    opted = pl.col(S.OPTED_OUT) & pl.lit(exclude_opted_out)
    few = pl.col(n_clips) < min_clips
    reason = (pl.when(opted).then(pl.lit(REASON_OPTED_OUT))
              .when(few).then(pl.lit(f"fewer than {min_clips} clip{'s' if min_clips > 1 else ''}"))
              .otherwise(pl.lit(None, dtype=pl.String)))
    return creators.with_columns(reason.alias(REASON)).with_columns(
        pl.col(REASON).is_null().alias(ELIGIBLE))


def min_share(frame: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """Creators whose ``share`` (of the pool) is below ``threshold`` become
    ineligible with share 0; the others' shares are scaled up so the total is
    unchanged (one pass: the scaled shares are not tested again).

    When nobody remains the shares stay zero and the caller withholds the pool.
    """
    if threshold <= 0:
        return frame
    drop = pl.col(ELIGIBLE) & (pl.col(SHARE) < threshold)
    before = exact_sum(frame[SHARE])
    kept = frame.with_columns(
        pl.when(drop).then(pl.lit(REASON_MIN_SHARE)).otherwise(pl.col(REASON)).alias(REASON),
        pl.when(drop).then(0.0).otherwise(pl.col(SHARE)).alias(SHARE),
        (pl.col(ELIGIBLE) & ~drop).alias(ELIGIBLE),
    )
    after = exact_sum(kept[SHARE])
    if after <= 0:
        return kept
    return kept.with_columns((pl.col(SHARE) * (before / after)).alias(SHARE))


def _solve_level(s: np.ndarray, total: float, floor: float, cap: float) -> float:
    """``l`` with ``sum clip(l * s, floor, cap) == total`` (bisection; s > 0)."""
    lo, hi = 0.0, 1.0
    while np.clip(hi * s, floor, cap).sum() < total and hi < 1e300:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if mid in (lo, hi):
            break
        if np.clip(mid * s, floor, cap).sum() < total:
            lo = mid
        else:
            hi = mid
    return hi


def bounded_amounts(shares: pl.DataFrame, total_minor: int, batch_id: str, *,
                    cap_minor: int | None = None, floor_minor: int = 0,
                    cap_key: str = "rules.cap_share",
                    floor_key: str = "rules.floor") -> pl.DataFrame:
    """Pay ``total_minor`` to creators with ``share > 0``, each in [floor, cap].

    Without a cap or floor this is :func:`ledger.money.largest_remainder`.
    With them, ``p_i = clip(l * s_i, F, C)`` for one level ``l``: the excess of
    capped creators goes to the uncapped in proportion to their shares, and a
    floor is funded by the others in proportion to theirs. Creators at a bound
    get exactly ``C`` or ``F``; the rest share what is left by largest
    remainder, so the payouts still sum to ``total_minor`` exactly, nobody
    exceeds ``C`` (which is an integer) and nobody in the middle falls below
    ``F``.

    Returns
    -------
    pl.DataFrame
        ``creator_id``, ``exact_minor`` (float64), ``amount_minor`` (Int64) for
        the rows of ``shares`` with a positive share, sorted by creator_id.

    Raises
    ------
    ResidualsError
        When the bounds cannot be met: ``n * C < total`` (the cap leaves money
        nobody may receive) or ``n * F > total`` (the floor needs more than the
        pool), naming the policy key.
    """
    rows = shares.filter(pl.col(SHARE) > 0).select(S.CREATOR_ID, SHARE).sort(S.CREATOR_ID)
    n = rows.height
    if n == 0 or total_minor == 0:
        return rows.select(S.CREATOR_ID, pl.lit(0.0).alias(EXACT_MINOR),
                           pl.lit(0, dtype=pl.Int64).alias(AMOUNT_MINOR))
    if cap_minor is not None and n * cap_minor < total_minor:
        raise ResidualsError(
            f"{cap_key}: a cap of {cap_minor} minor units for each of the {n} creators with a "
            f"share pays at most {n * cap_minor} of {total_minor}; raise the cap")
    if floor_minor and n * floor_minor > total_minor:
        raise ResidualsError(
            f"{floor_key}: a floor of {floor_minor} minor units for each of the {n} creators "
            f"with a share needs {n * floor_minor}, more than the {total_minor} allocated; "
            "lower the floor")
    if cap_minor is None and not floor_minor:
        return largest_remainder(rows, total_minor, batch_id).drop(SHARE)

    s = rows[SHARE].to_numpy() / exact_sum(rows[SHARE])
    cap = float(cap_minor) if cap_minor is not None else np.inf
    level = _solve_level(s, float(total_minor), float(floor_minor), cap)
    raw = level * s
    at_cap = raw > cap
    at_floor = raw < floor_minor
    while True:
        middle = ~(at_cap | at_floor)
        rest = (total_minor - int(at_cap.sum()) * (cap_minor or 0)
                - int(at_floor.sum()) * floor_minor)
        if not middle.any():
            if rest == 0:
                amounts = np.where(at_cap, cap_minor or 0, floor_minor).astype(np.int64)
                exact = amounts.astype(np.float64)
                break
            # float misjudged a boundary creator: move the one nearest its bound back
            slack = np.where(at_cap, raw - cap, floor_minor - raw)
            i = int(np.argmin(slack))
            at_cap[i] = at_floor[i] = False
            continue
        mid = largest_remainder(rows.filter(pl.Series(middle)), rest, batch_id)
        got = mid[AMOUNT_MINOR].to_numpy()
        idx = np.flatnonzero(middle)
        over = got > cap
        under = got < floor_minor
        if over.any() or under.any():  # only from float error at a boundary
            at_cap[idx[over]] = True
            at_floor[idx[under]] = True
            continue
        amounts = np.where(at_cap, cap_minor or 0, floor_minor).astype(np.int64)
        exact = amounts.astype(np.float64)
        amounts[idx] = got
        exact[idx] = mid[EXACT_MINOR].to_numpy()
        break
    return rows.select(S.CREATOR_ID).with_columns(
        pl.Series(EXACT_MINOR, exact, dtype=pl.Float64),
        pl.Series(AMOUNT_MINOR, amounts, dtype=pl.Int64))


def carry_forward(frame: pl.DataFrame, min_payout_minor: int, *,
                  allocated: str, carried_in: str, paid: str, carried_out: str) -> pl.DataFrame:
    """Pay balances that reach the minimum payout; carry the rest forward.

    ``balance = allocated + carried_in``; ``paid = balance`` when
    ``balance >= min_payout_minor`` (and > 0), else 0; ``carried_out =
    balance - paid``. So ``paid + carried_out == allocated + carried_in`` on
    every row.
    """
    balance = pl.col(allocated) + pl.col(carried_in)
    pays = (balance >= min_payout_minor) & (balance > 0)
    return frame.with_columns(
        pl.when(pays).then(balance).otherwise(0).cast(pl.Int64).alias(paid),
        pl.when(pays).then(0).otherwise(balance).cast(pl.Int64).alias(carried_out),
    )
