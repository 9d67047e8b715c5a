"""Read helpers over the ledger store, returning polars frames.

Rule: readers take a caller-owned ``Session`` (they never commit) and return
frames whose column names come from :mod:`contract.schema`; money columns are
integer minor units. A batch is *superseded* when a later batch names it in
``supersedes_id``; statements and clip earnings list only batches that stand
unless asked otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import polars as pl
from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session, aliased

from contract import schema as S
from ledger.store import models as M


_PLAIN = (pl.String, pl.Int64, pl.Float64)
FETCH_ROWS = 100_000
"""Rows fetched per round trip when reading large frames (bounds memory)."""


def frame(session: Session, stmt: Select[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Run ``stmt`` and return its rows as a frame with ``schema`` (in select order).

    On PostgreSQL, when every column is a string or an integer, the rows come as
    one ``COPY (stmt) TO STDOUT`` in CSV parsed by polars (no Python object per
    row: :func:`_copy_frame`). Otherwise, when every column is a string,
    integer or float, rows come straight from the DB-API cursor in chunks of
    :data:`FETCH_ROWS` (no per-row SQLAlchemy processing, 3x faster; at most
    one chunk of Python tuples alive); other types go through SQLAlchemy's
    result processing.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql" and all(isinstance(t, _COPIED)
                                                 for t in schema.values()):
        return _copy_frame(conn, stmt, schema)
    result = conn.execute(stmt)
    if not all(isinstance(t, _PLAIN) for t in schema.values()):
        rows: Sequence[Any] = result.all()
        return pl.DataFrame(rows if rows else None, schema=schema, orient="row")
    cursor = result.cursor
    parts = []
    while True:  # chunks bound the Python objects alive at once
        rows = cursor.fetchmany(FETCH_ROWS)
        if not rows:
            break
        parts.append(pl.DataFrame(rows, schema=schema, orient="row"))
    result.close()
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


RUN_CACHE = "ledger.store.run_cache"
"""Key of ``session.info`` under which a reader that asks for it keeps frames for one run."""


def cached(session: Session, key: str, load: Callable[[Session], pl.DataFrame]
           ) -> pl.DataFrame:
    """``load(session)``, read once per run when the caller opened a run cache (``verify``
    does: several of its checks read the same lines, payouts, events and manifests);
    without one, read on every call. Frames are immutable, so sharing is safe."""
    store = session.info.get(RUN_CACHE)
    if store is None:
        return load(session)
    if key not in store:
        store[key] = load(session)
    return store[key]


_COPIED = (pl.String, pl.Int64)


def _copy_frame(conn: Any, stmt: Select[Any], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """:func:`frame` on PostgreSQL through ``COPY ... TO STDOUT (FORMAT csv, FORCE_QUOTE *)``:
    every non-null value is quoted, a null is an unquoted empty field, so the empty
    string and null stay apart; the parameters are bound by psycopg."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    buf = io.BytesIO()
    with conn.connection.driver_connection.cursor() as cur:
        with cur.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)",
                      dict(compiled.params)) as copy:
            for block in copy:
                buf.write(block)
    if buf.tell() == 0:
        return pl.DataFrame(schema=schema)
    buf.seek(0)
    return pl.read_csv(buf, has_header=False, schema=dict(schema))


def _superseded_ids() -> Any:
    newer = aliased(M.Batch)
    return select(newer.supersedes_id).where(newer.supersedes_id.is_not(None))


BATCH_SCHEMA: dict[str, pl.DataType] = {
    S.BATCH_ID: pl.String(), S.SEQ: pl.Int64(), S.PERIOD: pl.String(), S.REVISION: pl.Int64(),
    S.SUPERSEDES_ID: pl.String(), S.SUPERSEDED: pl.Boolean(), S.POLICY_NAME: pl.String(),
    S.POLICY_HASH: pl.String(), S.CURRENCY: pl.String(), S.POOL_MINOR: pl.Int64(),
    S.WITHHELD_MINOR: pl.Int64(), S.PAID_MINOR: pl.Int64(), S.CREATORS_PAID: pl.Int64(),
    S.PREV_HASH: pl.String(), S.BATCH_HASH: pl.String(), S.POSTED_AT: pl.Datetime("us"),
}


