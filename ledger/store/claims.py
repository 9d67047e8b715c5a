"""Claims and disputes in the ledger of record: open, decide, expire, apply, verify.

Rule: a claim and everything that happens to it are append-only rows
(``claims``, ``claim_events``; triggers refuse UPDATE and DELETE). A claim gets
at most one decision (upheld, rejected or expired: a partial unique index),
made under the ledger write lock. An upheld claim moves money only through
the next batch: :func:`pending_adjustments` picks the upheld claims no standing
batch has applied, and :func:`post_adjustments` posts them as one
``adjustment`` transaction of that batch, before its allocation, so the
creator's carried-in amount includes them::

    adjustment:  creator fund  -sum(pool-funded amounts)     (taken from this batch's pool)
                 platform      -sum(platform-funded amounts)
                 payable/<c>   +sum(c's amounts)

A pool-funded adjustment reduces the pool the batch allocates (the batch's
``pool_minor`` is what remains; its manifest's ``adjustments`` records the
pool before, and every claim it applies), so the fund pays out exactly the
requested pool. Pool-funded claims are applied in claim order while the pool
left stays > 0; the rest wait for the next batch. If the applying batch is
superseded, its reversal undoes the adjustment and the superseding batch
applies the claim again: an upheld claim is applied by exactly one standing
batch. ``verify`` explains every adjustment transaction by the manifest and
the claim events (:func:`check_claims`, :func:`expected_adjustment_legs`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from contract import schema as S
from contract.errors import ResidualsError
from ledger.store import models as M
from ledger.store.read import cached, frame

DEFAULT_EXPIRY_DAYS = 30
"""Days a claim stays open for a decision before it expires."""
SYSTEM_ACTOR = "system (expiry)"
"""The actor recorded on an ``expired`` event."""
MANIFEST_KEY = "adjustments"
"""Where a batch manifest records the claims it applies (absent when there are none)."""
CLAIM_ID = "claim_id"
FUNDING = "funding"
STATE = "state"
OPEN = "open"
STATES = (OPEN, M.UPHELD, M.REJECTED, M.EXPIRED)


def _utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (SQLite hands back naive values, PostgreSQL aware ones)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def now_utc() -> dt.datetime:
    """The current time, aware, in UTC (the default clock of every function here)."""
    return dt.datetime.now(dt.UTC)


def check_text(name: str, value: str | None, limit: int, *, required: bool) -> str | None:
    """A stored text: stripped, non-empty when ``required``, at most ``limit`` characters,
    without NUL (which PostgreSQL refuses). Stored and shown as plain text."""
    if value is None or not value.strip():
        if required:
            raise ResidualsError(f"`{name}`: must not be empty")
        return None
    value = value.strip()
    if "\x00" in value:
        raise ResidualsError(f"`{name}`: contains a NUL character")
    if len(value) > limit:
        raise ResidualsError(f"`{name}`: {len(value)} characters, expected at most {limit}")
    return value


def fund_currency(session: Session) -> str:
    """The currency of the creator fund (of its batches); refuses an empty ledger."""
    cur = session.execute(select(M.Batch.currency).order_by(M.Batch.seq).limit(1)).scalar()
    if cur is None:
        raise ResidualsError("the ledger has no batch yet: a claim is about a posted period")
    return str(cur)


def open_claim(session: Session, *, creator_id: str, kind: str, period: str,
               generation_id: str | None = None, clip_id: str | None = None,
               text: str | None = None, opened_by: str, now: dt.datetime | None = None,
               expiry_days: int = DEFAULT_EXPIRY_DAYS) -> int:
    """Record a new claim of ``creator_id`` about ``period``; returns its claim id.

    ``copied_clip`` needs ``generation_id`` and ``clip_id``; ``wrong_amount``
    needs ``text``. The period must have a standing batch.
    """
    if kind not in M.CLAIM_KINDS:
        raise ResidualsError(f"kind={kind!r}: expected one of {', '.join(M.CLAIM_KINDS)}")
    if expiry_days < 1:
        raise ResidualsError(f"expiry_days={expiry_days}: expected an integer >= 1")
    creator_id = check_text("creator_id", creator_id, S.MAX_ID_CHARS, required=True) or ""
    ids = kind == M.COPIED_CLIP
    generation_id = check_text("generation_id", generation_id, S.MAX_ID_CHARS, required=ids)
    clip_id = check_text("clip_id", clip_id, S.MAX_ID_CHARS, required=ids)
    text = check_text("text", text, S.MAX_CLAIM_TEXT_CHARS, required=kind == M.WRONG_AMOUNT)
    opened_by = check_text("opened_by", opened_by, S.MAX_ACTOR_CHARS, required=True) or ""
    if session.get(M.Creator, creator_id) is None:
        raise ResidualsError(f"creator_id={creator_id!r}: not a creator of the ledger")
    b = M.Batch
    posted = session.execute(select(b.batch_id).where(b.period == period).limit(1)).scalar()
    if posted is None:
        raise ResidualsError(f"period={period!r}: no batch was posted for this period")
    now = _utc(now or now_utc())
    claim = M.Claim(creator_id=creator_id, kind=kind, period=period, generation_id=generation_id,
                    clip_id=clip_id, text=text, opened_by=opened_by, opened_at=now,
                    expires_at=now + dt.timedelta(days=expiry_days))
    session.add(claim)
    session.flush()
    return int(claim.claim_id)


def _next_seq(session: Session, claim_id: int) -> int:
    e = M.ClaimEvent
    return 1 + int(session.execute(select(func.coalesce(func.max(e.seq), 0))
                                   .where(e.claim_id == claim_id)).scalar_one())


def expire_due(session: Session, now: dt.datetime | None = None) -> int:
    """Record an ``expired`` decision (at its deadline) for every undecided claim whose
    deadline has passed at ``now``; returns how many. Call under the write lock."""
    now = _utc(now or now_utc())
    c, e = M.Claim, M.ClaimEvent
    decided = select(e.claim_id).where(e.outcome.in_(M.DECISIONS))
    due = session.execute(select(c.claim_id, c.expires_at).where(
        c.claim_id.not_in(decided), c.expires_at <= now).order_by(c.claim_id)).all()
    if due:  # one row per claim past its deadline
        session.execute(insert(e), [
            {"claim_id": cid, "seq": _next_seq(session, cid), "outcome": M.EXPIRED,
             "actor": SYSTEM_ACTOR, "at": _utc(at)} for cid, at in due])
    return len(due)


@dataclass(frozen=True)
class Decision:
    """How a claim is resolved: upheld with an amount and its funding, or rejected."""

    uphold: bool
    amount_minor: int | None = None
    funding: str = M.FUNDING_POOL
    reason: str | None = None


def resolve(session: Session, claim_id: int, decision: Decision, *, actor: str,
            now: dt.datetime | None = None) -> str:
    """Record the one decision of an open claim; returns the outcome written.

    Call under the ledger write lock (:func:`ledger.store.engine.write_session`):
    overdue claims are expired first, and a claim that already has a decision is
    refused. The database refuses a second decision even without the lock.
    """
    now = _utc(now or now_utc())
    actor = check_text("actor", actor, S.MAX_ACTOR_CHARS, required=True) or ""
    claim = session.get(M.Claim, claim_id)
    if claim is None:
        raise ResidualsError(f"claim_id={claim_id}: no such claim")
    expire_due(session, now)
    state = claim_state(session, claim_id)
    if state != OPEN:
        raise ResidualsError(f"claim {claim_id} is already {state}; a claim is decided once")
    row: dict[str, Any] = {"claim_id": claim_id, "seq": _next_seq(session, claim_id),
                           "actor": actor, "at": now}
    if decision.uphold:
        amount = decision.amount_minor
        if amount is None or amount <= 0:
            raise ResidualsError(f"amount_minor={amount}: expected an amount > 0")
        if decision.funding not in M.FUNDINGS:
            raise ResidualsError(f"funding={decision.funding!r}: expected pool or platform")
        row |= {"outcome": M.UPHELD, "amount_minor": amount, "funding": decision.funding,
                "currency": fund_currency(session)}
    else:
        reason = check_text("reason", decision.reason, S.MAX_CLAIM_TEXT_CHARS, required=True)
        row |= {"outcome": M.REJECTED, "reason": reason}
    session.execute(insert(M.ClaimEvent), [row])
    return str(row["outcome"])


def claim_state(session: Session, claim_id: int) -> str:
    """``open``, or the claim's decision (upheld, rejected, expired)."""
    e = M.ClaimEvent
    out = session.execute(select(e.outcome).where(e.claim_id == claim_id,
                                                  e.outcome.in_(M.DECISIONS))).scalar()
    return str(out) if out is not None else OPEN


