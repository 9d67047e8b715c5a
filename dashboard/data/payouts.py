"""Payouts as the admin sees them: states per batch, exports to a provider (and their
files again), status reports.

Rule: every function refuses (:class:`~dashboard.data.session.NotAllowed`) anyone
but an admin, whatever page calls it. Exports and imports run the same workflow
functions as ``residuals payouts export|import``
(:mod:`residuals.workflows.disbursement`), so a payout exported from the page is
recorded ``submitted`` exactly as from the command line. Nothing here is cached:
the page shows a state the moment it changes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from contract import schema as S
from contract.errors import ResidualsError
from dashboard import config
from dashboard.auth import ADMIN, LoggedIn
from dashboard.data.session import NotAllowed, staff
from dashboard.data.store import engine

COUNT = "payouts"
"""Column of :func:`state_summary`: how many payouts are in the state."""
MAX_REPORT_BYTES = 200 * 1024 * 1024
"""The largest status report the page accepts (about 2 million lines)."""


def _admin() -> LoggedIn:
    user = staff()
    if user.role != ADMIN:
        raise NotAllowed("payouts need an admin login")
    return user


def state_summary(states: pl.DataFrame, batches: pl.DataFrame) -> pl.DataFrame:
    """Payouts counted and summed per batch and current state, in chain order.

    Pure: ``states`` as :func:`ledger.store.payout_states.current_states` returns
    them, ``batches`` as :func:`ledger.store.read.batches`. Columns: ``batch_id``,
    ``seq``, ``period``, ``superseded``, ``currency``, ``state``, :data:`COUNT`,
    ``amount_minor``.
    """
    per = states.group_by(S.BATCH_ID, "state").agg(
        pl.len().cast(pl.Int64).alias(COUNT), pl.col(S.AMOUNT_MINOR).sum().alias(S.AMOUNT_MINOR))
    return per.join(batches.select(S.BATCH_ID, S.SEQ, S.PERIOD, S.SUPERSEDED, S.CURRENCY),
                    on=S.BATCH_ID).sort(S.SEQ, "state").select(
        S.BATCH_ID, S.SEQ, S.PERIOD, S.SUPERSEDED, S.CURRENCY, "state", COUNT, S.AMOUNT_MINOR)


def summary() -> pl.DataFrame:
    """:func:`state_summary` of the ledger (admin only)."""
    from ledger.store import read_session
    from ledger.store.payout_states import current_states
    from ledger.store.read import batches

    _admin()
    with read_session(engine()) as s:
        return state_summary(current_states(s), batches(s))


def batch_payouts(batch_id: str) -> pl.DataFrame:
    """Every payout of one batch with its current state and reason (admin only)."""
    from ledger.store import read_session
    from ledger.store.payout_states import current_states

    _admin()
    with read_session(engine()) as s:
        return current_states(s, batch_id=batch_id)


@dataclass(frozen=True)
class ExportFile:
    """An export made from the page: what the workflow recorded, and the file's bytes."""

    exported: Any  # residuals.workflows.disbursement.Exported
    data: bytes
    file_name: str


def export(batch_id: str, fmt: str) -> ExportFile:
    """Export the batch's pending payouts in ``fmt`` (csv, paypal, stripe) and record them
    ``submitted`` (admin only); the file's bytes are returned for download."""
    from residuals.workflows.disbursement import export_file_name, export_payouts

    _admin()
    with tempfile.TemporaryDirectory(prefix="residuals-export-") as tmp:
        out = Path(tmp) / "payouts"  # an unknown format is refused by the workflow
        done = export_payouts(config.db_url(), batch_id, fmt, out)
        data = out.read_bytes()
    return ExportFile(done, data, export_file_name(done.period, fmt))


def past_exports() -> pl.DataFrame:
    """Every export recorded in the ledger, newest first (admin only; columns of
    :func:`residuals.workflows.disbursement.past_exports`)."""
    from residuals.workflows.disbursement import past_exports as recorded

    _admin()
    return recorded(config.db_url())


def export_again(sha256: str) -> Any:
    """An earlier export's file rendered again, byte for byte (admin only); a
    :class:`residuals.workflows.disbursement.ExportAgain`. Nothing is recorded."""
    from residuals.workflows.disbursement import export_again as rendered

    _admin()
    return rendered(config.db_url(), sha256)


def import_report(file_name: str, data: bytes) -> Any:
    """Reconcile and apply an uploaded status report (admin only); returns the
    :class:`ledger.store.reports.Reconciliation`. Errors name the uploaded file by its
    name, never by where the server kept it.

    Raises
    ------
    ResidualsError
        A report that is too large or malformed (one line: file, line, column).
    """
    from residuals.workflows.disbursement import import_report as apply_report

    _admin()
    name = Path(file_name).name or "report.csv"
    if len(data) > MAX_REPORT_BYTES:
        raise ResidualsError(f"{name}: {len(data):,} bytes, the page accepts at most "
                             f"{MAX_REPORT_BYTES:,}")
    with tempfile.TemporaryDirectory(prefix="residuals-report-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return apply_report(config.db_url(), path)
        except ResidualsError as exc:
            raise ResidualsError(str(exc).replace(str(path), name).replace(
                repr(str(path)), repr(name))) from None
