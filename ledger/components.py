"""Policy components: what each creator's claim on the pool is made of.

Rule: a component is a pure function of the prepared period (:class:`Period`)
returning one non-negative score per creator, plus the ``unattributed`` mass:
value that belongs to nobody (a generation nothing was similar to, revenue of
an account whose generations were not attributed). :mod:`ledger.allocate`
normalises every component the same way, once: ``score / (sum of eligible
scores [+ unattributed when the policy withholds it])``, then mixes them by
weight. Components never normalise, never join creators, never round.

Sums are order-independent (:func:`ledger.money.exact_group_sum`), so
shuffling input rows never changes a score by even one ulp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from contract import schema as S
from contract.errors import ContractError
from ledger.money import exact_group_sum, exact_sum

SCORE = S.SCORE
CREDIT = S.CREDIT
MULTIPLIER = S.MULTIPLIER
N_CLIPS = S.N_CLIPS
VALUE = S.VALUE


@dataclass(frozen=True)
class Period:
    """The inputs of one period, joined once and shared by every component.

    Attributes
    ----------
    creators
        ``creator_id``, ``opted_out``, ``n_clips`` (distinct clips), one row
        per creator, sorted by ``creator_id``.
    clips
        One row per distinct clip: ``clip_id``, ``creator_id``,
        ``multiplier`` (the licence multiplier) and ``duration_s`` when known.
    credits
        One row per attribution row: ``generation_id``, ``creator_id``,
        ``credit`` = attribution weight x licence multiplier of the clip.
    generation_ids
        The ``generation_id`` column of the generations table (may be empty:
        generations named only in ``credits`` count too).
    generation_accounts
        ``generation_id``, ``account_id`` for generations that name an account.
    accounts
        ``account_id``, ``revenue_minor``.
    uniform_multiplier
        The licence multiplier of every clip when the policy sets none per
        licence (so per-clip sums reduce to counts), else None.
    """

    creators: pl.DataFrame
    clips: pl.DataFrame
    credits: pl.DataFrame
    generation_ids: pl.Series
    generation_accounts: pl.DataFrame
    accounts: pl.DataFrame
    uniform_multiplier: float | None = None


@dataclass(frozen=True)
class Scores:
    """A component's result: ``frame`` (creator_id, score >= 0; one row per
    creator with a score, in no particular order) and the ``unattributed`` mass
    in the same units as the scores."""

    frame: pl.DataFrame
    unattributed: float


def _scores(df: pl.DataFrame, value: str) -> pl.DataFrame:
    return exact_group_sum(df, S.CREATOR_ID, value, SCORE)


def attribution(period: Period, *, unattributed: str = "redistribute", **_: object) -> Scores:
    """Each generation is worth 1, split over creators by attribution credit.

    A creator's score is the sum of the credits of their clips over all
    generations; a generation whose weights sum to 0 (nothing similar enough)
    is unattributed, as is what licence multipliers below 1 take away. The
    unattributed mass is computed only when ``unattributed == "withhold"``
    (otherwise it is redistributed and its size does not matter).
    """
    scores = _scores(period.credits, CREDIT)
    if unattributed != "withhold":  # the mass is only needed when it is withheld
        return Scores(scores, 0.0)
    credited = exact_sum(period.credits[CREDIT]) if period.credits.height else 0.0
    n_gen = float(pl.concat([period.generation_ids, period.credits[S.GENERATION_ID]]).n_unique())
    return Scores(scores, _clamp(n_gen - credited, n_gen))


def corpus(period: Period, *, by: str = "clips", **_: object) -> Scores:
    """Corpus volume: each clip counts 1 (``by="clips"``) or its duration in
    seconds (``by="duration"``), times its licence multiplier."""
    clips = period.clips
    if by == "duration":
        if S.DURATION_S not in clips.columns:
            raise ContractError(S.CLIPS.filename, "is missing; the policy's corpus.by = "
                                "\"duration\" needs clip durations", column=S.DURATION_S)
        nulls = clips[S.DURATION_S].is_null() | (clips[S.DURATION_S] < 0)
        if nulls.any():
            row = int(nulls.arg_true()[0])
            raise ContractError(S.CLIPS.filename, f"is {clips[S.DURATION_S][row]!r}, expected "
                                "a duration >= 0 (corpus.by = \"duration\")",
                                column=S.DURATION_S, ident=f"clip_id {clips[S.CLIP_ID][row]!r}")
        valued = clips.select(S.CREATOR_ID,
                              (pl.col(S.DURATION_S) * pl.col(MULTIPLIER)).alias(VALUE))
    elif period.uniform_multiplier is not None:  # count x multiplier, already counted
        return Scores(period.creators.filter(pl.col(N_CLIPS) > 0).select(
            S.CREATOR_ID, (pl.col(N_CLIPS).cast(pl.Float64) * period.uniform_multiplier)
            .alias(SCORE)), 0.0)
    else:
        valued = clips.select(S.CREATOR_ID, pl.col(MULTIPLIER).alias(VALUE))
    return Scores(_scores(valued, VALUE), 0.0)


def user_centric(period: Period, *, unattributed: str = "redistribute", **_: object) -> Scores:
    """Each account's revenue goes to the creators of its own generations.

    An account's ``revenue_minor`` is split over its generations equally, and
    each generation's part over creators by credit (``unattributed =
    "withhold"``: an unattributed generation's part is unattributed); with
    ``"redistribute"`` the account's revenue is split in proportion to the
    credits of all its generations, so only accounts with no attributed
    generation at all leave revenue unattributed. Generations without an
    account do not count here.
    """
    ga = period.generation_accounts
    accounts = period.accounts.select(S.ACCOUNT_ID, pl.col(S.REVENUE_MINOR).cast(pl.Float64))
    revenue = float(period.accounts[S.REVENUE_MINOR].sum() or 0)
    rows = period.credits.join(ga, on=S.GENERATION_ID, how="inner")
    if unattributed == "withhold":
        per_account = ga.group_by(S.ACCOUNT_ID).agg(pl.len().cast(pl.Float64).alias("__n"))
    else:
        per_account = exact_group_sum(rows, S.ACCOUNT_ID, CREDIT, "__n")
    valued = (rows.join(per_account, on=S.ACCOUNT_ID, how="inner")
              .join(accounts, on=S.ACCOUNT_ID, how="inner")
              .filter(pl.col("__n") > 0)
              .select(S.CREATOR_ID,
                      (pl.col(S.REVENUE_MINOR) * pl.col(CREDIT) / pl.col("__n")).alias(VALUE)))
    paid = exact_sum(valued[VALUE]) if valued.height else 0.0
    return Scores(_scores(valued, VALUE), _clamp(revenue - paid, revenue))


def equal(period: Period, **_: object) -> Scores:
    """Equal split: every creator scores 1 (eligibility decides who counts)."""
    frame = period.creators.select(S.CREATOR_ID, pl.lit(1.0).alias(SCORE))
    return Scores(frame, 0.0)


def _clamp(mass: float, total: float) -> float:
    """Unattributed mass, with float dust (|x| <= 1e-9 of the total) set to 0."""
    return 0.0 if mass <= 1e-9 * max(total, 1.0) else mass


#: Name (as written in a policy's [components]) -> component function.
COMPONENT_FUNCTIONS: dict[str, Callable[..., Scores]] = {
    "attribution": attribution,
    "corpus": corpus,
    "user_centric": user_centric,
    "equal": equal,
}