def _standing() -> Any:
    b = M.Batch
    return select(b.batch_id).where(b.batch_id.not_in(
        select(b.supersedes_id).where(b.supersedes_id.is_not(None))))


CLAIM_SCHEMA: dict[str, pl.DataType] = {
    CLAIM_ID: pl.Int64(), S.CREATOR_ID: pl.String(), "kind": pl.String(), S.PERIOD: pl.String(),
    S.GENERATION_ID: pl.String(), S.CLIP_ID: pl.String(), "text": pl.String(),
    "opened_by": pl.String(), "opened_at": pl.Datetime("us", "UTC"),
    "expires_at": pl.Datetime("us", "UTC"),
}
EVENT_SCHEMA: dict[str, pl.DataType] = {
    CLAIM_ID: pl.Int64(), S.SEQ: pl.Int64(), "outcome": pl.String(), S.AMOUNT_MINOR: pl.Int64(),
    S.CURRENCY: pl.String(), FUNDING: pl.String(), S.REASON: pl.String(),
    S.BATCH_ID: pl.String(), "actor": pl.String(), "at": pl.Datetime("us", "UTC"),
}


def claim_events(session: Session, claim_ids: list[int] | None = None) -> pl.DataFrame:
    """Every event (of ``claim_ids``, if given), in order."""
    e = M.ClaimEvent
    stmt = select(e.claim_id, e.seq, e.outcome, e.amount_minor, e.currency, e.funding, e.reason,
                  e.batch_id, e.actor, e.at).order_by(e.claim_id, e.seq)
    if claim_ids is not None:
        stmt = stmt.where(e.claim_id.in_(claim_ids))
    rows = [tuple(r[:9]) + (_utc(r[9]),) for r in session.execute(stmt).all()]
    return pl.DataFrame(rows or None, schema=EVENT_SCHEMA, orient="row")


