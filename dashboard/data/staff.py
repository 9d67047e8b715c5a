"""What the platform's staff (admin, economist) see: whole batches, payout files, verify.

Rule: every public function here refuses (:class:`~dashboard.data.session.NotAllowed`)
without an admin or economist login, whatever page calls it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy.orm import Session

from contract import schema as S
from dashboard import lab
from dashboard.data.public import batch_list
from dashboard.data.session import staff
from dashboard.data.store import cached_reader, exponent
from ledger.store import read

CARRIED_OUT_TOTAL = read.CARRIED_OUT_TOTAL
#: The decimal amount column of ``payouts-PERIOD.csv``, as ``residuals batch run`` writes it.
PAYOUT_AMOUNT = "amount"
#: Column naming which allocation a Lorenz point belongs to.
SERIES = lab.SERIES

_carried = cached_reader(read.carried_out_totals)
_batch_lines = cached_reader(read.batch_lines)
_payouts = cached_reader(read.payouts)


def batch_overview() -> pl.DataFrame:
    """Every batch with the total carried forward to later periods (staff only)."""
    staff()
    return batch_list().join(_carried(), on=S.BATCH_ID, how="left").with_columns(
        pl.col(CARRIED_OUT_TOTAL).fill_null(0))


def batch_lines(batch_id: str) -> pl.DataFrame:
    """Every creator's line in a batch (staff only)."""
    staff()
    return _batch_lines(batch_id)


def payout_file(batch_id: str) -> pl.DataFrame:
    """The payout file of a batch: creator, amount, currency, reference (staff only)."""
    staff()
    return _payouts(batch_id)


def payout_csv(batch_id: str) -> bytes:
    """The payout file, byte for byte as ``residuals batch run`` writes ``payouts-PERIOD.csv``
    (creator_id, amount in major units, amount_minor, currency, reference; tested)."""
    from ledger.store.statements import major

    df = payout_file(batch_id)
    exp = exponent(df[S.CURRENCY][0]) if df.height else 0
    return df.with_columns(major(S.AMOUNT_MINOR, exp).alias(PAYOUT_AMOUNT)).select(
        S.CREATOR_ID, PAYOUT_AMOUNT, S.AMOUNT_MINOR, S.CURRENCY, S.REFERENCE,
    ).write_csv().encode("utf-8")


@dataclass(frozen=True)
class Fairness:
    """Concentration of one set of allocations (see :mod:`ledger.fairness`)."""

    gini: float
    top1: float
    top10: float
    creators_paid: int
    median_paid_minor: int
    largest_paid_minor: int
    lorenz: pl.DataFrame


def fairness_of(lines: pl.DataFrame, label: str) -> Fairness:
    """Fairness of allocation lines (``allocated_minor``, ``paid_minor``, ``eligible``).

    Like :func:`ledger.fairness.summary`: Gini, top shares and the Lorenz curve
    over the eligible creators' allocations; payout figures over those paid.
    Works on a posted batch's statement lines and on an ``Allocation.frame``.
    """
    from ledger import fairness as F

    allocated = lines.filter(pl.col(S.ELIGIBLE))[S.ALLOCATED_MINOR]
    paid = lines.filter(pl.col(S.PAID_MINOR) > 0)[S.PAID_MINOR]
    return Fairness(
        gini=float(F.gini(allocated)),
        top1=float(F.top_share(allocated, 0.01)),
        top10=float(F.top_share(allocated, 0.10)),
        creators_paid=int(paid.len()),
        median_paid_minor=int(paid.median() or 0),
        largest_paid_minor=int(paid.max() or 0),
        lorenz=lab.thin(F.lorenz(allocated)).with_columns(pl.lit(label).alias(SERIES)),
    )


def batch_fairness(batch_id: str) -> Fairness:
    """Fairness summary of a posted batch's allocations (staff only)."""
    return fairness_of(batch_lines(batch_id), "posted")


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of ``residuals ledger verify`` as the Batches page shows it."""

    ok: bool
    summary: str
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()


def recompute_batch(man: dict, carried: pl.DataFrame) -> pl.DataFrame | str:
    """Re-run a batch's allocation from the inputs its manifest names (for ``verify``).

    The dashboard never runs attribution: a batch that computed its attributions
    when posted is left to ``residuals ledger verify``, with the reason returned.
    """
    from residuals.workflows.payout import recompute_batch as recompute

    return recompute(man, carried, compute_attributions=False)


def verify_of(session: Session, recompute: bool) -> VerifyReport:
    """``ledger verify`` of the ledger behind ``session``, as a :class:`VerifyReport`."""
    from ledger.store.verify import verify

    result = verify(session, recompute=recompute_batch if recompute else None)
    problems = tuple(str(v) for v in result.violations)
    summary = ", ".join(f"{n:,} {what}" for what, n in result.counts.items()) + " checked"
    return VerifyReport(not problems, summary, problems, tuple(result.notes))


_verify = cached_reader(verify_of, spinner="Verifying the ledger…")


def verify_report(*, recompute: bool = True) -> VerifyReport:
    """The ledger's verification (balances, transactions, hash chain, reversals and, with
    ``recompute``, each batch's payouts from its inputs), cached briefly; staff only."""
    staff()
    return _verify(recompute)
