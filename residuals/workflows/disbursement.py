"""Payout operations: export payouts to a provider, import its status report, creator
profiles, and the batch and payout listings operators read.

Rule: each flow is one typed function that opens the ledger, does its work in one
write-locked database transaction (or a read session) and returns a result; no
flags, no printing. Errors name parameters (``batch='x': ...``); the commands
translate them to flags. An export records each exported payout ``submitted``
and writes its file atomically *before* the commit, removing it if the commit
fails: a file on disk whose payouts are not submitted can only follow a crash
between the two, and the next export refuses to overwrite it. The ``submitted``
events name the file's sha256 (``export:<sha256>``), from which
:func:`export_again` renders the same file again, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from contract import schema as S
from contract.errors import ResidualsError

FORMATS = ("csv", "paypal", "stripe")
SUFFIXES = {"csv": "csv", "paypal": "csv", "stripe": "jsonl"}
"""The file name suffix of each format's export."""
EXPORT_SOURCE = "export:"
"""Prefix of the ``source`` of an export's ``submitted`` events; the file's sha256 follows."""
PAYPAL_MAX_ROWS = 5000
"""PayPal Payouts Web accepts at most 5,000 payments per file."""


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the batch, the file, its payouts and their total."""

    batch_id: str
    period: str
    path: Path
    payouts: int
    total_minor: int
    currency: str
    held: int


def resolve_batch(session: Any, batch: str) -> Any:
    """The batch named by ``batch``: a batch id (or a prefix of 12+ hex digits), or a
    period (its standing batch)."""
    from sqlalchemy import select

    from ledger.store import models as M

    b = M.Batch
    superseded = select(b.supersedes_id).where(b.supersedes_id.is_not(None))
    found = session.execute(select(b).where(b.period == batch, b.batch_id.not_in(superseded))
                            ).scalars().all()
    if not found and len(batch) >= 12:
        found = session.execute(select(b).where(b.batch_id.startswith(batch.lower(),
                                                                      autoescape=True))
                                ).scalars().all()
    if len(found) != 1:
        what = "no batch or period" if not found else "more than one batch"
        raise ResidualsError(f"batch={batch!r}: {what} matches (give a batch id, 12 or more "
                             "of its first hex digits, or a period)")
    return found[0]


def _amount_text(currency: str) -> pl.Expr:
    from ledger.money import exponent

    exp = exponent(currency)
    whole = (pl.col(S.AMOUNT_MINOR) // 10**exp).cast(pl.String)
    frac = (pl.col(S.AMOUNT_MINOR) % 10**exp).cast(pl.String).str.zfill(exp)
    return pl.concat_str(whole, pl.lit("."), frac) if exp else whole


def render(rows: pl.DataFrame, fmt: str, batch: Any) -> bytes:
    """The bytes of an export file (``rows``: payout_id, creator_id, payout_method,
    country, amount_minor, currency), formulas neutralised in the CSV formats."""
    from contract.io import spreadsheet_safe

    cur = batch.currency
    if fmt == "csv":
        df = rows.select("payout_id", pl.lit(batch.batch_id).alias(S.BATCH_ID),
                         pl.lit(batch.period).alias(S.PERIOD), S.CREATOR_ID, "payout_method",
                         "country", _amount_text(cur).alias("amount"), S.AMOUNT_MINOR,
                         S.CURRENCY)
        return spreadsheet_safe(df).write_csv().encode()
    if fmt == "paypal":  # recipient, amount, currency, customer id, note, wallet; no header
        df = rows.select("payout_method", _amount_text(cur).alias("amount"), S.CURRENCY,
                         "payout_id", pl.lit(f"Residuals payout, period {batch.period}")
                         .alias("note"), pl.lit("PAYPAL").alias("wallet"))
        return spreadsheet_safe(df).write_csv(include_header=False).encode()
    lines = [json.dumps({
        "idempotency_key": pid, "endpoint": "POST /v1/transfers",
        "params": {"amount": amount, "currency": cur.lower(), "destination": method,
                   "transfer_group": f"residuals-{batch.period}",
                   "metadata": {"payout_id": pid, "creator_id": cid,
                                "batch_id": batch.batch_id}}},
        sort_keys=True, ensure_ascii=True)
        for pid, cid, method, amount in rows.select(
            "payout_id", S.CREATOR_ID, "payout_method", S.AMOUNT_MINOR).iter_rows()]
    return "".join(line + "\n" for line in lines).encode()


def _pending_rows(session: Any, batch_id: str) -> tuple[pl.DataFrame, int]:
    """The batch's pending payouts with their creator's current payout method and
    country; and how many of its payouts are held."""
    from sqlalchemy import func, select

    from ledger.store import models as M
    from ledger.store.payout_states import current_states
    from ledger.store.read import frame

    states = current_states(session, batch_id=batch_id)
    cp = M.CreatorProfile
    newest = select(func.max(cp.id)).group_by(cp.creator_id)
    profiles = frame(session, select(cp.creator_id, cp.payout_method, cp.country)
                     .where(cp.id.in_(newest)),
                     {S.CREATOR_ID: pl.String(), "payout_method": pl.String(),
                      "country": pl.String()})
    pending = states.filter(pl.col("state") == "pending").join(profiles, on=S.CREATOR_ID,
                                                                how="left")
    return pending.sort("payout_id"), int((states["state"] == "held").sum())


def export_payouts(db: str | None, batch: str, fmt: str, out: Path) -> Exported:
    """Write the batch's pending payouts in ``fmt`` to ``out`` and record them
    ``submitted``, in one database transaction (see the module rule)."""
    import hashlib

    from contract.io import atomic_output
    from ledger.store.engine import write_session
    from ledger.store.payout_states import apply_events, event_frame
    from residuals.workflows.store import require_ledger

    if fmt not in FORMATS:
        raise ResidualsError(f"fmt={fmt!r}: expected one of {', '.join(FORMATS)}")
    if out.exists():
        raise ResidualsError(f"out={str(out)!r}: exists; an export never replaces a file "
                             "(its payouts may already be at the provider)")
    engine = require_ledger(db)
    written = False
    try:
        with write_session(engine) as s, s.begin():
            b = resolve_batch(s, batch)
            rows, held = _pending_rows(s, b.batch_id)
            _check_exportable(rows, held, batch, fmt)
            data = render(rows, fmt, b)
            apply_events(s, event_frame(rows["payout_id"].to_list(), "submitted",
                                        source=EXPORT_SOURCE + hashlib.sha256(data).hexdigest()))
            with atomic_output(out) as tmp:
                tmp.write_bytes(data)
            written = True
    except BaseException:
        if written:  # the file is in place but the commit failed: nothing was submitted
            out.unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
    return Exported(b.batch_id, b.period, out, rows.height, int(rows[S.AMOUNT_MINOR].sum()),
                    b.currency, held)


def _check_exportable(rows: pl.DataFrame, held: int, batch: str, fmt: str) -> None:
    if rows.height == 0:
        raise ResidualsError(f"batch={batch!r}: no pending payouts to export ({held} held)")
    lacking = rows.filter(pl.col("payout_method").is_null())
    if lacking.height:
        raise ResidualsError(f"batch={batch!r}: payout {lacking['payout_id'][0]} is pending "
                             "but its creator has no payout method")
    if fmt == "paypal" and rows.height > PAYPAL_MAX_ROWS:
        raise ResidualsError(f"fmt='paypal': {rows.height} payouts, PayPal Payouts accepts at "
                             f"most {PAYPAL_MAX_ROWS:,} per file")


EXPORTS_SCHEMA = {"sha256": pl.String(), S.BATCH_ID: pl.String(), "payouts": pl.Int64(),
                  S.AMOUNT_MINOR: pl.Int64(), "exported_at": pl.Datetime("us")}


def past_exports(db: str | None) -> pl.DataFrame:
    """Every export recorded in the ledger, newest first: ``sha256`` of its file,
    ``batch_id``, ``period``, ``payouts``, ``amount_minor`` (their total), ``currency``,
    ``exported_at``."""
    from sqlalchemy import BigInteger, cast, func, select

    from ledger.store import models as M
    from ledger.store.engine import read_session
    from ledger.store.read import batches, frame
    from residuals.workflows.store import require_ledger

    pe, p = M.PayoutEvent, M.Payout
    stmt = (select(func.substr(pe.source, len(EXPORT_SOURCE) + 1), p.batch_id, func.count(),
                   cast(func.sum(p.amount_minor), BigInteger), func.min(pe.recorded_at))
            .join(p, p.payout_id == pe.payout_id)
            .where(pe.state == "submitted", pe.source.startswith(EXPORT_SOURCE))
            .group_by(pe.source, p.batch_id))
    engine = require_ledger(db)
    try:
        with read_session(engine) as s:
            found = frame(s, stmt, EXPORTS_SCHEMA).join(
                batches(s).select(S.BATCH_ID, S.PERIOD, S.CURRENCY), on=S.BATCH_ID)
    finally:
        engine.dispose()
    return found.sort("exported_at", "sha256", descending=True).select(
        "sha256", S.BATCH_ID, S.PERIOD, "payouts", S.AMOUNT_MINOR, S.CURRENCY, "exported_at")


@dataclass(frozen=True)
class ExportAgain:
    """An earlier export rendered again: its format and bytes (sha256 as recorded)."""

    sha256: str
    batch_id: str
    period: str
    fmt: str
    data: bytes
    payouts: int

    @property
    def file_name(self) -> str:
        """The file's name for a download (:func:`export_file_name`)."""
        return export_file_name(self.period, self.fmt)