def batches(session: Session) -> pl.DataFrame:
    """Every batch in chain order (``seq``), with whether a later batch superseded it."""
    b = M.Batch
    stmt = select(
        b.batch_id, b.seq, b.period, b.revision, b.supersedes_id,
        b.batch_id.in_(_superseded_ids()), b.policy_name, b.policy_hash, b.currency,
        b.pool_minor, b.withheld_minor, b.paid_minor, b.creators_paid, b.prev_hash,
        b.batch_hash, b.created_at,
    ).order_by(b.seq)
    return frame(session, stmt, BATCH_SCHEMA)


STATEMENT_SCHEMA: dict[str, pl.DataType] = {
    S.PERIOD: pl.String(), S.BATCH_ID: pl.String(), S.BATCH_HASH: pl.String(),
    S.REVISION: pl.Int64(), S.SUPERSEDED: pl.Boolean(), S.CURRENCY: pl.String(),
    S.SHARE: pl.Float64(), S.ALLOCATED_MINOR: pl.Int64(), S.CARRIED_IN_MINOR: pl.Int64(),
    S.PAID_MINOR: pl.Int64(), S.CARRIED_OUT_MINOR: pl.Int64(), S.ELIGIBLE: pl.Boolean(),
    S.REASON: pl.String(), S.POSTED_AT: pl.Datetime("us"),
}


def creator_statement(
    session: Session,
    creator_id: str,
    period: str | None = None,
    *,
    include_superseded: bool = False,
) -> pl.DataFrame:
    """One creator's lines, one per batch: earned (``allocated_minor``), carried in, paid,
    carried out, with the batch hash to check against the published chain.

    Ordered by chain position. Superseded batches are left out unless
    ``include_superseded``.
    """
    st, b = M.Statement, M.Batch
    superseded = b.batch_id.in_(_superseded_ids())
    stmt = (
        select(st.creator_id, b.period, b.batch_id, b.batch_hash, b.revision, superseded,
               b.currency, st.share, st.allocated_minor, st.carried_in_minor, st.paid_minor,
               st.carried_out_minor, st.eligible, st.reason, b.created_at)
        .join(b, b.batch_id == st.batch_id)
        .where(st.creator_id == creator_id)
        .order_by(b.seq)
    )
    if period is not None:
        stmt = stmt.where(b.period == period)
    if not include_superseded:
        stmt = stmt.where(~superseded)
    out = frame(session, stmt, {S.CREATOR_ID: pl.String(), **STATEMENT_SCHEMA})
    return out.drop(S.CREATOR_ID)


CLIP_SCHEMA: dict[str, pl.DataType] = {
    S.PERIOD: pl.String(), S.BATCH_ID: pl.String(), S.CLIP_ID: pl.String(),
    S.WEIGHT: pl.Float64(), S.SHARE_OF_CREATOR: pl.Float64(),
    S.EARNED_MINOR_EST: pl.Float64(), S.CONFIDENCE: pl.Float64(),
}


def creator_clip_earnings(
    session: Session, creator_id: str, period: str | None = None
) -> pl.DataFrame:
    """The clips that earned a creator's allocation in each standing batch.

    ``weight`` is the clip's summed attribution weight over the period's
    generations; ``share_of_creator`` its fraction of the creator's total;
    ``earned_minor_est`` = allocated × that fraction, an *explanation* in
    fractional minor units (the money of record is the statement's integer
    ``allocated_minor``, which policy rules such as caps may move away from
    pure attribution). Sorted by batch, then weight descending.
    """
    c, st, b = M.BatchClipCredit, M.Statement, M.Batch
    stmt = (
        select(b.period, b.batch_id, c.clip_id, c.weight, st.allocated_minor, c.confidence)
        .join(b, b.batch_id == c.batch_id)
        .join(st, and_(st.batch_id == c.batch_id, st.creator_id == c.creator_id))
        .where(c.creator_id == creator_id, ~b.batch_id.in_(_superseded_ids()))
        .order_by(b.seq, c.weight.desc(), c.clip_id)
    )
    if period is not None:
        stmt = stmt.where(b.period == period)
    raw = frame(session, stmt, {S.PERIOD: pl.String(), S.BATCH_ID: pl.String(),
                                S.CLIP_ID: pl.String(), S.WEIGHT: pl.Float64(),
                                S.ALLOCATED_MINOR: pl.Int64(), S.CONFIDENCE: pl.Float64()})
    total = pl.col(S.WEIGHT).sum().over(S.BATCH_ID)
    share = pl.when(total > 0).then(pl.col(S.WEIGHT) / total).otherwise(0.0)
    return raw.with_columns(share.alias(S.SHARE_OF_CREATOR)).with_columns(
        (pl.col(S.ALLOCATED_MINOR) * pl.col(S.SHARE_OF_CREATOR)).alias(S.EARNED_MINOR_EST)
    ).select(list(CLIP_SCHEMA))


