"""Payout lifecycle: each creator payout of a batch, its states and the money they move.

Rule: a payout's state changes only along :data:`TRANSITIONS` (one table, checked
by :func:`check_transition` and, set-based, by :func:`allowed`), each change is a
new ``payout_events`` row (append-only), and a change that moves money names the
balanced ledger transaction posted with it in the same database transaction, one
per (batch, state) of the changes applied together, its legs summed per account::

    paid                  in transit  -amount   disbursed    +amount   (disbursement)
    failed, canceled      in transit  -amount   payable/<c>  +amount   (recredit)
    returned              disbursed   -amount   payable/<c>  +amount   (recredit)

At batch post the payout transaction moves every payout to in transit; a payout
opens ``pending``, or ``held`` when its creator has no payout method or no
accepted tax form. Held money stays in transit: it is neither sent nor carried
into the next batch until the hold is lifted (back to ``pending``) or the
payout is canceled (re-credited). Money put back on ``payable/<c>`` is what the
next batch carries in, so it is carried exactly once. A batch can be superseded
only while every payout of it is pending or held: they are closed ``canceled``
(reason ``superseded``) without a transaction of their own, since the batch's
reversal already returns the money to the payables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contract import schema as S
from contract.errors import ResidualsError
from ledger.store import models as M
from ledger.store.bulk import insert_frame
from ledger.store.posting import (
    PAYABLE_PREFIX,
    TRANSIT_CODE,
    _apply_balance_deltas,
    _fixed_account,
)
from ledger.store.read import frame

DISBURSED_CODE = "disbursed"

TRANSITIONS: Mapping[str, tuple[str, ...]] = {
    M.PENDING: (M.SUBMITTED, M.HELD, M.CANCELED),
    M.HELD: (M.PENDING, M.CANCELED),
    M.SUBMITTED: (M.PAID, M.FAILED, M.CANCELED),
    M.PAID: (M.RETURNED,),
}
"""The only state changes a payout may make; ``pending`` and ``held`` are the states a
payout opens in. Every other change is out of order."""
OPENING = (M.PENDING, M.HELD)

MOVES: Mapping[str, tuple[str, str, str]] = {
    M.PAID: (M.DISBURSEMENT, TRANSIT_CODE, DISBURSED_CODE),
    M.FAILED: (M.RECREDIT, TRANSIT_CODE, PAYABLE_PREFIX),
    M.CANCELED: (M.RECREDIT, TRANSIT_CODE, PAYABLE_PREFIX),
    M.RETURNED: (M.RECREDIT, DISBURSED_CODE, PAYABLE_PREFIX),
}
"""Money a state moves: (transaction kind, account credited, account debited); a debit of
``payable/`` is the payout's creator's payable."""

EVENT_COLUMNS = ("payout_id", "state", "reason", "provider_reference", "failure_code",
                 "occurred_at", "source")
"""What a caller gives :func:`apply_events`, one row per payout."""


def payout_id(batch_id: str, creator_id: str) -> str:
    """The stable id of a creator's payout in a batch: ``po_`` and 24 hex digits of
    sha256(batch id, NUL, creator id); the same in every export, short enough for a
    provider's reference field (PayPal's customer id, Stripe's idempotency key)."""
    digest = hashlib.sha256(f"{batch_id}\x00{creator_id}".encode()).hexdigest()
    return f"po_{digest[:24]}"


def payout_id_expr(batch: pl.Expr, creator: pl.Expr) -> pl.Expr:
    """:func:`payout_id` over columns (one hash per row, vectorised by polars)."""
    return pl.concat_str(batch, pl.lit("\x00"), creator).map_batches(
        lambda s: pl.Series([payout_id(*v.split("\x00", 1)) for v in s.to_list()],
                            dtype=pl.String), return_dtype=pl.String)


def check_transition(payout: str, old: str | None, new: str) -> None:
    """Refuse a state change that :data:`TRANSITIONS` does not allow.

    Raises
    ------
    ResidualsError
        ``payout po_...: pending -> paid is out of order (from pending: submitted,
        held, canceled)``.
    """
    if old is None:
        if new not in OPENING:
            raise ResidualsError(f"payout {payout}: it opens pending or held, not {new}")
        return
    allowed_ = TRANSITIONS.get(old, ())
    if new not in allowed_:
        nexts = ", ".join(allowed_) if allowed_ else f"none, {old} is final"
        raise ResidualsError(f"payout {payout}: {old} -> {new} is out of order "
                             f"(from {old}: {nexts})")


