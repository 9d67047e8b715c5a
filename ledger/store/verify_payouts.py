"""What ``ledger verify`` checks about payouts, their events and the money they moved.

Rule: each function here recomputes one claim from the raw rows and returns
``(messages, total)`` (the first messages and how many problems there are);
:mod:`ledger.store.verify` turns them into violations. Nothing trusts the
triggers or the unique indexes:

- every statement line that paid something has exactly one payout, whose id is
  derived from (batch, creator), whose amount is the line's ``paid_minor`` and
  whose currency is the batch's; no payout without such a line;
- every payout's events run ``seq`` 1..n, open ``pending`` or ``held`` and then
  follow :data:`ledger.store.payout_states.TRANSITIONS`; a superseded batch's payouts
  never left pending or held and end ``canceled`` (reason ``superseded``);
- each event that moves money (:data:`ledger.store.payout_states.MOVES`) names exactly
  one transaction of its kind and batch; the entries of every such transaction,
  summed per account, are exactly the legs of the events naming it (each
  event's amount from and to the right accounts: an event naming a transaction
  that did not move its money shows as a difference); no other event names a
  transaction; no disbursement or re-credit transaction is left without an event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from contract import schema as S
from ledger.store import models as M
from ledger.store.payout_states import DISBURSED_CODE, MOVES, OPENING, allowed, payout_id_expr
from ledger.store.posting import PAYABLE_PREFIX, TRANSIT_CODE
from ledger.store.read import cached, frame

LIMIT = 20

Found = tuple[list[str], int]


def _payouts(session: Session) -> pl.DataFrame:
    """Every payout, with ``superseded`` (its batch is superseded) when true, else null."""
    p, b = M.Payout, M.Batch
    return cached(session, "payouts", lambda s: frame(
        s, select(p.payout_id, p.batch_id, p.creator_id, p.amount_minor, p.currency),
        {"payout_id": pl.String(), S.BATCH_ID: pl.String(), S.CREATOR_ID: pl.String(),
         S.AMOUNT_MINOR: pl.Int64(), S.CURRENCY: pl.String()}).join(
        frame(s, select(b.supersedes_id).where(b.supersedes_id.is_not(None)),
              {S.BATCH_ID: pl.String()}).with_columns(pl.lit(True).alias("superseded")),
        on=S.BATCH_ID, how="left"))


def _events(session: Session) -> pl.DataFrame:
    e = M.PayoutEvent
    return cached(session, "payout_events", lambda s: frame(
        s, select(e.payout_id, e.seq, e.state, e.reason, e.transaction_id),
        {"payout_id": pl.String(), "seq": pl.Int64(), "state": pl.String(),
         "reason": pl.String(), "transaction_id": pl.Int64()}))


def _report(df: pl.DataFrame, problems: list[tuple[pl.Expr, str]], cols: list[str],
            render: Callable[[str, tuple[Any, ...]], str], order: list[str]) -> Found:
    """Messages for each (condition, text) of ``problems`` over ``df``: every condition is
    counted in one pass, and only one that holds somewhere lists its first rows (``cols``,
    sorted by ``order``), rendered by ``render(text, row)``. A sound ledger costs one pass."""
    counts = df.select([cond.sum().alias(str(i)) for i, (cond, _) in enumerate(problems)]
                       ).row(0) if df.height else (0,) * len(problems)
    msgs: list[str] = []
    for (cond, text), n in zip(problems, counts):
        if n:
            rows = df.filter(cond).sort(order).head(LIMIT).select(cols).iter_rows()
            msgs += [render(text, row) for row in rows]  # at most LIMIT rows
    return msgs, sum(int(n or 0) for n in counts)


def payouts_match_statements(session: Session, statements: pl.DataFrame) -> Found:
    """One payout per paying statement line, with its derived id, amount and currency."""
    b = M.Batch
    cur = frame(session, select(b.batch_id, b.currency),
                {S.BATCH_ID: pl.String(), "batch_currency": pl.String()})
    want = statements.filter(pl.col(S.PAID_MINOR) > 0).join(cur, on=S.BATCH_ID).select(
        S.BATCH_ID, S.CREATOR_ID, S.PAID_MINOR, "batch_currency",
        payout_id_expr(pl.col(S.BATCH_ID), pl.col(S.CREATOR_ID)).alias("want_id"))
    cmp = want.join(_payouts(session).drop("superseded"), on=[S.BATCH_ID, S.CREATOR_ID],
                    how="full", coalesce=True)
    bad = cmp.filter(pl.col("payout_id").is_null() | pl.col("want_id").is_null()
                     | (pl.col("payout_id") != pl.col("want_id"))
                     | (pl.col(S.AMOUNT_MINOR) != pl.col(S.PAID_MINOR))
                     | (pl.col(S.CURRENCY) != pl.col("batch_currency"))).sort(
        S.BATCH_ID, S.CREATOR_ID)
    msgs = [f"batch {str(bid)[:12]} creator {cid!r}: statement pays {paid} "
            f"{bcur}, payout {pid} is {amount} {cur}"
            for bid, cid, paid, bcur, pid, amount, cur in bad.head(LIMIT).select(
                S.BATCH_ID, S.CREATOR_ID, S.PAID_MINOR, "batch_currency", "payout_id",
                S.AMOUNT_MINOR, S.CURRENCY).iter_rows()]
    return msgs, bad.height


def event_sequences(session: Session) -> Found:
    """seq 1..n per payout, opening pending or held, then allowed transitions only;
    superseded batches' payouts closed canceled (superseded) from pending or held."""
    events = _events(session).sort("payout_id", "seq")
    payouts = _payouts(session)
    ev = events.join(payouts.select("payout_id", "superseded"), on="payout_id", how="left")
    ev = ev.with_columns(
        pl.col("state").shift(1).over("payout_id").alias("from_state"),
        pl.int_range(1, pl.len() + 1).over("payout_id").alias("want_seq"),
        pl.col("superseded").fill_null(False))
    ok_pairs = allowed().with_columns(pl.lit(True).alias("ok"))
    ev = ev.join(ok_pairs, on=["from_state", "state"], how="left")
    close = (pl.col("state") == M.CANCELED) & (pl.col("reason") == M.SUPERSEDED)
    problems = [
        (pl.col("seq") != pl.col("want_seq"), "events are not numbered 1..n"),
        (pl.col("from_state").is_null() & ~pl.col("state").is_in(OPENING),
         "opens {state}, not pending or held"),
        (pl.col("from_state").is_not_null() & pl.col("ok").is_null(),
         "{from_state} -> {state} is out of order"),
        (pl.col("superseded") & ~pl.col("state").is_in(OPENING) & ~close,
         "is {state} but its batch is superseded (only pending or held, then canceled)"),
        (~pl.col("superseded") & close, "is canceled as superseded but its batch stands"),
    ]
    msgs, total = _report(
        ev, problems, ["payout_id", "seq", "state", "from_state"],
        lambda text, r: f"payout {r[0]} event {r[1]}: " + text.format(state=r[2],
                                                                       from_state=r[3]),
        ["payout_id", "seq"])
    last = ev.group_by("payout_id").agg(pl.col("state").last(), pl.col("superseded").first())
    open_ = last.filter(pl.col("superseded") & (pl.col("state") != M.CANCELED))
    missing = payouts.join(events.select("payout_id").unique(), on="payout_id", how="anti")
    msgs += [f"payout {p}: its batch is superseded but it is still {s}"
             for p, s in open_.sort("payout_id").head(LIMIT).select("payout_id", "state")
             .iter_rows()]
    msgs += [f"payout {p}: has no events" for p in missing["payout_id"].head(LIMIT)]
    return msgs, total + open_.height + missing.height