LINE_SCHEMA: dict[str, pl.DataType] = {
    S.CREATOR_ID: pl.String(), S.ALLOCATED_MINOR: pl.Int64(), S.CARRIED_IN_MINOR: pl.Int64(),
    S.PAID_MINOR: pl.Int64(), S.CARRIED_OUT_MINOR: pl.Int64(), S.ELIGIBLE: pl.Boolean(),
}


def batch_lines(session: Session, batch_id: str) -> pl.DataFrame:
    """Every creator's statement line in one batch (earned, carried in, paid, carried
    out, eligible), sorted by creator id. Staff views and the posting of a
    superseding batch read this; a creator's own view is :func:`creator_statement`."""
    st = M.Statement
    stmt = (select(st.creator_id, st.allocated_minor, st.carried_in_minor, st.paid_minor,
                   st.carried_out_minor, st.eligible)
            .where(st.batch_id == batch_id).order_by(st.creator_id))
    return frame(session, stmt, LINE_SCHEMA)


def display_names(session: Session) -> pl.DataFrame:
    """``creator_id`` and ``display_name`` of every creator in the ledger."""
    c = M.Creator
    return frame(session, select(c.creator_id, c.display_name),
                 {S.CREATOR_ID: pl.String(), S.DISPLAY_NAME: pl.String()})


PAYOUT_SCHEMA: dict[str, pl.DataType] = {
    S.CREATOR_ID: pl.String(), S.AMOUNT_MINOR: pl.Int64(), S.CURRENCY: pl.String(),
    S.REFERENCE: pl.String(),
}


def payout_reference(batch_id: str) -> pl.Expr:
    """The bank reference of each payout line: ``RSD-<first 12 of batch id>-<creator_id>``."""
    return pl.concat_str(pl.lit(f"RSD-{batch_id[:12]}-"), pl.col(S.CREATOR_ID))


def payouts(session: Session, batch_id: str) -> pl.DataFrame:
    """The payout lines of a batch (creators paid > 0), sorted by creator id."""
    st, b = M.Statement, M.Batch
    stmt = (
        select(st.creator_id, st.paid_minor, b.currency)
        .join(b, b.batch_id == st.batch_id)
        .where(st.batch_id == batch_id, st.paid_minor > 0)
        .order_by(st.creator_id)
    )
    raw = frame(session, stmt, {S.CREATOR_ID: pl.String(), S.AMOUNT_MINOR: pl.Int64(),
                                S.CURRENCY: pl.String()})
    return raw.with_columns(payout_reference(batch_id).alias(S.REFERENCE))


BALANCE_SCHEMA: dict[str, pl.DataType] = {
    S.ACCOUNT_CODE: pl.String(), S.ACCOUNT_KIND: pl.String(), S.CREATOR_ID: pl.String(),
    S.CURRENCY: pl.String(), S.BALANCE_MINOR: pl.Int64(),
}


def balances(session: Session) -> pl.DataFrame:
    """Stored balance of every account and currency (positive = debit balance).

    A creator payable's balance is what is owed to that creator and not yet
    paid out (carried forward).
    """
    a, bal = M.Account, M.Balance
    stmt = (
        select(a.code, a.kind, a.creator_id, bal.currency, bal.balance_minor)
        .join(bal, bal.account_id == a.id)
        .order_by(a.code, bal.currency)
    )
    return frame(session, stmt, BALANCE_SCHEMA)


class ChainHead(NamedTuple):
    """The newest batch of the hash chain: its period and hash (what is published)."""

    period: str
    batch_hash: str
    seq: int


def chain_head(session: Session) -> ChainHead | None:
    """The newest batch's period and hash, or None for an empty ledger.

    Anyone who notes it can later run ``residuals ledger verify --expect-head HASH``
    to check that the history up to it was neither deleted nor rewritten.
    """
    b = M.Batch
    row = session.execute(select(b.period, b.batch_hash, b.seq).order_by(b.seq.desc())
                          .limit(1)).first()
    return ChainHead(str(row[0]), str(row[1]), int(row[2])) if row is not None else None


