"""Posting a payout batch: one batch, one database transaction, exactly once.

Rule: :func:`post_batch` either posts the whole batch (its batch row, the
reversals of a superseded batch, the allocation and payout transactions with
their entries and seals, the statement lines, the clip credits and the
balance updates) inside the caller's single database transaction, or raises
and posts nothing. It runs under the ledger write lock (see
:func:`ledger.store.engine.write_session`), so it sees every batch committed
before it: a batch whose id is already posted is a no-op reported as such, and
a different batch for a period that already has one is refused unless
``supersede``.

Money movement (``amount_minor`` > 0 debits, < 0 credits; an account's balance
is the sum of its entries)::

    allocation:  creator fund  -pool
                 payable/<c>   +allocated_c        (for each creator, if > 0)
                 platform      +withheld           (if > 0)
    payout:      payable/<c>   -paid_c             (creators at/above the minimum)
                 in transit    +sum(paid)

So a creator payable's balance is what is owed and not yet sent: the carry
forward. A supersede first posts, for each transaction of the replaced batch,
a reversal (its entries negated, ``reverses_id`` set), in the same database
transaction as the new batch.

The batch id is sha256 of (period, currency, pool, policy text, input hashes,
parameters); the batch hash is sha256 of the canonical JSON manifest, which
includes the previous batch's hash, so the batches form a hash chain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from contract import schema as S
from contract.errors import ResidualsError
from ledger.money import check_int64, int_sum
from ledger.store import models as M
from ledger.store.bulk import insert_frame
from ledger.store.read import frame

MANIFEST_FORMAT = 3
"""Format 3 manifests digest every statement column and the clip credits with their
confidence; format 2 the clip credits without it; format 1 the integer statement
columns only. ``verify`` checks each batch by its own format."""
#: Where a manifest records the data directory of its inputs: manifest["context"]["data_dir"].
MANIFEST_CONTEXT = "context"
MANIFEST_DATA_DIR = "data_dir"
FUND_CODE = "fund"
TRANSIT_CODE = "transit"
PLATFORM_CODE = "platform"
PAYABLE_PREFIX = "payable/"

LINE_COLUMNS = list(S.LINE_COLUMNS)
"""Columns of an allocation's lines (:data:`contract.schema.LINE_COLUMNS`)."""

DIGEST_COLUMNS = [S.CREATOR_ID, S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR, S.PAID_MINOR,
                  S.CARRIED_OUT_MINOR]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the form that is hashed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_text(s: str) -> str:
    """Hex sha256 of a UTF-8 string."""
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


CREDIT_COLUMNS = [S.CLIP_ID, S.CREATOR_ID, S.WEIGHT, S.CONFIDENCE]
"""Columns of a batch's clip credits, as stored and digested in format 3 manifests
(format 2 digests all but ``confidence``). ``confidence`` may be null."""
_CREDIT_DTYPES = {S.CLIP_ID: pl.String, S.CREATOR_ID: pl.String, S.WEIGHT: pl.Float64,
                  S.CONFIDENCE: pl.Float64}


def _frame_digest(df: pl.DataFrame) -> str:
    """sha256 of a frame's CSV (floats in their shortest exact form, nulls as ``\\N``)."""
    csv = df.write_csv(include_header=True, null_value="\\N")
    return hashlib.sha256(csv.encode("utf-8")).hexdigest()


def lines_digest(lines: pl.DataFrame, manifest_format: int = MANIFEST_FORMAT) -> str:
    """sha256 of a batch's lines sorted by creator id: every column (format 2), or the
    integer columns only (format 1).

    Recomputed by ``verify`` from the stored statements; a changed amount, share,
    eligibility or reason changes the digest, hence the batch hash and every later hash.
    """
    if manifest_format < 2:
        return _frame_digest(lines.select(DIGEST_COLUMNS).sort(S.CREATOR_ID))
    return _frame_digest(lines.select(LINE_COLUMNS).with_columns(
        pl.col(S.SHARE, S.EXACT_MINOR).cast(pl.Float64), pl.col(S.ELIGIBLE).cast(pl.Boolean),
        pl.col(S.REASON).cast(pl.String)).sort(S.CREATOR_ID))


