"""SQLAlchemy 2.0 models of the ledger of record.

Rule: money lives only in :class:`Entry` rows, as signed integer minor units
(debits positive, credits negative), and the entries of every transaction sum
to zero per currency. Entries, transactions, seals, batches, statements and
clip credits are append-only: the database itself refuses ``UPDATE`` and
``DELETE`` on them (triggers created by the migrations), and a correction is a
new reversing transaction that references the original. :class:`Balance` is
the only mutable money table: a cache of ``sum(entries)`` per account and
currency that ``residuals ledger verify`` recomputes and compares.

How "sums to zero" is enforced inside the database, on SQLite and PostgreSQL
alike: every ``transactions`` row carries a *deferred* foreign key to
``transaction_seals`` on its own id, so no database transaction can commit a
ledger transaction without its seal; inserting the seal runs a trigger that
refuses it unless the entries balance per currency; and inserting an entry
into an already sealed transaction is refused. Hence a committed transaction
always has a seal, and its entries balanced when it was sealed and can never
change afterwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contract import schema as S

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Account kinds (``accounts.kind``).
CREATOR_PAYABLE = "creator_payable"
CREATOR_FUND = "creator_fund"
PAYOUTS_IN_TRANSIT = "payouts_in_transit"
PLATFORM = "platform"
DISBURSED = "disbursed"
ACCOUNT_KINDS = (CREATOR_PAYABLE, CREATOR_FUND, PAYOUTS_IN_TRANSIT, PLATFORM, DISBURSED)

# Transaction kinds (``transactions.kind``).
ALLOCATION = "allocation"
PAYOUT = "payout"
REVERSAL = "reversal"
DISBURSEMENT = "disbursement"
"""A payout the provider reports paid: in transit -> disbursed."""
RECREDIT = "recredit"
"""A payout that failed, came back or was canceled: its amount back on the creator's payable."""
ADJUSTMENT = "adjustment"
"""Upheld claims, posted by the next batch before its allocation."""
TRANSACTION_KINDS = (ALLOCATION, PAYOUT, REVERSAL, DISBURSEMENT, RECREDIT, ADJUSTMENT)
BATCH_KINDS = (ALLOCATION, PAYOUT, ADJUSTMENT)
"""The transactions a batch manifest explains (besides reversals); a supersede reverses them."""

# Payout states (``payout_events.state``) and hold reasons (``payout_events.reason``).
PENDING, SUBMITTED, HELD, PAID, FAILED, RETURNED, CANCELED = (
    "pending", "submitted", "held", "paid", "failed", "returned", "canceled")
PAYOUT_STATES = (PENDING, SUBMITTED, HELD, PAID, FAILED, RETURNED, CANCELED)
NO_PAYOUT_METHOD, TAX_FORM_MISSING, UNDER_DISPUTE = (
    "no_payout_method", "tax_form_missing", "under_dispute")
HOLD_REASONS = (NO_PAYOUT_METHOD, TAX_FORM_MISSING, UNDER_DISPUTE)
SUPERSEDED = "superseded"
"""Reason of the cancel event that closes a payout of a superseded batch (no money moves:
the batch's reversal already put the amount back)."""
TAX_FORM_STATES = ("missing", "submitted", "accepted")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable migrations)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON}