def allowed() -> pl.DataFrame:
    """:data:`TRANSITIONS` as a frame (``from_state``, ``state``) for set-based checks."""
    pairs = [(a, b) for a, nexts in TRANSITIONS.items() for b in nexts]
    return pl.DataFrame(pairs, schema={"from_state": pl.String, "state": pl.String},
                        orient="row")


STATE_SCHEMA: dict[str, pl.DataType] = {
    "payout_id": pl.String(), S.BATCH_ID: pl.String(), S.CREATOR_ID: pl.String(),
    S.AMOUNT_MINOR: pl.Int64(), S.CURRENCY: pl.String(), "seq": pl.Int64(),
    "state": pl.String(), "reason": pl.String(),
}


def current_states(session: Session, *, batch_id: str | None = None,
                   creator_id: str | None = None) -> pl.DataFrame:
    """Every payout (of a batch, of a creator) with its current state: the last event."""
    p, e = M.Payout, M.PayoutEvent
    last = (select(e.payout_id, func.max(e.seq).label("seq")).group_by(e.payout_id)
            .subquery())
    stmt = (select(p.payout_id, p.batch_id, p.creator_id, p.amount_minor, p.currency,
                   e.seq, e.state, e.reason)
            .join(last, last.c.payout_id == p.payout_id)
            .join(e, (e.payout_id == p.payout_id) & (e.seq == last.c.seq)))
    if batch_id is not None:
        stmt = stmt.where(p.batch_id == batch_id)
    if creator_id is not None:
        stmt = stmt.where(p.creator_id == creator_id)
    return frame(session, stmt.order_by(p.batch_id, p.creator_id), STATE_SCHEMA)


