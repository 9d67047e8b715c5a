"""Allocation: a policy maps one period's inputs and a pool to integer payouts.

Rule: a policy maps shares ``s_i`` and a pool ``P`` (integer minor units) to
allocations ``a_i >= 0`` and an explicitly withheld ``W`` with
``sum a_i + W == P`` exactly; then ``paid_i + carried_out_i == a_i +
carried_in_i`` for every creator. Nothing leaks and nothing is invented.

The steps (each a pure function in :mod:`ledger.components` or
:mod:`ledger.rules`; joins and normalising are written once, here):

1. prepare the period: one row per creator, per clip, per credit;
2. eligibility (opt-out, minimum clips);
3. each component's scores, normalised over eligible creators
   (``score / (sum eligible [+ unattributed if withheld])``), mixed by weight;
   a component with nothing to pay (no attributed use, no revenue) withholds
   its weight;
4. minimum share;
5. integers: without a cap or floor, one largest-remainder rounding over the
   creators and the withheld part together (each payout within one unit of
   ``s_i * P``); with them, ``P`` is first split into allocated and withheld,
   then the allocated part is paid out within the bounds (water-filling);
6. minimum payout with carry-forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import polars as pl

from contract import schema as S
from contract.errors import ContractError, ResidualsError
from contract.io import Dataset
from ledger import rules as R
from ledger.components import (
    COMPONENT_FUNCTIONS,
    CREDIT,
    MULTIPLIER,
    N_CLIPS,
    SCORE,
    KeyIndex,
    Period,
)
from ledger.money import (
    AMOUNT_MINOR,
    EXACT_MINOR,
    INT64_MAX,
    SHARE,
    check_int64,
    exact_sum,
    int_sum,
    largest_remainder,
    to_minor,
)
from ledger.policy import Policy

# Output columns of Allocation.frame (names from contract.schema).
ALLOCATED_MINOR = S.ALLOCATED_MINOR
CARRIED_IN_MINOR = S.CARRIED_IN_MINOR
PAID_MINOR = S.PAID_MINOR
CARRIED_OUT_MINOR = S.CARRIED_OUT_MINOR
CARRIED_MINOR = S.CARRIED_MINOR  # column of AllocationInputs.carried_in
ELIGIBLE = R.ELIGIBLE
REASON = R.REASON
# Creator ids are non-empty (contract), so "" can stand for the withheld part.
_WITHHELD = ""
FRAME_COLUMNS = S.LINE_COLUMNS  # the store's LINE_COLUMNS too: one source


@dataclass(frozen=True)
class AllocationInputs:
    """One period's contract frames (validated by :mod:`contract.io`).

    ``clips`` may lack the embedding column; ``generations`` may be an empty
    frame (the generations are then those named in ``attributions``);
    ``carried_in`` has ``creator_id``, ``carried_minor``: balances below the
    minimum payout carried from earlier periods (the ledger store supplies
    them).
    """

    creators: pl.DataFrame
    clips: pl.DataFrame
    attributions: pl.DataFrame
    generations: pl.DataFrame
    accounts: pl.DataFrame
    carried_in: pl.DataFrame | None = None


@dataclass(frozen=True)
class Allocation:
    """The result of :func:`allocate`.

    ``frame`` has one row per creator (sorted by ``creator_id``) with the
    columns in :data:`FRAME_COLUMNS`: ``share`` (float64, the creator's final
    share of the pool, ``exact_minor / pool``), ``exact_minor`` (the real
    amount before rounding), ``allocated_minor``, ``carried_in_minor``,
    ``paid_minor``, ``carried_out_minor`` (Int64), ``eligible`` and ``reason``
    (why nothing was allocated or paid; null otherwise).
    """

    frame: pl.DataFrame
    pool_minor: int
    currency: str
    withheld_minor: int
    batch_id: str
    policy_name: str = ""
    policy_hash: str = ""

    @property
    def allocated_minor(self) -> int:
        return int(self.frame[ALLOCATED_MINOR].sum())

    @property
    def paid_minor(self) -> int:
        return int(self.frame[PAID_MINOR].sum())

    @property
    def carried_out_minor(self) -> int:
        return int(self.frame[CARRIED_OUT_MINOR].sum())


def pool_from(policy: Policy, accounts: pl.DataFrame | None, pool_minor: int | None = None,
              currency: str | None = None) -> tuple[int, str]:
    """The period's pool in minor units and its currency.

    ``pool_minor``/``currency`` override
    the policy's ``[pool]``; otherwise the pool is ``pool.amount``, or
    ``floor(pool.revenue_share * sum(accounts.revenue_minor))``.
    """
    cur = (currency or policy.currency or "").strip().upper()
    if not cur:
        raise ResidualsError(f"{policy.source}: no currency: set pool.currency in the policy "
                             "or pass `currency`")
    to_minor("0", cur)  # unknown currency -> error naming it
    policy.check_currency(cur)
    if pool_minor is not None:
        if isinstance(pool_minor, bool) or int(pool_minor) != pool_minor or pool_minor < 0:
            raise ResidualsError(f"pool_minor={pool_minor!r}: expected an integer >= 0 minor units")
        return check_int64(int(pool_minor), "pool_minor"), cur
    if policy.pool_amount is not None:
        policy.check_currency(cur, pool_amount=True)
        return to_minor(policy.pool_amount, cur, what=f"{policy.source}: key pool.amount"), cur
    if policy.revenue_share is not None:
        if accounts is None:
            raise ResidualsError(f"{policy.source}: key pool.revenue_share needs the "
                                 "accounts table")
        revenue = total_revenue(accounts)
        pool = math.floor(Fraction(repr(policy.revenue_share)) * revenue)
        return check_int64(pool, f"{policy.source}: key pool.revenue_share: pool_minor"), cur
    raise ResidualsError(f"{policy.source}: no pool: set pool.amount or pool.revenue_share "
                         "in the policy, or pass `pool_minor`")


def prepare(policy: Policy, inputs: AllocationInputs) -> Period:
    """Join the contract frames once into the :class:`Period` components read."""
    rules = policy.rules
    raw_clips = inputs.clips
    if S.LICENSE not in raw_clips.columns:  # no licences: every clip gets license_default
        raw_clips = raw_clips.with_columns(pl.lit(None, dtype=pl.String).alias(S.LICENSE))
    clips_cols = [c for c in (S.DURATION_S, S.LICENSE) if c in raw_clips.columns]
    if S.SEGMENT_ID in raw_clips.columns:
        # One row per clip even with segments; max/min are order-independent.
        raw_clips = (raw_clips.group_by(S.CLIP_ID)
                     .agg(pl.col(S.CREATOR_ID).min(), *[pl.col(c).max() for c in clips_cols]))
    clips = raw_clips.select(S.CLIP_ID, S.CREATOR_ID, *clips_cols).with_columns(
        R.license_multiplier(rules.license_multipliers, rules.license_default).alias(MULTIPLIER))
    creators, index, clip_positions = _creator_counts(inputs.creators, clips)
    attr = inputs.attributions
    _non_negative(attr, S.WEIGHT, S.ATTRIBUTIONS.filename)
    _non_negative(inputs.accounts, S.REVENUE_MINOR, S.ACCOUNTS.filename)
    total_revenue(inputs.accounts)
    weight = pl.col(S.WEIGHT).cast(pl.Float64) * R.confidence_multiplier(attr.columns, rules.min_confidence, rules.low_confidence_factor)  # noqa: E501
    if rules.license_multipliers or rules.license_default != 1.0:
        credits = attr.join(clips.select(S.CLIP_ID, MULTIPLIER), on=S.CLIP_ID, how="left")
        unknown = credits[MULTIPLIER].is_null()
        if unknown.any():
            clip = credits.filter(unknown)[S.CLIP_ID].min()
            raise ContractError(S.ATTRIBUTIONS.filename, f"clip {clip!r} is not in "
                                "clips.parquet", column=S.CLIP_ID)
        credits = credits.select(S.GENERATION_ID, S.CREATOR_ID,
                                 (weight * pl.col(MULTIPLIER)).alias(CREDIT))
    else:  # every multiplier is 1: no join needed
        credits = attr.select(S.GENERATION_ID, S.CREATOR_ID, weight.alias(CREDIT))
    gens = inputs.generations
    has_gens = S.GENERATION_ID in gens.columns
    gen_ids = gens[S.GENERATION_ID] if has_gens else pl.Series(S.GENERATION_ID, [], pl.String)
    if has_gens and S.ACCOUNT_ID in gens.columns:
        gen_accounts = gens.select(S.GENERATION_ID, S.ACCOUNT_ID).filter(
            pl.col(S.ACCOUNT_ID).is_not_null())
    else:
        gen_accounts = pl.DataFrame(schema={S.GENERATION_ID: pl.String, S.ACCOUNT_ID: pl.String})
    if "user_centric" in policy.components and gen_accounts.height == 0:
        raise ContractError(S.GENERATIONS.filename, "has no account ids; the user_centric "
                            "component needs generations linked to accounts",
                            column=S.ACCOUNT_ID)
    uniform = None if rules.license_multipliers else float(rules.license_default)
    return Period(creators, clips, credits, gen_ids, gen_accounts,
                  inputs.accounts.select(S.ACCOUNT_ID, S.REVENUE_MINOR), uniform,
                  index=index, clip_positions=clip_positions)


def _creator_counts(creators: pl.DataFrame, clips: pl.DataFrame
                    ) -> tuple[pl.DataFrame, KeyIndex | None, np.ndarray | None]:
    """``creator_id``, ``opted_out``, ``n_clips`` sorted by creator id, with the
    :class:`KeyIndex` of the ids and each clip's creator position when they exist.

    Fast path: with a KeyIndex, a clip's creator is a position and the counts a
    bincount; beside it the general path (group-by and join) gives the same frame.
    """
    raw = creators.select(S.CREATOR_ID, S.OPTED_OUT)
    ordered = raw if raw[S.CREATOR_ID].is_sorted() else raw.sort(S.CREATOR_ID)
    index = KeyIndex.build(ordered[S.CREATOR_ID])
    clip_positions = index.positions(clips[S.CREATOR_ID]) if index is not None else None
    if clip_positions is not None:
        return ordered.with_columns(pl.Series(
            N_CLIPS, np.bincount(clip_positions, minlength=ordered.height), dtype=pl.Int64
        )), index, clip_positions
    counts = clips.group_by(S.CREATOR_ID).agg(pl.len().cast(pl.Int64).alias(N_CLIPS))
    if index is not None:  # unique ids: joining to the sorted frame keeps its order
        return (ordered.join(counts, on=S.CREATOR_ID, how="left", maintain_order="left")
                .with_columns(pl.col(N_CLIPS).fill_null(0))), index, None
    return (raw.join(counts, on=S.CREATOR_ID, how="left")
            .with_columns(pl.col(N_CLIPS).fill_null(0)).sort(S.CREATOR_ID)), None, None


def total_revenue(accounts: pl.DataFrame) -> int:
    """The exact sum of ``revenue_minor``; refused (one line) beyond 64 bits."""
    total = int_sum(accounts[S.REVENUE_MINOR])
    if total > INT64_MAX:
        raise ContractError(S.ACCOUNTS.filename, f"revenues sum to {total} minor units, beyond "
                            f"the 64-bit limit of the ledger ({INT64_MAX})",
                            column=S.REVENUE_MINOR)
    return total


def _non_negative(df: pl.DataFrame, column: str, file: str) -> None:
    """Frames reach allocate() from callers too, not only from contract.io: a
    negative or non-finite weight or revenue is refused here as well."""
    col = df[column]
    bad = col.is_null() | (col < 0)
    if col.dtype.is_float():
        bad = bad | ~col.is_finite()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise ContractError(file, f"is {col[row]!r}, expected a finite number >= 0", row=row,
                            column=column)


def mix(policy: Policy, period: Period, eligible: pl.DataFrame) -> tuple[pl.DataFrame, float]:
    """Weighted mix of the normalised components over eligible creators.

    Returns the ``eligible`` frame with ``share`` (each creator's fraction of
    the pool) and the withheld fraction of the pool.
    """
    withhold = policy.rules.unattributed == "withhold"
    frame = eligible
    # Dense scores (Scores.dense) are aligned with period.creators: usable
    # when ``eligible`` has the same rows in the same order.
    aligned = (frame.height == period.creators.height
               and frame[S.CREATOR_ID].equals(period.creators[S.CREATOR_ID]))
    is_eligible = frame[R.ELIGIBLE].to_numpy()
    share = np.zeros(frame.height, dtype=np.float64)
    withheld = 0.0
    for name, weight in policy.components.items():  # a handful of components, not rows
        scores = COMPONENT_FUNCTIONS[name](period, by=policy.corpus_by,
                                           unattributed=policy.rules.unattributed)
        if aligned and scores.dense is not None:
            score = np.where(is_eligible, scores.dense, 0.0)
        else:
            score = _joined_scores(frame, scores.frame)
        eligible_total = exact_sum(score)
        total = eligible_total + (scores.unattributed if withhold else 0.0)
        if total <= 0 or eligible_total <= 0:
            withheld += weight
            continue
        withheld += weight * (1.0 - eligible_total / total) if withhold else 0.0
        share = share + weight * score / total
    return (frame.with_columns(pl.Series(SHARE, share, dtype=pl.Float64)),
            min(max(withheld, 0.0), 1.0))


def _joined_scores(frame: pl.DataFrame, scores: pl.DataFrame) -> np.ndarray:
    """A component's scores for the rows of ``frame`` (0 where not eligible or
    without a score), by joining on creator_id; a scored creator that is not in
    ``frame`` is an error."""
    joined = frame.select(S.CREATOR_ID, R.ELIGIBLE).join(
        scores, on=S.CREATOR_ID, how="left", maintain_order="left")
    if joined[SCORE].is_not_null().sum() < scores.height:  # a creator not in creators
        stray = scores.join(frame.select(S.CREATOR_ID), on=S.CREATOR_ID, how="anti")
        raise ContractError(S.ATTRIBUTIONS.filename, f"creator "
                            f"{stray[S.CREATOR_ID].min()!r} is not in creators.parquet",
                            column=S.CREATOR_ID)
    return joined.select(
        pl.when(pl.col(R.ELIGIBLE)).then(pl.col(SCORE).fill_null(0.0)).otherwise(0.0)
    ).to_series().to_numpy()


def allocate(policy: Policy, inputs: AllocationInputs, *, pool_minor: int | None = None,
             currency: str | None = None, batch_id: str) -> Allocation:
    """Allocate one period's pool under ``policy``.

    Parameters
    ----------
    policy
        The parsed policy.
    inputs
        The period's frames and the balances carried in.
    pool_minor, currency
        Override the policy's ``[pool]``.
    batch_id
        Seeds the tie-break of the rounding; the ledger derives it from the
        period, the policy hash and the input hashes.

    Returns
    -------
    Allocation
        With ``sum(allocated_minor) + withheld_minor == pool_minor`` and
        ``paid + carried_out == allocated + carried_in`` per creator.

    Examples
    --------
    An equal split of 100.00 USD; the opted-out creator gets nothing:

    >>> from ledger.policy import parse_policy
    >>> policy = parse_policy('[pool]\\ncurrency = "USD"\\namount = "100.00"\\n'
    ...                       '[components]\\nequal = 1.0\\n')
    >>> inputs = AllocationInputs(
    ...     creators=pl.DataFrame({"creator_id": ["ana", "bo", "cy"],
    ...                            "opted_out": [False, False, True]}),
    ...     clips=pl.DataFrame({"clip_id": ["c1", "c2", "c3"],
    ...                         "creator_id": ["ana", "bo", "cy"]}),
    ...     attributions=pl.DataFrame({"generation_id": ["g1"], "clip_id": ["c1"],
    ...                                "creator_id": ["ana"], "weight": [1.0]}),
    ...     generations=pl.DataFrame(),
    ...     accounts=pl.DataFrame({"account_id": ["u1"], "revenue_minor": [0]}))
    >>> a = allocate(policy, inputs, batch_id="example")
    >>> a.frame.select("creator_id", "allocated_minor", "paid_minor", "reason").rows()
    [('ana', 5000, 5000, None), ('bo', 5000, 5000, None), ('cy', 0, 0, 'opted out')]
    >>> a.allocated_minor + a.withheld_minor == a.pool_minor == 10_000
    True
    """
    pool, cur = pool_from(policy, inputs.accounts, pool_minor, currency)
    rules = policy.rules
    period = prepare(policy, inputs)
    people = R.eligibility(period.creators, exclude_opted_out=rules.exclude_opted_out,
                           min_clips=rules.eligibility_min_clips)
    mixed, withheld_frac = mix(policy, period, people)
    mixed = R.min_share(mixed, rules.eligibility_min_share)
    allocatable = exact_sum(mixed[SHARE])
    if allocatable <= 0:
        withheld_frac, allocatable = 1.0, 0.0
    receiving = mixed.select(pl.col(R.ELIGIBLE) & (pl.col(SHARE) > 0)).to_series()
    receivers = mixed.filter(receiving).select(S.CREATOR_ID, SHARE)
    paid, withheld = _integers(policy, receivers, withheld_frac, allocatable, pool, cur,
                               batch_id)
    carried = (inputs.carried_in.select(S.CREATOR_ID, pl.col(CARRIED_MINOR).cast(pl.Int64))
               if inputs.carried_in is not None
               else pl.DataFrame(schema={S.CREATOR_ID: pl.String, CARRIED_MINOR: pl.Int64}))
    _check_carried(carried, mixed)
    frame = _placed(mixed.select(S.CREATOR_ID, R.ELIGIBLE, R.REASON), paid, receivers,
                    receiving)
    if carried.height:
        frame = (frame.join(carried.rename({CARRIED_MINOR: CARRIED_IN_MINOR}),
                            on=S.CREATOR_ID, how="left", maintain_order="left")
                 .with_columns(pl.col(CARRIED_IN_MINOR).fill_null(0)))
    else:
        frame = frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(CARRIED_IN_MINOR))
    frame = frame.with_columns((pl.col(EXACT_MINOR) / max(pool, 1)).alias(SHARE))
    frame = R.carry_forward(frame, policy.min_payout_in(cur), allocated=ALLOCATED_MINOR,
                            carried_in=CARRIED_IN_MINOR, paid=PAID_MINOR,
                            carried_out=CARRIED_OUT_MINOR)
    frame = frame.with_columns(
        pl.when(pl.col(R.REASON).is_not_null()).then(pl.col(R.REASON))
        .when((pl.col(PAID_MINOR) == 0) & (pl.col(CARRIED_OUT_MINOR) > 0))
        .then(pl.lit(R.REASON_CARRIED))
        .when(pl.col(ALLOCATED_MINOR) == 0).then(pl.lit(R.REASON_ZERO))
        .otherwise(pl.lit(None, dtype=pl.String)).alias(R.REASON),
    ).select(FRAME_COLUMNS)  # still in prepare()'s creator_id order
    return Allocation(frame=frame, pool_minor=pool, currency=cur, withheld_minor=withheld,
                      batch_id=batch_id, policy_name=policy.name, policy_hash=policy.hash)


def _integers(policy: Policy, receivers: pl.DataFrame, withheld_frac: float,
              allocatable: float, pool: int, cur: str, batch_id: str
              ) -> tuple[pl.DataFrame, int]:
    """Integer amounts of the receivers (``creator_id``, ``exact_minor``,
    ``amount_minor``) and the withheld amount; they sum to ``pool`` exactly."""
    rules = policy.rules
    cap = policy.cap_minor_in(pool)
    floor = policy.floor_minor_in(cur, pool)
    if cap is None and not floor:
        # One rounding over the creators and the withheld remainder together, so
        # each payout is within one unit of share * pool.
        if withheld_frac > 0:
            receivers = pl.concat([receivers, pl.DataFrame(
                {S.CREATOR_ID: [_WITHHELD], SHARE: [withheld_frac]},
                schema=receivers.schema)])
        rounded = largest_remainder(receivers, pool, batch_id)
        is_withheld = pl.col(S.CREATOR_ID) == _WITHHELD
        withheld = int(rounded.filter(is_withheld)[AMOUNT_MINOR].sum())
        paid = rounded.filter(~is_withheld).drop(SHARE)
    else:
        # Split the pool first, then pay the allocated part out within the bounds.
        split = largest_remainder(
            pl.DataFrame({S.CREATOR_ID: ["allocated", "withheld"],
                          SHARE: [allocatable, withheld_frac]}), pool, "split:" + batch_id)
        total_alloc = int(split[AMOUNT_MINOR][0])
        withheld = pool - total_alloc
        paid = R.bounded_amounts(
            receivers, total_alloc, batch_id, cap_minor=cap, floor_minor=floor,
            cap_key=f"{policy.source}: key rules.cap_share",
            floor_key=f"{policy.source}: key "
            + ("rules.floor" if rules.floor is not None else "rules.floor_share"))

    return paid, withheld


def _placed(frame: pl.DataFrame, paid: pl.DataFrame, receivers: pl.DataFrame,
            receiving: pl.Series) -> pl.DataFrame:
    """``frame`` with ``exact_minor`` and ``allocated_minor`` of its receivers (0 elsewhere).

    Fast path: ``paid`` has the receivers' rows in their order, so they go back in
    place by position; beside it the general path, a left join, gives the same frame.
    """
    if paid[S.CREATOR_ID].equals(receivers[S.CREATOR_ID]):
        # paid has the receivers' rows in their order: put them back in place
        # (the same as the left join below, without hashing a million ids).
        where = receiving.arg_true().to_numpy()
        exact = np.zeros(frame.height, dtype=np.float64)
        exact[where] = paid[EXACT_MINOR].to_numpy()
        amount = np.zeros(frame.height, dtype=np.int64)
        amount[where] = paid[AMOUNT_MINOR].to_numpy()
        frame = frame.with_columns(pl.Series(EXACT_MINOR, exact, dtype=pl.Float64),
                                   pl.Series(ALLOCATED_MINOR, amount, dtype=pl.Int64))
    else:
        frame = (frame.join(paid, on=S.CREATOR_ID, how="left", maintain_order="left")
                 .with_columns(pl.col(EXACT_MINOR).fill_null(0.0),
                               pl.col(AMOUNT_MINOR).fill_null(0).alias(ALLOCATED_MINOR)))
    return frame


def _check_carried(carried: pl.DataFrame, creators: pl.DataFrame) -> None:
    """Carried balances are >= 0, one per creator, and only for known creators
    (a balance for an unknown creator would silently vanish)."""
    if not carried.height:
        return
    if (carried[CARRIED_MINOR] < 0).any() or carried[CARRIED_MINOR].is_null().any():
        raise ResidualsError("carried_in: a carried balance is negative or null, expected >= 0")
    dup = carried.filter(carried[S.CREATOR_ID].is_duplicated())
    if dup.height:
        raise ResidualsError(f"carried_in: creator {dup[S.CREATOR_ID].min()!r} appears twice")
    stray = carried.join(creators.select(S.CREATOR_ID), on=S.CREATOR_ID, how="anti")
    if stray.height:
        raise ResidualsError(f"carried_in: creator {stray[S.CREATOR_ID].min()!r} is not in "
                             "creators.parquet; their carried balance would be lost")


def from_dataset(ds: Dataset, attributions: pl.DataFrame,
                 carried_in: pl.DataFrame | None = None) -> AllocationInputs:
    """:class:`AllocationInputs` from a :class:`contract.io.Dataset` and its
    attributions (dropping embeddings, which allocation never reads)."""
    def slim(df: pl.DataFrame) -> pl.DataFrame:
        return df.drop(S.EMBEDDING) if S.EMBEDDING in df.columns else df

    return AllocationInputs(
        creators=ds.creators, clips=slim(ds.clips), attributions=attributions,
        generations=slim(ds.generations), accounts=ds.accounts, carried_in=carried_in)