class Creator(Base):
    """A person whose clips trained the model; mirrors ``creators.parquet``."""

    __tablename__ = "creators"

    creator_id: Mapped[str] = mapped_column(String(S.MAX_ID_CHARS), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(S.MAX_NAME_CHARS))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Account(Base):
    """A ledger account.

    ``code`` is the stable human key: ``fund``, ``transit``, ``platform`` or
    ``payable/<creator_id>``. Creator payables hold what the platform owes a
    creator and has not yet sent (positive balance = owed).
    """

    __tablename__ = "accounts"
    __table_args__ = (  # append-only too: UPDATE/DELETE refused by triggers (migration 0002)
        CheckConstraint(_in("kind", ACCOUNT_KINDS), name="kind"),
        CheckConstraint(
            f"(kind = '{CREATOR_PAYABLE}') = (creator_id IS NOT NULL)", name="payable_creator"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(240), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    creator_id: Mapped[str | None] = mapped_column(
        String(S.MAX_ID_CHARS), ForeignKey("creators.creator_id"), index=True
    )


class Batch(Base):
    """One posted payout batch: the unit of idempotency and of the hash chain.

    ``batch_id`` = sha256 of (period, policy text, pool, currency, input hashes),
    so the same run twice is recognised. ``seq`` is the batch's position in the
    chain, ``prev_hash`` the previous batch's ``batch_hash``; ``batch_hash`` =
    sha256 of the canonical JSON ``manifest`` (which holds ``prev_hash``).
    ``revision`` counts the batches of one period (1, then 2 after a supersede);
    ``supersedes_id`` names the batch this one replaced.
    """

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("period", "revision", name="uq_batches_period_revision"),
        CheckConstraint("pool_minor > 0", name="pool_positive"),
        CheckConstraint("withheld_minor >= 0", name="withheld_nonneg"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("revision >= 1", name="revision_positive"),
    )

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    period: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    supersedes_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("batches.batch_id"), unique=True
    )
    policy_name: Mapped[str] = mapped_column(String(S.MAX_POLICY_NAME_CHARS))
    policy_hash: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    pool_minor: Mapped[int] = mapped_column(BigInteger)
    withheld_minor: Mapped[int] = mapped_column(BigInteger)
    creators_paid: Mapped[int] = mapped_column(Integer)
    paid_minor: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    batch_hash: Mapped[str] = mapped_column(String(64), unique=True)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Transaction(Base):
    """A ledger transaction: a set of entries that sums to zero per currency.

    ``reverses_id`` points at the transaction a reversal undoes (a reversal's
    entries are the original's, negated). The deferred foreign key on ``id``
    to ``transaction_seals`` makes an unsealed transaction uncommittable.
    """

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(_in("kind", TRANSACTION_KINDS), name="kind"),
        CheckConstraint(
            f"(kind = '{REVERSAL}') = (reverses_id IS NOT NULL)", name="reversal_ref"
        ),
        ForeignKeyConstraint(
            ["id"], ["transaction_seals.transaction_id"], name="fk_transactions_sealed",
            deferrable=True, initially="DEFERRED", use_alter=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[str] = mapped_column(String(64), ForeignKey("batches.batch_id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("transactions.id"), unique=True
    )
    memo: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class TransactionSeal(Base):
    """Closes a transaction; the insert trigger refuses it unless entries balance."""

    __tablename__ = "transaction_seals"

    transaction_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("transactions.id"), primary_key=True
    )
    sealed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Entry(Base):
    """One leg of a transaction: ``amount_minor`` > 0 debits, < 0 credits ``account_id``.

    On PostgreSQL the references to ``transactions`` and ``accounts`` are
    checked by a statement-level trigger (set-based, once per INSERT or COPY)
    instead of declarative foreign keys (once per row); see migration 0002.
    """

    __tablename__ = "entries"
    __table_args__ = (
        CheckConstraint("amount_minor <> 0", name="nonzero"),
        CheckConstraint("length(currency) = 3", name="currency_code"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("transactions.id"), index=True
    )
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class Balance(Base):
    """Stored balance per (account, currency): a cache of ``sum(entries.amount_minor)``.

    Written in the same database transaction as the entries it summarises;
    ``ledger verify`` recomputes it from entries.
    """

    __tablename__ = "balances"

    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    balance_minor: Mapped[int] = mapped_column(BigInteger)


class Statement(Base):
    """One creator's line in one batch: earned, carried and paid (the statement of record)."""

    __tablename__ = "statements"
    __table_args__ = (
        CheckConstraint(
            "paid_minor + carried_out_minor = allocated_minor + carried_in_minor",
            name="conserves",
        ),
        CheckConstraint(
            "allocated_minor >= 0 AND carried_in_minor >= 0 AND paid_minor >= 0 "
            "AND carried_out_minor >= 0", name="nonneg",
        ),
    )

    batch_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("batches.batch_id"), primary_key=True
    )
    creator_id: Mapped[str] = mapped_column(
        String(S.MAX_ID_CHARS), ForeignKey("creators.creator_id"), primary_key=True, index=True
    )
    share: Mapped[float] = mapped_column(Float)
    exact_minor: Mapped[float] = mapped_column(Float)
    allocated_minor: Mapped[int] = mapped_column(BigInteger)
    carried_in_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger)
    carried_out_minor: Mapped[int] = mapped_column(BigInteger)
    eligible: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(200))