def credits_digest(credits: pl.DataFrame | None,
                   manifest_format: int = MANIFEST_FORMAT) -> str:
    """sha256 of a batch's clip credits sorted by clip and creator: ``clip_id``,
    ``creator_id``, ``weight`` and (format 3) ``confidence``, null as ``\\N``;
    recorded in format 2 and later manifests."""
    cols = CREDIT_COLUMNS if manifest_format >= 3 else CREDIT_COLUMNS[:3]
    if credits is None:
        credits = pl.DataFrame(schema={c: pl.String for c in cols})
    if S.CONFIDENCE not in credits.columns:
        credits = credits.with_columns(pl.lit(None, pl.Float64).alias(S.CONFIDENCE))
    return _frame_digest(credits.select(pl.col(c).cast(_CREDIT_DTYPES[c]) for c in cols)
                         .sort(S.CLIP_ID, S.CREATOR_ID))


def manifest_data_dir(manifest: Mapping[str, Any]) -> Path | None:
    """The data directory a batch's inputs were read from, as its manifest records it."""
    context = manifest.get(MANIFEST_CONTEXT)
    value = context.get(MANIFEST_DATA_DIR) if isinstance(context, Mapping) else None
    return Path(value) if isinstance(value, str) and value else None


def manifest_policy_text(manifest: Mapping[str, Any]) -> str:
    """The policy text a batch was allocated under, as its manifest records it."""
    policy = manifest.get("policy")
    text = policy.get("text") if isinstance(policy, Mapping) else None
    if not isinstance(text, str):
        raise ResidualsError("the batch's manifest does not record its policy text")
    return text


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """The batch hash: sha256 of the canonical JSON of the manifest."""
    return sha256_text(canonical_json(dict(manifest)))


@dataclass(frozen=True)
class BatchRequest:
    """Everything that identifies a batch, before any money is computed.

    Parameters
    ----------
    period
        Payout period label, e.g. ``"2026-10"``.
    currency
        ISO 4217 code of the pool.
    pool_minor
        The pool in minor units (> 0).
    policy_name, policy_text
        The policy as written; its sha256 is the policy hash.
    input_hashes
        sha256 per input (file name -> hex), recorded in the manifest.
    creators
        ``creator_id``, ``display_name`` of every creator the batch may pay.
    clip_credits
        ``creator_id``, ``clip_id``, ``weight`` and optionally ``confidence``: the
        clips that earned each share.
    params
        Other inputs that change the result (e.g. attribution ``k``, method).
    context
        Recorded in the manifest but not part of the batch id (code version,
        data directory).
    """

    period: str
    currency: str
    pool_minor: int
    policy_name: str
    policy_text: str
    input_hashes: Mapping[str, str]
    creators: pl.DataFrame
    clip_credits: pl.DataFrame | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def policy_hash(self) -> str:
        return sha256_text(self.policy_text)

    @property
    def batch_id(self) -> str:
        """sha256 of what determines the batch: period, money, policy, inputs, params."""
        return sha256_text(canonical_json({
            "period": self.period, "currency": self.currency, "pool_minor": self.pool_minor,
            "policy_text": self.policy_text, "inputs": dict(self.input_hashes),
            "params": dict(self.params),
        }))


@dataclass(frozen=True)
class BatchLines:
    """An allocation as the store needs it: one line per creator and the withheld amount."""

    lines: pl.DataFrame
    withheld_minor: int


Allocator = Callable[..., BatchLines]
"""``allocator(carried, pool_minor=P)``: maps carried-in balances (``creator_id``,
``carried_minor``) to the batch's lines, allocating ``P`` (the request's pool less the
pool-funded claim adjustments, :mod:`ledger.store.claims`)."""


@dataclass(frozen=True)
class PostOutcome:
    """What :func:`post_batch` did."""

    status: Literal["posted", "exists"]
    batch_id: str
    batch_hash: str
    period: str
    seq: int
    superseded: str | None = None
    superseded_by: str | None = None
    entries: int = 0
    creators: int = 0
    creators_paid: int = 0
    paid_minor: int = 0
    pool_minor: int = 0
    withheld_minor: int = 0
    currency: str = ""
    entries_seconds: float = 0.0
    """Wall time spent writing (and sealing) entries, for throughput reports."""


def _outcome_exists(session: Session, batch: M.Batch) -> PostOutcome:
    newer = session.execute(
        select(M.Batch.batch_id).where(M.Batch.supersedes_id == batch.batch_id)
    ).scalar_one_or_none()
    return PostOutcome(
        "exists", batch.batch_id, batch.batch_hash, batch.period, batch.seq,
        superseded=batch.supersedes_id, superseded_by=newer, creators_paid=batch.creators_paid,
        paid_minor=batch.paid_minor, pool_minor=batch.pool_minor,
        withheld_minor=batch.withheld_minor, currency=batch.currency,
    )