def claims(session: Session, *, creator_id: str | None = None, state: str | None = None,
           claim_id: int | None = None) -> pl.DataFrame:
    """Claims with their state and decision, newest first: the claim's columns, ``state``,
    the decision's amount, currency, funding, reason, actor and time (``decided_by``,
    ``decided_at``), and the batch that applied it (``applied_batch``, ``applied_period``)."""
    if state is not None and state not in STATES:
        raise ResidualsError(f"state={state!r}: expected one of {', '.join(STATES)}")
    c = M.Claim
    stmt = select(c.claim_id, c.creator_id, c.kind, c.period, c.generation_id, c.clip_id, c.text,
                  c.opened_by, c.opened_at, c.expires_at).order_by(c.claim_id.desc())
    if creator_id is not None:
        stmt = stmt.where(c.creator_id == creator_id)
    if claim_id is not None:
        stmt = stmt.where(c.claim_id == claim_id)
    rows = [tuple(r[:8]) + (_utc(r[8]), _utc(r[9])) for r in session.execute(stmt).all()]
    out = pl.DataFrame(rows or None, schema=CLAIM_SCHEMA, orient="row")
    events = claim_events(session, out[CLAIM_ID].to_list())
    decisions = events.filter(pl.col("outcome").is_in(M.DECISIONS)).select(
        CLAIM_ID, pl.col("outcome").alias(STATE), S.AMOUNT_MINOR, S.CURRENCY, FUNDING, S.REASON,
        pl.col("actor").alias("decided_by"), pl.col("at").alias("decided_at"))
    standing = set(session.execute(_standing()).scalars())
    applied = events.filter((pl.col("outcome") == M.APPLIED)
                            & pl.col(S.BATCH_ID).is_in(list(standing))).select(
        CLAIM_ID, pl.col(S.BATCH_ID).alias("applied_batch"))
    b = M.Batch
    periods = frame(session, select(b.batch_id, b.period),
                    {"applied_batch": pl.String(), "applied_period": pl.String()})
    applied = applied.join(periods, on="applied_batch", how="left")
    out = out.join(decisions, on=CLAIM_ID, how="left").join(applied, on=CLAIM_ID, how="left")
    out = out.with_columns(pl.col(STATE).fill_null(OPEN))
    return out.filter(pl.col(STATE) == state) if state is not None else out


# ---- money: the next batch applies upheld claims --------------------------------------

ADJUSTMENT_SCHEMA: dict[str, pl.DataType] = {
    CLAIM_ID: pl.Int64(), S.CREATOR_ID: pl.String(), S.AMOUNT_MINOR: pl.Int64(),
    FUNDING: pl.String()}