def payout_history(session: Session) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every payout (``payout_id``, ``batch_id``, ``creator_id``, ``amount_minor``,
    ``currency``) and every event (``payout_id``, ``seq``, ``state``, ``reason``), each
    read in one scan, for :func:`latest_states` (no join planned on the server)."""
    p, e = M.Payout, M.PayoutEvent
    payouts = frame(session, select(p.payout_id, p.batch_id, p.creator_id, p.amount_minor,
                                    p.currency),
                    {k: STATE_SCHEMA[k] for k in ("payout_id", S.BATCH_ID, S.CREATOR_ID,
                                                  S.AMOUNT_MINOR, S.CURRENCY)})
    events = frame(session, select(e.payout_id, e.seq, e.state, e.reason),
                   {k: STATE_SCHEMA[k] for k in ("payout_id", "seq", "state", "reason")})
    return payouts, events


def latest_states(payouts: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """:func:`current_states` of every payout from :func:`payout_history`'s frames: each
    payout with its event of the highest ``seq``. Pure."""
    last = events.filter(pl.col("seq") == pl.col("seq").max().over("payout_id"))
    return payouts.join(last, on="payout_id", how="inner").select(list(STATE_SCHEMA)).sort(
        S.BATCH_ID, S.CREATOR_ID)


def profile_holds(session: Session, creator_ids: pl.Series) -> pl.DataFrame:
    """``creator_id``, ``reason``: the hold reasons (comma-separated, in the order of
    :data:`~ledger.store.models.HOLD_REASONS`) of each creator whose current profile
    lacks a payout method or an accepted tax form; creators without holds are absent."""
    cp = M.CreatorProfile
    newest = select(cp.creator_id, func.max(cp.id).label("id")).group_by(cp.creator_id).subquery()
    profiles = frame(session, select(cp.creator_id, cp.payout_method, cp.tax_form)
                     .join(newest, newest.c.id == cp.id),
                     {S.CREATOR_ID: pl.String(), "payout_method": pl.String(),
                      "tax_form": pl.String()})
    joined = pl.DataFrame({S.CREATOR_ID: creator_ids.cast(pl.String)}).join(
        profiles, on=S.CREATOR_ID, how="left")
    return hold_reasons(joined)


def hold_reasons(profiles: pl.DataFrame) -> pl.DataFrame:
    """``creator_id``, ``reason`` of the profiles (``payout_method``, ``tax_form``; null:
    not set) that hold payouts: the one rule for holds."""
    no_method = pl.col("payout_method").is_null() | (pl.col("payout_method") == "")
    no_tax = pl.col("tax_form").is_null() | (pl.col("tax_form") != "accepted")
    reasons = pl.concat_str(
        pl.when(no_method).then(pl.lit(M.NO_PAYOUT_METHOD)),
        pl.when(no_tax).then(pl.lit(M.TAX_FORM_MISSING)), separator=",", ignore_nulls=True)
    return profiles.select(S.CREATOR_ID, reasons.alias("reason")).filter(
        pl.col("reason") != "")


def open_payouts(session: Session, batch_id: str, lines: pl.DataFrame, currency: str) -> int:
    """Create the payouts of a batch being posted (one per line with ``paid_minor`` > 0),
    each ``pending`` or ``held`` with its reasons; returns how many."""
    paid = lines.filter(pl.col(S.PAID_MINOR) > 0).select(S.CREATOR_ID, S.PAID_MINOR)
    if paid.height == 0:
        return 0
    rows = paid.select(
        payout_id_expr(pl.lit(batch_id), pl.col(S.CREATOR_ID)).alias("payout_id"),
        pl.lit(batch_id).alias(S.BATCH_ID), S.CREATOR_ID,
        pl.col(S.PAID_MINOR).alias(S.AMOUNT_MINOR), pl.lit(currency).alias(S.CURRENCY))
    insert_frame(session, M.Payout.__tablename__, rows)
    holds = profile_holds(session, rows[S.CREATOR_ID])
    events = rows.join(holds, on=S.CREATOR_ID, how="left").select(
        "payout_id", pl.lit(1, pl.Int64).alias("seq"),
        pl.when(pl.col("reason").is_null()).then(pl.lit(M.PENDING)).otherwise(pl.lit(M.HELD))
        .alias("state"), "reason", pl.lit("batch").alias("source"))
    # in payout_id order: consecutive rows update neighbouring pages of the indexes on
    # payout_id (in creator order they would touch a random page per row)
    insert_frame(session, M.PayoutEvent.__tablename__, events.sort("payout_id"))
    return rows.height


def close_superseded(session: Session, batch_id: str) -> int:
    """Close the payouts of a batch about to be superseded: each must be pending or held
    (nothing sent, nothing settled), and gets a ``canceled`` event with reason
    ``superseded`` and no transaction (the batch's reversal returns the money).

    Raises
    ------
    ResidualsError
        A payout of the batch has been exported or settled: superseding it now
        could pay its creator twice.
    """
    states = current_states(session, batch_id=batch_id)
    gone = states.filter(~pl.col("state").is_in(OPENING))
    if gone.height:
        r = gone.row(0, named=True)
        raise ResidualsError(
            f"batch {batch_id[:12]}: payout {r['payout_id']} of creator {r[S.CREATOR_ID]!r} "
            f"is {r['state']} ({gone.height} payout(s) past pending or held); a batch whose "
            "payouts were exported or settled cannot be superseded")
    events = states.select("payout_id", (pl.col("seq") + 1).alias("seq"),
                           pl.lit(M.CANCELED).alias("state"),
                           pl.lit(M.SUPERSEDED).alias("reason"),
                           pl.lit("supersede").alias("source"))
    insert_frame(session, M.PayoutEvent.__tablename__, events)
    return events.height


def _timestamps(values: pl.Series, pg: bool) -> pl.Series:
    """UTC timestamps as text each backend stores as such (naive UTC on SQLite)."""
    fmt = "%Y-%m-%d %H:%M:%S%.6f" + ("+00" if pg else "")
    return values.dt.convert_time_zone("UTC").dt.strftime(fmt)


def _next_transaction_ids(session: Session, n: int) -> list[int]:
    """``n`` fresh transaction ids, under the caller's write lock."""
    base = int(session.execute(select(func.coalesce(func.max(M.Transaction.id), 0)))
               .scalar_one())
    return list(range(base + 1, base + 1 + n))


def _payables_of(session: Session, creators: pl.Series) -> pl.DataFrame:
    """``creator_id``, ``payable``: the payable account of each of ``creators``; every
    payable account when they are many (one scan, no list of parameters)."""
    a = M.Account
    stmt = select(a.creator_id, a.id).where(a.kind == M.CREATOR_PAYABLE)
    if creators.len() <= 1000:
        stmt = stmt.where(a.creator_id.in_(creators.unique().to_list()))
    return frame(session, stmt, {S.CREATOR_ID: pl.String(), "payable": pl.Int64()})


def _post_moves(session: Session, moves: pl.DataFrame) -> pl.DataFrame:
    """Post the money of ``moves`` (``payout_id``, ``state``, ``batch_id``, ``creator_id``,
    ``amount_minor``, ``currency``): one transaction per (batch, state) among them, whose
    entries are the payouts' legs summed per account (a fixed account's leg once, each
    creator's payable once); returns ``payout_id`` -> ``transaction_id``."""
    conn = session.connection()
    groups = moves.select(S.BATCH_ID, "state", S.CURRENCY).unique().sort(S.BATCH_ID, "state")
    if groups.select(S.BATCH_ID, "state").is_duplicated().any():
        raise ResidualsError("payout moves: one batch's payouts of one state in two currencies")
    kinds = pl.DataFrame([(s, k, c, d) for s, (k, c, d) in MOVES.items()],
                         schema=["state", "kind", "credit", "debit"], orient="row")
    groups = groups.with_columns(pl.Series("transaction_id", _next_transaction_ids(
        session, groups.height), dtype=pl.Int64)).join(kinds, on="state", how="left")
    counts = moves.group_by(S.BATCH_ID, "state").len()
    insert_frame(session, M.Transaction.__tablename__, groups.join(
        counts, on=[S.BATCH_ID, "state"]).sort("transaction_id").select(
        pl.col("transaction_id").alias("id"), "kind", S.BATCH_ID,
        pl.format("{} payout(s) {}", pl.col("len"), pl.col("state")).alias("memo")))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('transactions', 'id'), "
                             "(SELECT max(id) FROM transactions))")
    moves = moves.join(groups.drop(S.CURRENCY), on=[S.BATCH_ID, "state"], how="left")
    entries = _move_entries(session, moves)
    insert_frame(session, M.Entry.__tablename__, entries)
    insert_frame(session, M.TransactionSeal.__tablename__, groups.select("transaction_id"))
    _apply_balance_deltas(session, entries.select(
        "account_id", S.CURRENCY, pl.col(S.AMOUNT_MINOR).alias("delta")))
    return moves.select("payout_id", "transaction_id")