def entry_count(session: Session) -> int:
    """Number of entries in the ledger."""
    return int(session.execute(select(func.count()).select_from(M.Entry)).scalar_one())


def creator_profile(session: Session, creator_id: str) -> tuple[str, int, str | None]:
    """A creator's display name (the id when the ledger does not know them) and what the
    platform owes them now: the creator payable's balance and its currency (0, ``None``
    before any batch)."""
    creator = session.get(M.Creator, creator_id)
    bal = session.execute(
        select(M.Balance.balance_minor, M.Balance.currency)
        .join(M.Account, M.Account.id == M.Balance.account_id)
        .where(M.Account.creator_id == creator_id, M.Account.kind == M.CREATOR_PAYABLE)
    ).first()
    name = creator.display_name if creator is not None else creator_id
    return name, int(bal[0]) if bal else 0, bal[1] if bal else None


CARRIED_OUT_TOTAL = "carried_out_total"
"""Column of :func:`carried_out_totals`: what a batch carried forward to later periods."""


def carried_out_totals(session: Session) -> pl.DataFrame:
    """``batch_id`` and the total its statements carried forward (``carried_out_total``)."""
    st = M.Statement
    stmt = select(st.batch_id, func.coalesce(func.sum(st.carried_out_minor), 0)).group_by(
        st.batch_id)
    return frame(session, stmt, {S.BATCH_ID: pl.String(), CARRIED_OUT_TOTAL: pl.Int64()})


def batch_manifest(session: Session, batch_id: str) -> dict[str, Any]:
    """The manifest recorded with a batch (``{}`` for an unknown batch id)."""
    batch = session.get(M.Batch, batch_id)
    return dict(batch.manifest) if batch is not None else {}


def carried_in(session: Session, batch_id: str) -> pl.DataFrame:
    """``creator_id`` and ``carried_minor`` of every creator who brought a balance into a
    batch (the carried-in amounts its allocation started from)."""
    st = M.Statement
    return frame(session, select(st.creator_id, st.carried_in_minor)
                 .where(st.batch_id == batch_id, st.carried_in_minor > 0),
                 {S.CREATOR_ID: pl.String(), S.CARRIED_MINOR: pl.Int64()})


CREATOR_PAYOUT_SCHEMA: dict[str, pl.DataType] = {
    "payout_id": pl.String(), S.PERIOD: pl.String(), S.SEQ: pl.Int64(),
    S.AMOUNT_MINOR: pl.Int64(), S.CURRENCY: pl.String(), "state": pl.String(),
    "reason": pl.String(), "failure_code": pl.String(), "provider_reference": pl.String(),
    "occurred_at": pl.Datetime("us", "UTC"), "recorded_at": pl.Datetime("us", "UTC"),
}


def creator_payouts(session: Session, creator_id: str) -> pl.DataFrame:
    """Every payout of one creator with its current state (the last event: its reason,
    the provider's failure code and reference, when it happened and was recorded) and
    the period of its batch; newest batch first."""
    p, e, b = M.Payout, M.PayoutEvent, M.Batch
    last = (select(e.payout_id, func.max(e.seq).label("seq")).join(p, p.payout_id == e.payout_id)
            .where(p.creator_id == creator_id).group_by(e.payout_id).subquery())
    stmt = (select(p.payout_id, b.period, b.seq, p.amount_minor, p.currency, e.state, e.reason,
                   e.failure_code, e.provider_reference, e.occurred_at, e.recorded_at)
            .join(last, last.c.payout_id == p.payout_id)
            .join(e, (e.payout_id == p.payout_id) & (e.seq == last.c.seq))
            .join(b, b.batch_id == p.batch_id)
            .where(p.creator_id == creator_id).order_by(b.seq.desc()))
    rows = session.execute(stmt).all()
    utc = [tuple(_as_utc(v) if i >= 9 else v for i, v in enumerate(r)) for r in rows]
    return pl.DataFrame(utc or None, schema=CREATOR_PAYOUT_SCHEMA, orient="row")


def _as_utc(value: Any) -> Any:
    """An aware UTC datetime (SQLite hands back naive UTC values, PostgreSQL aware ones)."""
    import datetime as dt

    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