@dataclass(frozen=True)
class Adjustments:
    """The upheld claims a batch applies, and the pool left to allocate after them."""

    claims: pl.DataFrame  # claim_id, creator_id, amount_minor, funding (claim order)
    pool_before_minor: int
    pool_minor: int

    @property
    def carried(self) -> pl.DataFrame:
        """``creator_id``, ``carried_minor``: what the adjustments add to each payable."""
        return self.claims.group_by(S.CREATOR_ID).agg(
            pl.col(S.AMOUNT_MINOR).sum().alias(S.CARRIED_MINOR))

    def manifest(self) -> dict[str, Any]:
        """The manifest's record: the pool before and every claim applied."""
        return {"pool_before_minor": self.pool_before_minor,
                "claims": self.claims.sort(CLAIM_ID).to_dicts()}


def pending_adjustments(session: Session, *, standing: str | None, currency: str,
                        pool_minor: int) -> Adjustments:
    """The upheld claims in ``currency`` that no standing batch has applied (a claim applied
    by ``standing``, the batch being superseded, counts as not applied), in claim order;
    pool-funded ones while the pool left stays > 0."""
    c, e = M.Claim, M.ClaimEvent
    applied = select(e.claim_id).where(e.outcome == M.APPLIED,
                                       e.batch_id.in_(_standing()))
    if standing is not None:
        applied = applied.where(e.batch_id != standing)
    rows = frame(session, select(e.claim_id, c.creator_id, e.amount_minor, e.funding)
                 .join(c, c.claim_id == e.claim_id)
                 .where(e.outcome == M.UPHELD, e.currency == currency,
                        e.claim_id.not_in(applied)).order_by(e.claim_id), ADJUSTMENT_SCHEMA)
    if rows.height == 0:  # the usual batch: nothing to apply
        return Adjustments(rows, pool_minor, pool_minor)
    pool_side = rows.filter(pl.col(FUNDING) == M.FUNDING_POOL).with_columns(
        pl.col(S.AMOUNT_MINOR).cum_sum().alias("taken"))
    fits = pool_side.filter(pl.col("taken") < pool_minor).drop("taken")
    chosen = pl.concat([fits, rows.filter(pl.col(FUNDING) == M.FUNDING_PLATFORM)]).sort(CLAIM_ID)
    taken = int(fits[S.AMOUNT_MINOR].sum()) if fits.height else 0
    return Adjustments(chosen, pool_minor, pool_minor - taken)


def with_adjustments(carried: pl.DataFrame, adjustments: Adjustments) -> pl.DataFrame:
    """Carried-in balances (``creator_id``, ``carried_minor``) plus the adjustments."""
    if adjustments.claims.height == 0:
        return carried
    return pl.concat([carried, adjustments.carried.select(carried.columns)]).group_by(
        S.CREATOR_ID).agg(pl.col(S.CARRIED_MINOR).sum()).filter(
        pl.col(S.CARRIED_MINOR) != 0).sort(S.CREATOR_ID)


def adjustment_legs(adjustments: pl.DataFrame) -> pl.DataFrame:
    """Per claim set (``claim_id``, ``creator_id``, ``amount_minor``, ``funding``) the legs
    of its adjustment transaction: ``account`` (fund, platform or a creator id) and amount."""
    payables = adjustments.group_by(S.CREATOR_ID).agg(pl.col(S.AMOUNT_MINOR).sum()).select(
        pl.col(S.CREATOR_ID).alias("account"), S.AMOUNT_MINOR)
    funds = adjustments.group_by(FUNDING).agg((-pl.col(S.AMOUNT_MINOR).sum()).alias(
        S.AMOUNT_MINOR)).select(pl.col(FUNDING).replace({M.FUNDING_POOL: "fund"}).alias(
        "account"), S.AMOUNT_MINOR)
    return pl.concat([funds.sort("account"), payables.sort("account")])