def _move_entries(session: Session, moves: pl.DataFrame) -> pl.DataFrame:
    """The entries of :func:`_post_moves`' transactions: each payout's two legs (its
    amount off the ``credit`` account, onto the ``debit`` one), summed per
    (transaction, account, currency), in transaction then account order."""
    fixed = {code: _fixed_account(session, code, kind) for code, kind in
             ((TRANSIT_CODE, M.PAYOUTS_IN_TRANSIT), (DISBURSED_CODE, M.DISBURSED))}
    to_payable = moves.filter((pl.col("credit") == PAYABLE_PREFIX)
                              | (pl.col("debit") == PAYABLE_PREFIX))
    moves = moves.join(_payables_of(session, to_payable[S.CREATOR_ID]), on=S.CREATOR_ID,
                       how="left")

    def account(col: str) -> pl.Expr:
        return (pl.when(pl.col(col) == PAYABLE_PREFIX).then(pl.col("payable"))
                .otherwise(pl.col(col).replace_strict(fixed, default=None,
                                                      return_dtype=pl.Int64)))

    legs = pl.concat([
        moves.select("transaction_id", account("credit").alias("account_id"), S.CURRENCY,
                     (-pl.col(S.AMOUNT_MINOR)).alias(S.AMOUNT_MINOR)),
        moves.select("transaction_id", account("debit").alias("account_id"), S.CURRENCY,
                     S.AMOUNT_MINOR),
    ])
    return legs.group_by("transaction_id", "account_id", S.CURRENCY).agg(
        pl.col(S.AMOUNT_MINOR).sum()).sort("transaction_id", "account_id").select(
        "transaction_id", "account_id", S.AMOUNT_MINOR, S.CURRENCY)