def export_file_name(period: str, fmt: str) -> str:
    """``payouts-<period>-<format>.<suffix>``: an export's file name for a download."""
    return f"payouts-{period}-{fmt}.{SUFFIXES[fmt]}"


def _export_rows(session: Any, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The payouts of one export (``source`` of their ``submitted`` events), and their
    creators' profile rows recorded no later than it, by ``id``, with ``same``: 1 for a
    row recorded in the same clock tick as the export (before or after it: a clock that
    counts seconds cannot say), else 0."""
    from sqlalchemy import case, func, select

    from ledger.store import models as M
    from ledger.store.read import frame

    pe, p, cp = M.PayoutEvent, M.Payout, M.CreatorProfile
    exported = select(pe.payout_id).where(pe.source == source, pe.state == "submitted")
    at = select(func.min(pe.recorded_at)).where(pe.source == source).scalar_subquery()
    text = pl.String()
    rows = frame(session, select(p.payout_id, p.batch_id, p.creator_id, p.amount_minor,
                                 p.currency).where(p.payout_id.in_(exported)),
                 {"payout_id": text, S.BATCH_ID: text, S.CREATOR_ID: text,
                  S.AMOUNT_MINOR: pl.Int64(), S.CURRENCY: text})
    creators = select(p.creator_id).where(p.payout_id.in_(exported))
    profiles = frame(session, select(cp.id, cp.creator_id, cp.payout_method, cp.country,
                                     case((cp.recorded_at == at, 1), else_=0))
                     .where(cp.recorded_at <= at, cp.creator_id.in_(creators)).order_by(cp.id),
                     {"id": pl.Int64(), S.CREATOR_ID: text, "payout_method": text,
                      "country": text, "same": pl.Int64()})
    return rows, profiles


def _as_exported(rows: pl.DataFrame, profiles: pl.DataFrame) -> Iterator[pl.DataFrame]:
    """``rows`` with each creator's payout method and country as the export may have
    read them: the newest profile recorded before it, or at its clock tick up to each
    possible point (the rows of that tick are in commit order, by ``id``), latest first."""
    same = profiles.filter(pl.col("same") == 1)["id"].to_list()
    for cut in [*reversed(same), None]:  # a tick's few rows; None: none of them
        seen = profiles.filter((pl.col("same") == 0) | (pl.col("id") <= (cut or 0)))
        newest = seen.group_by(S.CREATOR_ID).agg(pl.all().sort_by("id").last())
        yield rows.join(newest.select(S.CREATOR_ID, "payout_method", "country"),
                        on=S.CREATOR_ID, how="left").sort("payout_id")


def export_again(db: str | None, sha256: str) -> ExportAgain:
    """The file of an earlier export, rendered again from the ledger: the payouts its
    ``submitted`` events name, in the format whose bytes have the recorded sha256.

    ``sha256`` is the file's sha256 in hex, or 12 or more of its first digits.

    Raises
    ------
    ResidualsError
        No export (or more than one) has this sha256, or no format renders the
        recorded file again (the profiles it read are not in the ledger as they were).
    """
    import hashlib

    from sqlalchemy import select

    from ledger.store import models as M
    from ledger.store.engine import read_session
    from residuals.workflows.store import require_ledger

    want = sha256.strip().lower()
    if not 12 <= len(want) <= 64 or any(c not in "0123456789abcdef" for c in want):
        raise ResidualsError(f"sha256={sha256!r}: expected 12 to 64 hex digits of an "
                             "export's sha256")
    engine = require_ledger(db)
    try:
        with read_session(engine) as s:
            pe = M.PayoutEvent
            sources = s.execute(select(pe.source).distinct().where(
                pe.state == "submitted", pe.source.startswith(EXPORT_SOURCE + want,
                                                              autoescape=True))).scalars().all()
            if len(sources) != 1:
                what = "no export has" if not sources else "more than one export has"
                raise ResidualsError(f"sha256={sha256!r}: {what} this sha256 (see "
                                     "past exports)")
            payouts, profiles = _export_rows(s, sources[0])
            batch = s.get(M.Batch, payouts[S.BATCH_ID][0])
    finally:
        engine.dispose()
    full = sources[0][len(EXPORT_SOURCE):]
    for rows in _as_exported(payouts, profiles):
        for fmt in FORMATS:
            data = render(rows, fmt, batch)
            if hashlib.sha256(data).hexdigest() == full:
                return ExportAgain(full, batch.batch_id, batch.period, fmt, data, rows.height)
    raise ResidualsError(f"sha256={sha256!r}: the export's {payouts.height} payouts render in "
                         "no format to this sha256 (its creators' profiles as the ledger has "
                         "them do not give this file)")


def import_report(db: str | None, report: Path) -> Any:
    """Reconcile and apply a provider status report in one database transaction;
    returns the :class:`ledger.store.reports.Reconciliation`."""
    from ledger.store.engine import write_session
    from ledger.store.reports import import_report as apply_report
    from residuals.workflows.store import require_ledger

    if not report.is_file():
        raise ResidualsError(f"report={str(report)!r}: no such file")
    engine = require_ledger(db)
    try:
        with write_session(engine) as s, s.begin():
            result = apply_report(s, report)
    finally:
        engine.dispose()
    return result


def list_payouts(db: str | None, batch: str | None = None,
                 state: str | None = None) -> pl.DataFrame:
    """Payouts with their current state (of one batch, in one state), with the period."""
    from ledger.store import models as M
    from ledger.store.engine import read_session
    from ledger.store.payout_states import current_states
    from ledger.store.read import batches
    from residuals.workflows.store import require_ledger

    if state is not None and state not in M.PAYOUT_STATES:
        raise ResidualsError(f"state={state!r}: expected one of {', '.join(M.PAYOUT_STATES)}")
    engine = require_ledger(db)
    try:
        with read_session(engine) as s:
            bid = resolve_batch(s, batch).batch_id if batch is not None else None
            out = current_states(s, batch_id=bid).join(
                batches(s).select(S.BATCH_ID, S.PERIOD, S.SEQ), on=S.BATCH_ID)
    finally:
        engine.dispose()
    if state is not None:
        out = out.filter(pl.col("state") == state)
    return out.sort(S.SEQ, S.CREATOR_ID)


@dataclass(frozen=True)
class ProfileSet:
    """The profile recorded, and how many payouts were released from or put on hold."""

    profile: Any  # ledger.store.profiles.Profile
    released: int
    held: int


def set_creator_profile(db: str | None, creator_id: str, *, payout_method: str | None = None,
                        country: str | None = None, tax_form: str | None = None) -> ProfileSet:
    """Record a creator's payout profile and release or hold their payouts to match."""
    from ledger.store.engine import open_store, write_session
    from ledger.store.payout_states import release_or_hold
    from ledger.store.profiles import set_profile

    if payout_method is None and country is None and tax_form is None:
        raise ResidualsError("`payout_method`, `country`, `tax_form`: give at least one")
    engine = open_store(db)
    try:
        with write_session(engine) as s, s.begin():
            profile = set_profile(s, creator_id, payout_method=payout_method, country=country,
                                  tax_form=tax_form)
            released, held = release_or_hold(s, creator_id, source="profile")
    finally:
        engine.dispose()
    return ProfileSet(profile, released, held)


def batch_overview(db: str | None) -> pl.DataFrame:
    """Every batch in chain order with its payouts counted per current state."""
    from ledger.store.engine import read_session
    from ledger.store.payout_states import current_states
    from ledger.store.read import batches
    from residuals.workflows.store import require_ledger

    engine = require_ledger(db)
    try:
        with read_session(engine) as s:
            rows, states = batches(s), current_states(s)
    finally:
        engine.dispose()
    counts = states.group_by(S.BATCH_ID, "state").len().pivot(
        on="state", index=S.BATCH_ID, values="len")
    return rows.join(counts, on=S.BATCH_ID, how="left").sort(S.SEQ)


def batch_detail(db: str | None, batch: str) -> tuple[dict[str, Any], pl.DataFrame]:
    """One batch (its row as a dict) and its payouts with their current states."""
    from ledger.store.engine import read_session
    from ledger.store.payout_states import current_states
    from ledger.store.read import batches
    from residuals.workflows.store import require_ledger

    engine = require_ledger(db)
    try:
        with read_session(engine) as s:
            bid = resolve_batch(s, batch).batch_id
            row = batches(s).filter(pl.col(S.BATCH_ID) == bid).row(0, named=True)
            payouts = current_states(s, batch_id=bid)
    finally:
        engine.dispose()
    return row, payouts