def _accounts(session: Session) -> tuple[dict[str, int], pl.DataFrame]:
    a = M.Account
    fixed = frame(session, select(a.code, a.id).where(a.code.in_([TRANSIT_CODE, DISBURSED_CODE])),
                  {"code": pl.String(), "id": pl.Int64()})
    payables = frame(session, select(a.creator_id, a.id).where(a.kind == M.CREATOR_PAYABLE),
                     {S.CREATOR_ID: pl.String(), "payable": pl.Int64()})
    return dict(fixed.iter_rows()), payables


def event_money(session: Session) -> Found:
    """Each money event names one transaction of the right kind and batch, whose legs are
    those of its events; no other event names one; no disbursement or re-credit
    transaction lacks an event."""
    t, e = M.Transaction, M.Entry
    settle = (M.DISBURSEMENT, M.RECREDIT)
    ev = _events(session).join(_payouts(session), on="payout_id", how="left")
    moves = pl.DataFrame([(s, k, c, d) for s, (k, c, d) in MOVES.items()],
                         schema=["state", "want_kind", "credit", "debit"], orient="row")
    ev = ev.join(moves, on="state", how="left").with_columns(
        pl.when(pl.col("superseded").fill_null(False) & (pl.col("state") == M.CANCELED))
        .then(None).otherwise(pl.col("want_kind")).alias("want_kind"))
    txs = frame(session, select(t.id, t.kind, t.batch_id),
                {"transaction_id": pl.Int64(), "kind": pl.String(), "tx_batch": pl.String()})
    named = ev.filter(pl.col("transaction_id").is_not_null())
    ev = ev.join(txs, on="transaction_id", how="left")
    problems = [
        (pl.col("want_kind").is_not_null() & pl.col("transaction_id").is_null(),
         "moves money but names no transaction"),
        (pl.col("want_kind").is_null() & pl.col("transaction_id").is_not_null(),
         "names transaction {tx} but moves no money"),
        (pl.col("want_kind").is_not_null() & pl.col("transaction_id").is_not_null()
         & ((pl.col("kind") != pl.col("want_kind")) | pl.col("kind").is_null()
            | (pl.col("tx_batch") != pl.col(S.BATCH_ID))),
         "names transaction {tx}, which is not a {want} of its batch"),
    ]
    msgs, total = _report(
        ev, problems, ["payout_id", "seq", "state", "transaction_id", "want_kind"],
        lambda text, r: f"payout {r[0]} event {r[1]} ({r[2]}): " + text.format(tx=r[3],
                                                                                want=r[4]),
        ["payout_id", "seq"])
    orphans = txs.filter(pl.col("kind").is_in(settle)).join(
        named.select("transaction_id"), on="transaction_id", how="anti")
    msgs += [f"transaction {tx} ({k}) is explained by no payout event"
             for tx, k in orphans.sort("transaction_id").head(LIMIT).select(
                 "transaction_id", "kind").iter_rows()]
    legs_msgs, legs_total = _legs(session, ev.filter(pl.col("want_kind").is_not_null()
                                                     & pl.col("transaction_id").is_not_null()))
    return msgs + legs_msgs, total + orphans.height + legs_total