def apply_events(session: Session, events: pl.DataFrame, *, checked: bool = False,
                 known: pl.DataFrame | None = None) -> int:
    """Record one state change per payout (:data:`EVENT_COLUMNS`; ``occurred_at`` a UTC
    datetime or null) and post the money each moves; returns how many.

    Each change is checked against the payout's current state unless the caller
    has done so set-based (``checked``). ``known``: the current states
    (:func:`current_states`) of at least these payouts, when the caller has them
    already; read from the ledger otherwise. Runs in the caller's write-locked
    transaction.

    Raises
    ------
    ResidualsError
        An unknown payout, a payout named twice, or a change out of order.
    """
    if events.height == 0:
        return 0
    dup = events.filter(pl.col("payout_id").is_duplicated())
    if dup.height:
        raise ResidualsError(f"events: payout {dup['payout_id'][0]} appears twice")
    if known is None:
        known = current_states(session) if events.height > 1000 else _states_of(
            session, events["payout_id"].to_list())
    rows = events.join(known.rename({"state": "from_state", "reason": "from_reason"}),
                       on="payout_id", how="left")
    missing = rows.filter(pl.col("seq").is_null())
    if missing.height:
        raise ResidualsError(f"payout_id={missing['payout_id'][0]!r}: no such payout")
    if not checked:
        bad = rows.join(allowed(), on=["from_state", "state"], how="anti")
        if bad.height:
            r = bad.row(0, named=True)
            check_transition(r["payout_id"], r["from_state"], r["state"])
    money = rows.filter(pl.col("state").is_in(list(MOVES)))
    tx = _post_moves(session, money.select("payout_id", "state", S.BATCH_ID, S.CREATOR_ID,
                                           S.AMOUNT_MINOR, S.CURRENCY)) if money.height \
        else pl.DataFrame(schema={"payout_id": pl.String, "transaction_id": pl.Int64})
    pg = session.connection().dialect.name == "postgresql"
    out = rows.join(tx, on="payout_id", how="left").select(
        "payout_id", (pl.col("seq") + 1).alias("seq"), "state", "reason",
        "provider_reference", "failure_code",
        pl.Series("occurred_at", _timestamps(rows["occurred_at"], pg)), "source",
        "transaction_id")
    insert_frame(session, M.PayoutEvent.__tablename__, out.sort("payout_id"))
    return out.height


def _states_of(session: Session, ids: list[str]) -> pl.DataFrame:
    p, e = M.Payout, M.PayoutEvent
    last = (select(e.payout_id, func.max(e.seq).label("seq")).where(e.payout_id.in_(ids))
            .group_by(e.payout_id).subquery())
    return frame(session, select(p.payout_id, p.batch_id, p.creator_id, p.amount_minor,
                                 p.currency, e.seq, e.state, e.reason)
                 .join(last, last.c.payout_id == p.payout_id)
                 .join(e, (e.payout_id == p.payout_id) & (e.seq == last.c.seq)), STATE_SCHEMA)


def event_frame(payout_ids: list[str], state: str, *, source: str, reason: str | None = None,
                occurred_at: dt.datetime | None = None) -> pl.DataFrame:
    """Events of :data:`EVENT_COLUMNS` moving each payout to ``state``."""
    n = len(payout_ids)
    return pl.DataFrame({
        "payout_id": payout_ids, "state": [state] * n, "reason": [reason] * n,
        "provider_reference": [None] * n, "failure_code": [None] * n,
        "occurred_at": [occurred_at] * n, "source": [source] * n,
    }, schema={"payout_id": pl.String, "state": pl.String, "reason": pl.String,
               "provider_reference": pl.String, "failure_code": pl.String,
               "occurred_at": pl.Datetime("us", "UTC"), "source": pl.String})


def transition(session: Session, payout: str, state: str, *, source: str,
               reason: str | None = None) -> None:
    """Move one payout to ``state`` (checked against :data:`TRANSITIONS`)."""
    apply_events(session, event_frame([payout], state, source=source, reason=reason))


def release_or_hold(session: Session, creator_id: str, source: str) -> tuple[int, int]:
    """After a creator's profile changed: their held payouts whose reasons are all
    resolved go back to ``pending``; their pending payouts that now lack something
    become ``held``. Returns (released, held)."""
    states = current_states(session, creator_id=creator_id)
    holds = profile_holds(session, pl.Series([creator_id]))
    reason = holds["reason"][0] if holds.height else None
    profile_only = set(M.HOLD_REASONS) - {M.UNDER_DISPUTE}
    held = states.filter(pl.col("state") == M.HELD)
    release = [pid for pid, why in held.select("payout_id", "reason").iter_rows()
               if reason is None and set((why or "").split(",")) <= profile_only]
    hold = (states.filter(pl.col("state") == M.PENDING)["payout_id"].to_list()
            if reason is not None else [])
    events = [event_frame(release, M.PENDING, source=source, reason="profile complete"),
              event_frame(hold, M.HELD, source=source, reason=reason)]
    apply_events(session, pl.concat(events))
    return len(release), len(hold)