class BatchClipCredit(Base):
    """The clips that earned a creator's share in a batch: summed attribution weight per
    clip, and how strongly the generations it earned from resemble their credited clips."""

    __tablename__ = "batch_clip_credits"
    __table_args__ = (Index("ix_batch_clip_credits_creator", "creator_id", "batch_id"),)

    batch_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("batches.batch_id"), primary_key=True
    )
    clip_id: Mapped[str] = mapped_column(String(S.MAX_ID_CHARS), primary_key=True)
    creator_id: Mapped[str] = mapped_column(String(S.MAX_ID_CHARS),
                                            ForeignKey("creators.creator_id"))
    weight: Mapped[float] = mapped_column(Float)
    #: Attribution-weight-weighted mean confidence of the generations the clip earned
    #: from; NULL when the attributions had no confidence column (migration 0007).
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)



class Payout(Base):
    """One creator payout of a batch: what the batch sent to transit for that creator.

    ``payout_id`` is derived from (batch id, creator id), so it is stable and the same
    in every export; its state is the last of its :class:`PayoutEvent` rows.
    Append-only (triggers, migration 0008).
    """

    __tablename__ = "payouts"
    __table_args__ = (
        UniqueConstraint("batch_id", "creator_id", name="uq_payouts_batch_creator"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    payout_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), ForeignKey("batches.batch_id"))
    creator_id: Mapped[str] = mapped_column(String(S.MAX_ID_CHARS),
                                            ForeignKey("creators.creator_id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class PayoutEvent(Base):
    """One state change of a payout, in order (``seq`` 1, 2, ...), never changed.

    ``transaction_id`` names the ledger transaction that moved its money (paid,
    failed, returned and canceled do; pending, held and submitted do not; a cancel
    because the batch was superseded does not either): one transaction per (batch,
    state) of an import or a transition, shared by the events it settles. ``source`` says what recorded
    it: ``batch``, ``profile``, ``export:<sha256>``, ``import:<sha256>`` of the file.
    A partial unique index allows each of submitted, paid, failed, returned and
    canceled at most once per payout: a payout is never paid twice.
    """

    __tablename__ = "payout_events"
    __table_args__ = (
        UniqueConstraint("payout_id", "seq", name="uq_payout_events_payout_seq"),
        CheckConstraint(_in("state", PAYOUT_STATES), name="state"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index("uq_payout_events_once", "payout_id", "state", unique=True,
              sqlite_where=text("state NOT IN ('pending', 'held')"),
              postgresql_where=text("state NOT IN ('pending', 'held')")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payout_id: Mapped[str] = mapped_column(String(64), ForeignKey("payouts.payout_id"))
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    provider_reference: Mapped[str | None] = mapped_column(String(S.MAX_ID_CHARS))
    failure_code: Mapped[str | None] = mapped_column(String(S.MAX_ID_CHARS))
    occurred_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    source: Mapped[str] = mapped_column(String(80))
    transaction_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("transactions.id"))


class CreatorProfile(Base):
    """A creator's payout profile as set at one moment; the newest row (highest ``id``)
    is the current one. Append-only: a change is a new row.

    ``payout_method`` is the provider's token for where the money goes (a PayPal
    e-mail or payer id, a Stripe connected account); ``tax_form`` is ``missing``,
    ``submitted`` or ``accepted``. Not a foreign key to ``creators``: a profile may
    be set before the creator's first batch.
    """

    __tablename__ = "creator_profiles"
    __table_args__ = (
        CheckConstraint(_in("tax_form", TAX_FORM_STATES), name="tax_form"),
        Index("ix_creator_profiles_creator", "creator_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    creator_id: Mapped[str] = mapped_column(String(S.MAX_ID_CHARS))
    payout_method: Mapped[str | None] = mapped_column(String(S.MAX_ID_CHARS))
    country: Mapped[str | None] = mapped_column(String(2))
    tax_form: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())


# Claims (``claims.kind``) and their outcomes (``claim_events.outcome``): see ledger.store.claims.
COPIED_CLIP = "copied_clip"
WRONG_AMOUNT = "wrong_amount"
CLAIM_KINDS = (COPIED_CLIP, WRONG_AMOUNT)
UPHELD = "upheld"
REJECTED = "rejected"
EXPIRED = "expired"
APPLIED = "applied"
DECISIONS = (UPHELD, REJECTED, EXPIRED)
CLAIM_OUTCOMES = (*DECISIONS, APPLIED)
FUNDING_POOL = "pool"
FUNDING_PLATFORM = "platform"
FUNDINGS = (FUNDING_POOL, FUNDING_PLATFORM)


class Claim(Base):
    """A creator's claim: "this generation copied my clip" or "this amount is wrong".

    Append-only (triggers, migration 0009): what happens to a claim is a
    :class:`ClaimEvent`. ``period`` names the statement the claim is about;
    ``expires_at`` is fixed when the claim is opened.
    """

    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint(_in("kind", CLAIM_KINDS), name="kind"),
        CheckConstraint(f"kind <> '{COPIED_CLIP}' OR (generation_id IS NOT NULL "
                        "AND clip_id IS NOT NULL)", name="copied_clip_ids"),
        CheckConstraint(f"kind <> '{WRONG_AMOUNT}' OR text IS NOT NULL", name="wrong_amount_text"),
        CheckConstraint(f"text IS NULL OR length(text) <= {S.MAX_CLAIM_TEXT_CHARS}",
                        name="text_length"),
        CheckConstraint("expires_at > opened_at", name="expires_after_opened"),
    )

    claim_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    creator_id: Mapped[str] = mapped_column(
        String(S.MAX_ID_CHARS), ForeignKey("creators.creator_id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(64))
    generation_id: Mapped[str | None] = mapped_column(String(S.MAX_ID_CHARS))
    clip_id: Mapped[str | None] = mapped_column(String(S.MAX_ID_CHARS))
    text: Mapped[str | None] = mapped_column(Text)
    opened_by: Mapped[str] = mapped_column(String(S.MAX_ACTOR_CHARS))
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ClaimEvent(Base):
    """What happened to a claim, in order (``seq`` from 1), by whom (``actor``) and when.

    A decision (upheld, rejected, expired) is made once per claim (a partial unique
    index); ``applied`` names the batch whose adjustment transaction paid an upheld
    claim (once per batch; again only if that batch is superseded).
    """

    __tablename__ = "claim_events"
    __table_args__ = (
        CheckConstraint(_in("outcome", CLAIM_OUTCOMES), name="outcome"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint(f"(outcome = '{UPHELD}') = (amount_minor IS NOT NULL AND amount_minor > 0 "
                        "AND currency IS NOT NULL AND funding IS NOT NULL)", name="upheld_amount"),
        CheckConstraint(f"funding IS NULL OR {_in('funding', FUNDINGS)}", name="funding"),
        CheckConstraint(f"(outcome = '{REJECTED}') = (reason IS NOT NULL)", name="rejected_reason"),
        CheckConstraint(f"reason IS NULL OR length(reason) <= {S.MAX_CLAIM_TEXT_CHARS}",
                        name="reason_length"),
        CheckConstraint(f"(outcome = '{APPLIED}') = (batch_id IS NOT NULL)", name="applied_batch"),
        Index("uq_claim_events_decision", "claim_id", unique=True,
              sqlite_where=text(f"outcome IN ('{UPHELD}', '{REJECTED}', '{EXPIRED}')"),
              postgresql_where=text(f"outcome IN ('{UPHELD}', '{REJECTED}', '{EXPIRED}')")),
        Index("uq_claim_events_applied", "claim_id", "batch_id", unique=True,
              sqlite_where=text(f"outcome = '{APPLIED}'"),
              postgresql_where=text(f"outcome = '{APPLIED}'")),
    )

    claim_id: Mapped[int] = mapped_column(BigId, ForeignKey("claims.claim_id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    funding: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("batches.batch_id"),
                                                 index=True)
    actor: Mapped[str] = mapped_column(String(S.MAX_ACTOR_CHARS))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