def post_adjustments(session: Session, *, batch_id: str, period: str, currency: str,
                     adjustments: Adjustments, actor: str = "batch",
                     now: dt.datetime | None = None) -> tuple[int, pl.DataFrame]:
    """Post the adjustment transaction of a batch (after its batch row) and record each
    claim as applied by it; returns (entries written, balance deltas)."""
    from ledger.store import posting as P

    if adjustments.claims.height == 0:
        return 0, pl.DataFrame(schema={"account_id": pl.Int64, S.CURRENCY: pl.String,
                                       "delta": pl.Int64})
    legs = adjustment_legs(adjustments.claims)
    fixed = {"fund": P._fixed_account(session, P.FUND_CODE, M.CREATOR_FUND),
             M.FUNDING_PLATFORM: P._fixed_account(session, P.PLATFORM_CODE, M.PLATFORM)}
    payables = P._payables(session)
    entries = legs.join(payables.rename({S.CREATOR_ID: "account"}), on="account", how="left")
    entries = entries.with_columns(pl.col("account_id").fill_null(
        pl.col("account").replace_strict(fixed, default=None, return_dtype=pl.Int64)))
    if entries["account_id"].null_count():
        raise ResidualsError("adjustment: a claimant has no payable account in the ledger")
    tx = P._new_transaction(session, M.ADJUSTMENT, batch_id,
                            f"adjustments for {adjustments.claims.height} upheld claim(s), "
                            f"period {period}")
    n = P._post_entries(session, tx, entries.select("account_id", S.AMOUNT_MINOR), currency)
    at = _utc(now or now_utc())
    session.execute(insert(M.ClaimEvent), [  # one row per claim applied by this batch
        {"claim_id": cid, "seq": _next_seq(session, cid), "outcome": M.APPLIED,
         "batch_id": batch_id, "actor": actor, "at": at}
        for cid in adjustments.claims[CLAIM_ID].to_list()])
    return n, P._as_deltas(entries, currency)


def creator_adjustments(session: Session, creator_id: str) -> pl.DataFrame:
    """The claims applied to a creator's balance by standing batches: ``period`` (of the
    batch), ``claim_id``, ``amount_minor``, ``currency``, ``funding``, ``batch_id``."""
    out = claims(session, creator_id=creator_id, state=M.UPHELD).filter(
        pl.col("applied_batch").is_not_null())
    return out.select(
        pl.col("applied_period").alias(S.PERIOD), CLAIM_ID, S.AMOUNT_MINOR, S.CURRENCY, FUNDING,
        pl.col("applied_batch").alias(S.BATCH_ID))


# ---- verify ------------------------------------------------------------------------

def manifest_adjustments(session: Session) -> pl.DataFrame:
    """Every claim a batch manifest says it applies: ``batch_id``, ``claim_id``,
    ``creator_id``, ``amount_minor``, ``funding``, and the batch's ``pool_minor`` and
    ``pool_before_minor``. Read once per ``verify`` run (:func:`ledger.store.read.cached`)."""
    return cached(session, "manifest_adjustments", _manifest_adjustments)


def _manifest_adjustments(session: Session) -> pl.DataFrame:
    b = M.Batch
    rows = []
    for bid, manifest in session.execute(select(b.batch_id, b.manifest)).all():  # per batch
        adj = manifest.get(MANIFEST_KEY) if isinstance(manifest, dict) else None
        if not isinstance(adj, dict):
            continue
        for c in adj.get("claims") or []:  # claims of one batch
            rows.append((bid, c.get(CLAIM_ID), c.get(S.CREATOR_ID), c.get(S.AMOUNT_MINOR),
                         c.get(FUNDING), manifest.get(S.POOL_MINOR), adj.get("pool_before_minor")))
    return pl.DataFrame(rows or None, orient="row", schema={
        S.BATCH_ID: pl.String(), CLAIM_ID: pl.Int64(), S.CREATOR_ID: pl.String(),
        S.AMOUNT_MINOR: pl.Int64(), FUNDING: pl.String(), S.POOL_MINOR: pl.Int64(),
        "pool_before_minor": pl.Int64()})


def expected_adjustment_legs(session: Session, accounts: dict[str, int]) -> pl.DataFrame:
    """Per (batch, ``adjustment``, account, currency) the amount its manifest calls for;
    ``accounts`` maps ``fund``, ``platform`` and each creator id to an account id."""
    adj = manifest_adjustments(session)
    b = M.Batch
    cur = frame(session, select(b.batch_id, b.currency),
                {S.BATCH_ID: pl.String(), S.CURRENCY: pl.String()})
    parts = [adjustment_legs(group).with_columns(pl.lit(bid).alias(S.BATCH_ID))
             for (bid,), group in adj.partition_by(S.BATCH_ID, as_dict=True).items()]
    if not parts:
        return pl.DataFrame(schema={S.BATCH_ID: pl.String, "kind": pl.String,
                                    "account_id": pl.Int64, S.CURRENCY: pl.String,
                                    S.AMOUNT_MINOR: pl.Int64})
    legs = pl.concat(parts).join(cur, on=S.BATCH_ID, how="left")
    return legs.select(S.BATCH_ID, pl.lit(M.ADJUSTMENT).alias("kind"),
                       pl.col("account").replace_strict(accounts, default=None,
                                                        return_dtype=pl.Int64).alias("account_id"),
                       S.CURRENCY, S.AMOUNT_MINOR)