def find_batch(session: Session, batch_id: str) -> M.Batch | None:
    """The batch with this id, if posted."""
    return session.get(M.Batch, batch_id)


def _fixed_account(session: Session, code: str, kind: str) -> int:
    acc_id = session.execute(select(M.Account.id).where(M.Account.code == code)).scalar()
    if acc_id is None:
        acc = M.Account(code=code, kind=kind, creator_id=None)
        session.add(acc)
        session.flush()
        acc_id = acc.id
    return int(acc_id)


def ensure_creators(session: Session, creators: pl.DataFrame) -> pl.DataFrame:
    """Insert unknown creators and their payable accounts; returns ``creator_id`` ->
    ``account_id`` of every payable account (as a frame)."""
    known = frame(session, select(M.Creator.creator_id), {S.CREATOR_ID: pl.String()})
    creators = creators.sort(S.CREATOR_ID)  # key order: each index takes rows page by page
    new = creators.select(S.CREATOR_ID, S.DISPLAY_NAME).join(known, on=S.CREATOR_ID, how="anti")
    insert_frame(session, M.Creator.__tablename__, new)
    payables = _payables(session)
    missing = creators.select(S.CREATOR_ID).join(payables, on=S.CREATOR_ID, how="anti")
    if missing.height:
        insert_frame(session, M.Account.__tablename__, missing.select(
            pl.concat_str(pl.lit(PAYABLE_PREFIX), pl.col(S.CREATOR_ID)).alias("code"),
            pl.lit(M.CREATOR_PAYABLE).alias("kind"),
            pl.col(S.CREATOR_ID).alias("creator_id"),
        ))
        payables = _payables(session)
    return payables


def _payables(session: Session) -> pl.DataFrame:
    a = M.Account
    return frame(session, select(a.creator_id, a.id).where(a.kind == M.CREATOR_PAYABLE),
                 {S.CREATOR_ID: pl.String(), "account_id": pl.Int64()})


def payable_balances(session: Session, currency: str) -> pl.DataFrame:
    """``creator_id``, ``carried_minor``: non-zero creator payable balances in ``currency``."""
    a, b = M.Account, M.Balance
    stmt = (select(a.creator_id, b.balance_minor).join(b, b.account_id == a.id)
            .where(a.kind == M.CREATOR_PAYABLE, b.currency == currency, b.balance_minor != 0))
    return frame(session, stmt, {S.CREATOR_ID: pl.String(), S.CARRIED_MINOR: pl.Int64()})


def check_lines(lines: pl.DataFrame, *, pool_minor: int, withheld_minor: int,
                carried_in: pl.DataFrame, creators: pl.DataFrame) -> pl.DataFrame:
    """Validate an allocation's lines before posting; returns them with canonical dtypes.

    Refuses (one-line :class:`ResidualsError`): a missing column, a duplicate or
    unknown creator, a negative amount, allocated + withheld != pool, a row where
    paid + carried_out != allocated + carried_in, or carried-in amounts that
    differ from the ledger's payable balances.
    """
    missing = [c for c in LINE_COLUMNS if c not in lines.columns]
    if missing:
        raise ResidualsError(f"allocation lines lack column(s) {', '.join(missing)}")
    lines = lines.select(LINE_COLUMNS).with_columns(
        pl.col(S.CREATOR_ID).cast(pl.String),
        pl.col(S.SHARE, S.EXACT_MINOR).cast(pl.Float64),
        pl.col(S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR, S.PAID_MINOR,
               S.CARRIED_OUT_MINOR).cast(pl.Int64),
        pl.col(S.ELIGIBLE).cast(pl.Boolean), pl.col(S.REASON).cast(pl.String),
    )
    dup = lines.filter(pl.col(S.CREATOR_ID).is_duplicated())
    if dup.height:
        raise ResidualsError(f"allocation: creator {dup[S.CREATOR_ID][0]!r} appears twice")
    unknown = lines.join(creators.select(S.CREATOR_ID), on=S.CREATOR_ID, how="anti")
    if unknown.height:
        raise ResidualsError(f"allocation: creator {unknown[S.CREATOR_ID][0]!r} is not in "
                             "creators.parquet")
    money = [S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR, S.PAID_MINOR, S.CARRIED_OUT_MINOR]
    for col in money:
        neg = lines.filter(pl.col(col).is_null() | (pl.col(col) < 0))
        if neg.height:
            raise ResidualsError(f"allocation: creator {neg[S.CREATOR_ID][0]!r} has {col} "
                                 f"{neg[col][0]}, expected an amount >= 0")
    total = int_sum(lines[S.ALLOCATED_MINOR])
    if withheld_minor < 0 or total + withheld_minor != pool_minor:
        raise ResidualsError(f"allocation: allocated {total} + withheld {withheld_minor} != "
                             f"pool {pool_minor}")
    bad = lines.filter(pl.col(S.PAID_MINOR) + pl.col(S.CARRIED_OUT_MINOR)
                       != pl.col(S.ALLOCATED_MINOR) + pl.col(S.CARRIED_IN_MINOR))
    if bad.height:
        raise ResidualsError(f"allocation: creator {bad[S.CREATOR_ID][0]!r}: paid + carried "
                             "out != allocated + carried in")
    cmp = carried_in.join(lines.select(S.CREATOR_ID, S.CARRIED_IN_MINOR), on=S.CREATOR_ID,
                          how="full", coalesce=True).with_columns(
        pl.col(S.CARRIED_MINOR, S.CARRIED_IN_MINOR).fill_null(0))
    off = cmp.filter(pl.col(S.CARRIED_MINOR) != pl.col(S.CARRIED_IN_MINOR))
    if off.height:
        r = off.row(0, named=True)
        raise ResidualsError(f"allocation: creator {r[S.CREATOR_ID]!r} carries in "
                             f"{r[S.CARRIED_IN_MINOR]}, but the ledger holds {r[S.CARRIED_MINOR]}")
    return lines