def _legs(session: Session, ev: pl.DataFrame) -> Found:
    """The entries of each settling transaction, summed per account, equal the legs of
    the events that name it (each event its amount off one account, onto another)."""
    if ev.height == 0:
        return [], 0
    fixed, payables = _accounts(session)
    ev = ev.join(payables, on=S.CREATOR_ID, how="left")

    def account(col: str) -> pl.Expr:
        return (pl.when(pl.col(col) == PAYABLE_PREFIX).then(pl.col("payable"))
                .otherwise(pl.col(col).replace_strict(fixed, default=None,
                                                      return_dtype=pl.Int64)))

    want = pl.concat([
        ev.select("transaction_id", account("credit").alias("account_id"), S.CURRENCY,
                  (-pl.col(S.AMOUNT_MINOR)).alias("want")),
        ev.select("transaction_id", account("debit").alias("account_id"), S.CURRENCY,
                  pl.col(S.AMOUNT_MINOR).alias("want")),
    ]).group_by("transaction_id", "account_id", S.CURRENCY).agg(pl.col("want").sum())
    e, t = M.Entry, M.Transaction
    posted = frame(session, select(e.transaction_id, e.account_id, e.currency, e.amount_minor)
                   .join(t, t.id == e.transaction_id)
                   .where(t.kind.in_((M.DISBURSEMENT, M.RECREDIT))),
                   {"transaction_id": pl.Int64(), "account_id": pl.Int64(),
                    S.CURRENCY: pl.String(), "got": pl.Int64()})
    posted = posted.group_by("transaction_id", "account_id", S.CURRENCY).agg(pl.col("got").sum())
    cmp = want.join(posted, on=["transaction_id", "account_id", S.CURRENCY], how="full",
                    coalesce=True).with_columns(pl.col("want", "got").fill_null(0))
    bad = cmp.filter(pl.col("want") != pl.col("got")).sort("transaction_id", "account_id")
    msgs = [f"transaction {tx}: account {acc} {cur}: entries sum to {got}, the payout events "
            f"naming it call for {w}" for tx, acc, cur, w, got in bad.head(LIMIT).select(
                "transaction_id", "account_id", S.CURRENCY, "want", "got").iter_rows()]
    return msgs, bad.height