def adjustment_batches(session: Session) -> list[str]:
    """The batches whose manifests apply claims (each has one adjustment transaction)."""
    return sorted(set(manifest_adjustments(session)[S.BATCH_ID].to_list()))


def _decisions(session: Session) -> pl.DataFrame:
    c, e = M.Claim, M.ClaimEvent
    return frame(session, select(e.claim_id, c.creator_id, e.amount_minor, e.funding,
                                 e.currency).join(c, c.claim_id == e.claim_id)
                 .where(e.outcome == M.UPHELD),
                 {CLAIM_ID: pl.Int64(), "d_creator": pl.String(), "d_amount": pl.Int64(),
                  "d_funding": pl.String(), "d_currency": pl.String()})


def claim_violations(session: Session) -> list[str]:
    """What verify reports about claims: each claim a manifest applies was upheld with that
    creator, amount, funding and currency and has an ``applied`` event naming the batch
    (and each such event a manifest); the pool before = pool + pool-funded amounts; no
    claim is applied by two standing batches."""
    adj = manifest_adjustments(session)
    e, b = M.ClaimEvent, M.Batch
    events = frame(session, select(e.claim_id, e.batch_id).where(e.outcome == M.APPLIED),
                   {CLAIM_ID: pl.Int64(), S.BATCH_ID: pl.String()})
    cur = frame(session, select(b.batch_id, b.currency),
                {S.BATCH_ID: pl.String(), S.CURRENCY: pl.String()})
    msgs: list[str] = []
    both = adj.join(events.with_columns(pl.lit(True).alias("event")), on=[S.BATCH_ID, CLAIM_ID],
                    how="full", coalesce=True)
    for bid, cid in both.filter(pl.col("event").is_null()).select(S.BATCH_ID, CLAIM_ID).rows():
        msgs.append(f"batch {bid[:12]} applies claim {cid}, but no applied event records it")
    for bid, cid in both.filter(pl.col(S.AMOUNT_MINOR).is_null() & pl.col("event").is_not_null()
                                ).select(S.BATCH_ID, CLAIM_ID).rows():
        msgs.append(f"claim {cid}: an applied event names batch {bid[:12]}, whose manifest "
                    "does not apply it")
    chk = adj.join(cur, on=S.BATCH_ID, how="left").join(_decisions(session), on=CLAIM_ID,
                                                        how="left")
    bad = chk.filter((pl.col("d_creator") != pl.col(S.CREATOR_ID))
                     | (pl.col("d_amount") != pl.col(S.AMOUNT_MINOR))
                     | (pl.col("d_funding") != pl.col(FUNDING))
                     | (pl.col("d_currency") != pl.col(S.CURRENCY)) | pl.col("d_amount").is_null())
    msgs += [f"batch {bid[:12]} applies claim {cid} as {amt} ({fund}) to {who!r}, which no "
             "upheld decision says" for bid, cid, amt, fund, who in bad.select(
                 S.BATCH_ID, CLAIM_ID, S.AMOUNT_MINOR, FUNDING, S.CREATOR_ID).rows()]
    pools = adj.group_by(S.BATCH_ID).agg(
        pl.col(S.POOL_MINOR).first(), pl.col("pool_before_minor").first(),
        pl.col(S.AMOUNT_MINOR).filter(pl.col(FUNDING) == M.FUNDING_POOL).sum().alias("taken"))
    msgs += [f"batch {bid[:12]}: pool before adjustments {before} != pool {pool} + "
             f"pool-funded adjustments {taken}" for bid, pool, before, taken in pools.filter(
                 pl.col("pool_before_minor") != pl.col(S.POOL_MINOR) + pl.col("taken")).select(
                 S.BATCH_ID, S.POOL_MINOR, "pool_before_minor", "taken").rows()]
    standing = set(session.execute(_standing()).scalars())
    twice = adj.filter(pl.col(S.BATCH_ID).is_in(list(standing))).group_by(CLAIM_ID).len().filter(
        pl.col("len") > 1)
    msgs += [f"claim {cid} is applied by {n} standing batches" for cid, n in twice.rows()]
    return msgs