def _new_transaction(session: Session, kind: str, batch_id: str, memo: str,
                     reverses_id: int | None = None) -> int:
    tx = M.Transaction(kind=kind, batch_id=batch_id, memo=memo, reverses_id=reverses_id)
    session.add(tx)
    session.flush()
    return int(tx.id)


def _seal(session: Session, tx_id: int) -> None:
    session.execute(M.TransactionSeal.__table__.insert().values(transaction_id=tx_id))


def _post_entries(session: Session, tx_id: int, entries: pl.DataFrame, currency: str) -> int:
    """Insert entries (``account_id``, ``amount_minor``; zeros dropped) and seal the transaction."""
    df = entries.filter(pl.col(S.AMOUNT_MINOR) != 0).select(
        pl.lit(tx_id, pl.Int64).alias("transaction_id"),
        pl.col("account_id").cast(pl.Int64),
        pl.col(S.AMOUNT_MINOR).cast(pl.Int64),
        pl.lit(currency).alias(S.CURRENCY),
    )
    n = insert_frame(session, M.Entry.__tablename__, df)
    _seal(session, tx_id)
    return n


def _apply_balance_deltas(session: Session, deltas: pl.DataFrame) -> None:
    """Add ``delta`` to the stored balance of each (``account_id``, ``currency``).

    Refuses (before writing) a delta or a resulting balance beyond 64 bits:
    sums are exact (:func:`ledger.money.int_sum`), never wrapped round. The
    deltas go to a temporary table in one bulk write; the range check and the
    update are each one set-based statement over it (no per-account parameters).
    """
    deltas = _exact_deltas(deltas)
    if deltas.height == 0:
        return
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    conn.exec_driver_sql(
        "CREATE TEMP TABLE ledger_balance_delta (account_id BIGINT NOT NULL, "
        "currency VARCHAR(3) NOT NULL, delta BIGINT NOT NULL)"
        + (" ON COMMIT DROP" if pg else ""))
    insert_frame(session, "ledger_balance_delta", deltas.select("account_id", S.CURRENCY, "delta"))
    _check_balances_fit(session)
    conn.exec_driver_sql(
        "INSERT INTO balances (account_id, currency, balance_minor) "
        "SELECT account_id, currency, delta FROM ledger_balance_delta WHERE true "
        "ON CONFLICT (account_id, currency) DO UPDATE "
        "SET balance_minor = balances.balance_minor + excluded.balance_minor")
    conn.exec_driver_sql("DROP TABLE ledger_balance_delta")


def _exact_deltas(deltas: pl.DataFrame) -> pl.DataFrame:
    """Sum deltas per (account, currency) exactly; refuse a sum beyond 64 bits.

    When the largest delta times the number of deltas stays below 2**62, no sum
    can leave 64 bits and one int64 sum per group is exact; otherwise
    :func:`_split_deltas` sums high and low halves.
    """
    if deltas.height == 0:
        return deltas.select("account_id", S.CURRENCY, "delta")
    bound = max(abs(int(deltas["delta"].min())), abs(int(deltas["delta"].max())))
    if bound * deltas.height >= 2**62:
        return _split_deltas(deltas)
    return deltas.group_by("account_id", S.CURRENCY, maintain_order=True).agg(
        pl.col("delta").sum()).filter(pl.col("delta") != 0)


