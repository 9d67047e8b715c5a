"""Claims and disputes: ``claims``, ``claim_events`` and the ``adjustment`` transaction kind.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-03

Why: a creator's claim ("this generation copied my clip", "this amount is
wrong") and what happened to it (upheld with an amount and its funding,
rejected with a reason, expired, applied by a batch) live in the ledger
database, append-only like the ledger itself: UPDATE and DELETE are refused
by triggers on both tables (and TRUNCATE on PostgreSQL). An upheld claim is
paid by an ``adjustment`` transaction of the next batch, so the kinds allowed
by ``transactions.kind`` gain ``adjustment``: the value is added to whatever
list the constraint holds (so the migration composes with others that extend
it). On SQLite the CHECK text is rewritten in the schema table, the procedure
SQLite documents for changes that leave the stored rows valid (a widened
CHECK), because rebuilding ``transactions`` would trip its own foreign keys.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KIND = "adjustment"
TABLES = ("claims", "claim_events")
TEXT_CHARS = 2000  # contract.schema.MAX_CLAIM_TEXT_CHARS when written
DECISION = "outcome IN ('upheld', 'rejected', 'expired')"
APPLIED = "outcome = 'applied'"
_LIST = re.compile(r"(kind IN \()([^)]*)(\))")


def _kinds_sql(sql: str, add: bool) -> str:
    """``sql`` with ``'adjustment'`` added to (or removed from) its ``kind IN (...)`` list."""
    def edit(m: re.Match[str]) -> str:
        values = [v.strip() for v in m.group(2).split(",") if v.strip()]
        values = [v for v in values if v != f"'{KIND}'"] + ([f"'{KIND}'"] if add else [])
        return m.group(1) + ", ".join(values) + m.group(3)

    out, n = _LIST.subn(edit, sql, count=1)
    if n != 1:
        raise RuntimeError("transactions: no kind IN (...) check constraint found")
    return out


def _sqlite_kinds(add: bool) -> None:
    conn = op.get_bind()
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' "
                               "AND name = 'transactions'").scalar_one()
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.execute(sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' "
                         "AND name = 'transactions'"), {"sql": _kinds_sql(sql, add)})
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _postgres_kinds(add: bool) -> None:
    conn = op.get_bind()
    definition = conn.exec_driver_sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conname = 'ck_transactions_kind'").scalar_one()
    values = re.findall(r"'([^']*)'", definition)
    values = [v for v in values if v != KIND] + ([KIND] if add else [])
    op.execute("ALTER TABLE transactions DROP CONSTRAINT ck_transactions_kind")
    op.execute("ALTER TABLE transactions ADD CONSTRAINT ck_transactions_kind CHECK "
               f"(kind IN ({', '.join(repr(v) for v in values)}))")


def _create_tables() -> None:
    op.create_table(
        "claims",
        sa.Column("claim_id", BigId, autoincrement=True, nullable=False),
        sa.Column("creator_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=64), nullable=False),
        sa.Column("generation_id", sa.String(length=200), nullable=True),
        sa.Column("clip_id", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("opened_by", sa.String(length=200), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('copied_clip', 'wrong_amount')", name="ck_claims_kind"),
        sa.CheckConstraint("kind <> 'copied_clip' OR (generation_id IS NOT NULL AND clip_id IS "
                           "NOT NULL)", name="ck_claims_copied_clip_ids"),
        sa.CheckConstraint("kind <> 'wrong_amount' OR text IS NOT NULL",
                           name="ck_claims_wrong_amount_text"),
        sa.CheckConstraint(f"text IS NULL OR length(text) <= {TEXT_CHARS}",
                           name="ck_claims_text_length"),
        sa.CheckConstraint("expires_at > opened_at", name="ck_claims_expires_after_opened"),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.creator_id"],
                                name="fk_claims_creator_id_creators"),
        sa.PrimaryKeyConstraint("claim_id", name="pk_claims"),
    )
    op.create_index("ix_claims_creator_id", "claims", ["creator_id"], unique=False)
    op.create_table(
        "claim_events",
        sa.Column("claim_id", BigId, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("funding", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outcome IN ('upheld', 'rejected', 'expired', 'applied')",
                           name="ck_claim_events_outcome"),
        sa.CheckConstraint("seq >= 1", name="ck_claim_events_seq_positive"),
        sa.CheckConstraint("(outcome = 'upheld') = (amount_minor IS NOT NULL AND amount_minor > 0 "
                           "AND currency IS NOT NULL AND funding IS NOT NULL)",
                           name="ck_claim_events_upheld_amount"),
        sa.CheckConstraint("funding IS NULL OR funding IN ('pool', 'platform')",
                           name="ck_claim_events_funding"),
        sa.CheckConstraint("(outcome = 'rejected') = (reason IS NOT NULL)",
                           name="ck_claim_events_rejected_reason"),
        sa.CheckConstraint(f"reason IS NULL OR length(reason) <= {TEXT_CHARS}",
                           name="ck_claim_events_reason_length"),
        sa.CheckConstraint("(outcome = 'applied') = (batch_id IS NOT NULL)",
                           name="ck_claim_events_applied_batch"),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.claim_id"],
                                name="fk_claim_events_claim_id_claims"),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.batch_id"],
                                name="fk_claim_events_batch_id_batches"),
        sa.PrimaryKeyConstraint("claim_id", "seq", name="pk_claim_events"),
    )
    op.create_index("ix_claim_events_batch_id", "claim_events", ["batch_id"], unique=False)
    op.create_index("uq_claim_events_decision", "claim_events", ["claim_id"], unique=True,
                    sqlite_where=sa.text(DECISION), postgresql_where=sa.text(DECISION))
    op.create_index("uq_claim_events_applied", "claim_events", ["claim_id", "batch_id"],
                    unique=True, sqlite_where=sa.text(APPLIED), postgresql_where=sa.text(APPLIED))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _create_tables()
    for table in TABLES:
        if sqlite:
            for what in ("UPDATE", "DELETE"):
                op.execute(f"""CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table}
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: {what} on {table} refused'); END""")
        else:
            op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
ON {table} FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""")
    (_sqlite_kinds if sqlite else _postgres_kinds)(True)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    (_sqlite_kinds if sqlite else _postgres_kinds)(False)
    op.drop_table("claim_events")
    op.drop_table("claims")