def _split_deltas(deltas: pl.DataFrame) -> pl.DataFrame:
    """:func:`_exact_deltas` for any int64 deltas: each is split into high and low 32
    bits, summed in int64 (exact), and only the sums near the 64-bit limit are
    recombined in Python integers."""
    parts = deltas.group_by("account_id", S.CURRENCY, maintain_order=True).agg(
        (pl.col("delta") // 2**32).sum().alias("hi"), (pl.col("delta") % 2**32).sum().alias("lo"))
    approx = pl.col("hi").cast(pl.Float64) * 2.0**32 + pl.col("lo").cast(pl.Float64)
    near = approx.abs() > 2.0**62
    small = parts.filter(~near).select("account_id", S.CURRENCY,
                                       (pl.col("hi") * 2**32 + pl.col("lo")).alias("delta"))
    big = parts.filter(near)
    exact = [hi * 2**32 + lo for hi, lo in zip(big["hi"].to_list(), big["lo"].to_list())]
    for acc, value in zip(big["account_id"].to_list(), exact):  # accounts near the limit only
        check_int64(value, f"account {acc}: the batch's total movement")
    big = big.select("account_id", S.CURRENCY, pl.Series("delta", exact, dtype=pl.Int64))
    return pl.concat([small, big]).filter(pl.col("delta") != 0)


def _check_balances_fit(session: Session) -> None:
    """Refuse the batch if any balance would leave the 64-bit range after the deltas in
    ``ledger_balance_delta``: the database finds the few sums near the limit (in floating
    point, with a wide margin), Python checks those exactly."""
    near = session.connection().exec_driver_sql(
        "SELECT a.code, d.currency, b.balance_minor, d.delta FROM ledger_balance_delta d "
        "JOIN balances b ON b.account_id = d.account_id AND b.currency = d.currency "
        "JOIN accounts a ON a.id = d.account_id "
        "WHERE abs(CAST(b.balance_minor AS DOUBLE PRECISION) "
        "+ CAST(d.delta AS DOUBLE PRECISION)) > 4.611686018427388e18").all()
    for code, cur, stored, delta in near:  # accounts near the limit only
        check_int64(int(stored) + int(delta), f"account {code} {cur}: the balance after this batch")


def _credits(clip_credits: pl.DataFrame | None) -> pl.DataFrame:
    """A request's clip credits with the stored dtypes (empty when there are none)."""
    if clip_credits is None:
        return pl.DataFrame(schema=_CREDIT_DTYPES)
    if S.CONFIDENCE not in clip_credits.columns:
        clip_credits = clip_credits.with_columns(pl.lit(None, pl.Float64).alias(S.CONFIDENCE))
    return clip_credits.select(pl.col(c).cast(_CREDIT_DTYPES[c]) for c in CREDIT_COLUMNS)


def _reverse_batch(session: Session, old: M.Batch, new_batch_id: str) -> tuple[int, pl.DataFrame]:
    """Post a reversal of each transaction of ``old``; returns (entries, balance deltas)."""
    tx_ids = session.execute(
        select(M.Transaction.id).where(M.Transaction.batch_id == old.batch_id,
                                       M.Transaction.kind != M.REVERSAL)
        .order_by(M.Transaction.id)).scalars().all()
    n = 0
    for old_tx in tx_ids:  # one per transaction of the old batch (two at most), not per row
        tx_id = _new_transaction(session, M.REVERSAL, new_batch_id,
                                 f"reverses transaction {old_tx} of batch {old.batch_id}",
                                 reverses_id=int(old_tx))
        n += session.execute(text(
            "INSERT INTO entries (transaction_id, account_id, amount_minor, currency) "
            "SELECT :new, account_id, -amount_minor, currency FROM entries "
            "WHERE transaction_id = :old ORDER BY id"), {"new": tx_id, "old": old_tx}).rowcount
        _seal(session, tx_id)
    e = M.Entry
    deltas = frame(session, select(e.account_id, e.currency, -func.sum(e.amount_minor))
                   .where(e.transaction_id.in_(tx_ids)).group_by(e.account_id, e.currency),
                   {"account_id": pl.Int64(), S.CURRENCY: pl.String(), "delta": pl.Int64()})
    return n, deltas


def _entries_frame(rows: Mapping[int, int]) -> pl.DataFrame:
    """``account_id``, ``amount_minor`` of fixed accounts (in the given order)."""
    return pl.DataFrame({"account_id": list(rows), S.AMOUNT_MINOR: list(rows.values())},
                        schema={"account_id": pl.Int64, S.AMOUNT_MINOR: pl.Int64})


def _as_deltas(entries: pl.DataFrame, currency: str) -> pl.DataFrame:
    """Entries (``account_id``, ``amount_minor``) as balance deltas
    (``account_id``, ``currency``, ``delta``): the one shape every step returns."""
    return entries.select(pl.col("account_id").cast(pl.Int64), pl.lit(currency).alias(S.CURRENCY),
                          pl.col(S.AMOUNT_MINOR).cast(pl.Int64).alias("delta"))


@dataclass(frozen=True)
class BatchPlan:
    """Where a new batch goes in the ledger, decided before any money is computed.

    ``standing`` is the batch this one supersedes (the period's current batch), if any.
    """

    batch_id: str
    period: str
    currency: str
    seq: int
    revision: int
    prev_hash: str | None
    standing: M.Batch | None

    @property
    def supersedes(self) -> str | None:
        return self.standing.batch_id if self.standing is not None else None


def check_period(period: str) -> None:
    """Refuse a period label the store does not accept."""
    if not re.fullmatch(S.PERIOD_PATTERN, period):
        raise ResidualsError(f"period={period!r}: expected a label such as 2026-10 "
                             "(letters, digits, '.', '_', '-'; at most 64 characters)")


def _check_money(session: Session, request: BatchRequest) -> None:
    """Refuse a pool <= 0 or beyond 64 bits, and a currency other than the fund's."""
    if request.pool_minor <= 0:
        raise ResidualsError(f"pool_minor={request.pool_minor}: expected > 0 minor units")
    check_int64(request.pool_minor, "pool_minor")
    currencies = session.execute(select(M.Batch.currency).distinct()).scalars().all()
    other = sorted(set(currencies) - {request.currency})
    if other:
        raise ResidualsError(f"currency={request.currency}: the creator fund's existing "
                             f"batches are in {', '.join(other)}; one fund holds one currency")


def plan(session: Session, request: BatchRequest, supersede: bool) -> BatchPlan:
    """Check ``request`` against the ledger and place it: sequence, revision, previous
    hash and the batch it supersedes. Writes nothing.

    Raises
    ------
    ResidualsError
        Pool <= 0; a currency other than the ledger's; another batch already stands
        for the period (without ``supersede``); supersede of a batch that is not the
        newest.
    """
    _check_money(session, request)
    b = M.Batch
    superseded_ids = select(b.supersedes_id).where(b.supersedes_id.is_not(None))
    standing = session.execute(
        select(b).where(b.period == request.period, b.batch_id.not_in(superseded_ids))
    ).scalar_one_or_none()
    tip = session.execute(select(b).order_by(b.seq.desc()).limit(1)).scalar_one_or_none()
    if standing is not None and not supersede:
        raise ResidualsError(
            f"period {request.period} already has batch {standing.batch_id[:12]} "
            f"(hash {standing.batch_hash[:12]}); posting a different batch for it needs "
            "`supersede`")
    if standing is not None and tip is not None and standing.batch_id != tip.batch_id:
        raise ResidualsError(
            f"`supersede`: batch {standing.batch_id[:12]} of period {request.period} is not "
            f"the newest batch (period {tip.period} came after it); only the newest batch "
            "can be superseded")
    revision = 1 + int(session.execute(
        select(func.coalesce(func.max(b.revision), 0)).where(b.period == request.period)
    ).scalar_one())
    return BatchPlan(request.batch_id, request.period, request.currency,
                     seq=1 + (tip.seq if tip is not None else 0), revision=revision,
                     prev_hash=tip.batch_hash if tip is not None else None, standing=standing)


def carried_in(session: Session, plan_: BatchPlan) -> pl.DataFrame:
    """``creator_id``, ``carried_minor`` (sorted): what each creator carries into the
    batch; for a supersede, what they carried before the batch being replaced."""
    carried = payable_balances(session, plan_.currency)
    if plan_.standing is not None:  # undo every payable entry of the batch being replaced
        e, t, a = M.Entry, M.Transaction, M.Account
        old = frame(session, select(a.creator_id, func.sum(e.amount_minor))
                    .join(t, t.id == e.transaction_id).join(a, a.id == e.account_id)
                    .where(t.batch_id == plan_.standing.batch_id,
                           t.kind.in_((M.ALLOCATION, M.PAYOUT, M.ADJUSTMENT)),
                           a.kind == M.CREATOR_PAYABLE, e.currency == plan_.currency)
                    .group_by(a.creator_id), {S.CREATOR_ID: pl.String(), "undo": pl.Int64()})
        carried = carried.join(old, on=S.CREATOR_ID, how="full", coalesce=True).select(
            S.CREATOR_ID, (pl.col(S.CARRIED_MINOR).fill_null(0) - pl.col("undo").fill_null(0))
            .alias(S.CARRIED_MINOR)).filter(pl.col(S.CARRIED_MINOR) != 0)
    return carried.sort(S.CREATOR_ID)


def build_manifest(plan_: BatchPlan, request: BatchRequest, lines: pl.DataFrame,
                   withheld_minor: int, code_version: str) -> dict[str, Any]:
    """The batch's manifest (its sha256 is the batch hash)."""
    return {
        "format": MANIFEST_FORMAT,
        "batch_id": plan_.batch_id,
        "seq": plan_.seq,
        "period": plan_.period,
        "revision": plan_.revision,
        "supersedes": plan_.supersedes,
        "prev_hash": plan_.prev_hash,
        "currency": plan_.currency,
        "pool_minor": request.pool_minor,
        "withheld_minor": withheld_minor,
        "paid_minor": int(lines[S.PAID_MINOR].sum()),
        "creators": lines.height,
        "creators_paid": int((lines[S.PAID_MINOR] > 0).sum()),
        "policy": {"name": request.policy_name, "hash": request.policy_hash,
                   "text": request.policy_text},
        "inputs": dict(request.input_hashes),
        "params": dict(request.params),
        MANIFEST_CONTEXT: dict(request.context),
        "code_version": code_version,
        "lines_sha256": lines_digest(lines, MANIFEST_FORMAT),
        "credits_sha256": credits_digest(request.clip_credits, MANIFEST_FORMAT),
    }


def write_batch_row(session: Session, request: BatchRequest, manifest: Mapping[str, Any]) -> str:
    """Insert the batch row for ``manifest``; returns the batch hash."""
    batch_hash = manifest_hash(manifest)
    session.add(M.Batch(
        batch_id=manifest["batch_id"], seq=manifest["seq"], period=manifest["period"],
        revision=manifest["revision"], supersedes_id=manifest["supersedes"],
        policy_name=request.policy_name, policy_hash=request.policy_hash,
        currency=manifest["currency"], pool_minor=manifest["pool_minor"],
        withheld_minor=manifest["withheld_minor"], creators_paid=manifest["creators_paid"],
        paid_minor=manifest["paid_minor"], prev_hash=manifest["prev_hash"],
        batch_hash=batch_hash, manifest=dict(manifest),
    ))
    session.flush()
    return batch_hash


def post_money(session: Session, plan_: BatchPlan, request: BatchRequest, lines: pl.DataFrame,
               withheld_minor: int) -> tuple[int, pl.DataFrame]:
    """Post the allocation and payout transactions (and the reversals of a superseded
    batch); returns (entries written, balance deltas)."""
    n_entries, deltas = 0, []
    if plan_.standing is not None:
        n_entries, reversed_ = _reverse_batch(session, plan_.standing, plan_.batch_id)
        deltas.append(reversed_)
    fund = _fixed_account(session, FUND_CODE, M.CREATOR_FUND)
    transit = _fixed_account(session, TRANSIT_CODE, M.PAYOUTS_IN_TRANSIT)
    platform = _fixed_account(session, PLATFORM_CODE, M.PLATFORM)
    with_acc = lines.join(ensure_creators(session, request.creators), on=S.CREATOR_ID,
                          how="left")
    alloc = pl.concat([
        _entries_frame({fund: -request.pool_minor, platform: withheld_minor}),
        with_acc.select("account_id", pl.col(S.ALLOCATED_MINOR).alias(S.AMOUNT_MINOR)),
    ])
    moves = [(M.ALLOCATION, f"allocation of period {plan_.period}", alloc)]
    paid_total = int(lines[S.PAID_MINOR].sum())
    if paid_total > 0:
        moves.append((M.PAYOUT, f"payouts of period {plan_.period}", pl.concat([
            _entries_frame({transit: paid_total}),
            with_acc.select("account_id", (-pl.col(S.PAID_MINOR)).alias(S.AMOUNT_MINOR)),
        ])))
    for kind, memo, entries in moves:
        tx = _new_transaction(session, kind, plan_.batch_id, memo)
        n_entries += _post_entries(session, tx, entries, plan_.currency)
        deltas.append(_as_deltas(entries, plan_.currency))
    return n_entries, pl.concat(deltas)


def write_statements(session: Session, batch_id: str, lines: pl.DataFrame,
                     clip_credits: pl.DataFrame | None) -> None:
    """Insert the batch's statement lines and its clip credits."""
    # in key order (creator; clip): each index takes its rows page by page
    insert_frame(session, M.Statement.__tablename__,
                 lines.with_columns(pl.lit(batch_id).alias("batch_id")).sort(S.CREATOR_ID))
    credits = _credits(clip_credits)
    if credits.height:
        insert_frame(session, M.BatchClipCredit.__tablename__,
                     credits.select(pl.lit(batch_id).alias("batch_id"), *CREDIT_COLUMNS)
                     .sort(S.CLIP_ID, S.CREATOR_ID))


def post_batch(
    session: Session,
    request: BatchRequest,
    allocator: Allocator,
    *,
    supersede: bool = False,
    code_version: str = "",
) -> PostOutcome:
    """Post ``request`` as one batch in the caller's (write-locked) transaction.

    The caller commits; see :func:`ledger.store.engine.write_session`. Returns
    ``status="exists"`` without writing anything when the batch id is already
    posted. Steps: :func:`plan`, the upheld claims it applies
    (:func:`ledger.store.claims.pending_adjustments`), :func:`carried_in`, the allocator and
    :func:`check_lines`, :func:`build_manifest` and :func:`write_batch_row`,
    :func:`post_money`, :func:`write_statements`, then the balance deltas.

    Raises
    ------
    ResidualsError
        A bad period label; what :func:`plan` refuses; allocation lines that fail
        :func:`check_lines`.
    """
    check_period(request.period)
    existing = find_batch(session, request.batch_id)
    if existing is not None:
        return _outcome_exists(session, existing)
    plan_ = plan(session, request, supersede)
    from ledger.store import claims  # claims posts through this module's helpers
    from ledger.store.payout_states import close_superseded, open_payouts

    if plan_.standing is not None:
        close_superseded(session, plan_.standing.batch_id)
    claims.expire_due(session)  # claims past their deadline get their recorded outcome
    adjust = claims.pending_adjustments(session, standing=plan_.supersedes,
                                        currency=plan_.currency, pool_minor=request.pool_minor)
    # The batch allocates what the pool-funded adjustments leave; its id stays the request's.
    request = dataclasses.replace(request, pool_minor=adjust.pool_minor)
    carried = claims.with_adjustments(carried_in(session, plan_), adjust)
    result = allocator(carried, pool_minor=adjust.pool_minor)
    lines = check_lines(result.lines, pool_minor=request.pool_minor,
                        withheld_minor=result.withheld_minor, carried_in=carried,
                        creators=request.creators)
    manifest = build_manifest(plan_, request, lines, result.withheld_minor, code_version)
    if adjust.claims.height:
        manifest[claims.MANIFEST_KEY] = adjust.manifest()
    batch_hash = write_batch_row(session, request, manifest)
    t_entries = time.perf_counter()
    n_adjust, adjust_deltas = claims.post_adjustments(
        session, batch_id=plan_.batch_id, period=plan_.period, currency=plan_.currency,
        adjustments=adjust)
    n_entries, deltas = post_money(session, plan_, request, lines, result.withheld_minor)
    n_entries, deltas = n_entries + n_adjust, pl.concat([adjust_deltas, deltas])
    t_entries = time.perf_counter() - t_entries
    write_statements(session, plan_.batch_id, lines, request.clip_credits)
    open_payouts(session, plan_.batch_id, lines, plan_.currency)
    _apply_balance_deltas(session, deltas)
    return PostOutcome(
        "posted", plan_.batch_id, batch_hash, plan_.period, plan_.seq,
        superseded=plan_.supersedes, entries=n_entries, creators=lines.height,
        creators_paid=manifest["creators_paid"], paid_minor=manifest["paid_minor"],
        pool_minor=request.pool_minor, withheld_minor=result.withheld_minor,
        currency=plan_.currency, entries_seconds=t_entries,
    )
