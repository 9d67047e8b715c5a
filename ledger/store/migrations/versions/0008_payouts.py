"""Payout lifecycle: payouts, their append-only events, creator payout profiles.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-03

Why: a batch ended at the payout file; what the provider did with each payout
(paid, failed, returned) and what could not be sent (no payout method, no tax
form) lived outside the ledger, where nothing verified it. ``payouts`` holds one
row per creator payout of a batch, ``payout_events`` its state changes in order
(each money-moving change names its ledger transaction), ``creator_profiles``
the history of each creator's payout method, country and tax form. All three
refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL). The account kind
``disbursed`` and the transaction kinds ``disbursement`` and ``recredit`` join
the CHECK constraints (on SQLite by rewriting the table's declaration, SQLite's
documented way to relax a CHECK without touching the stored rows).

Existing batches get their payouts: a standing batch's are recorded ``pending``
then ``submitted`` (their payout file was written before payouts were
tracked), a superseded batch's ``pending`` then ``canceled`` (superseded).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NEW_TABLES = ("payouts", "payout_events", "creator_profiles")
OLD_ACCOUNT_KINDS = "('creator_payable', 'creator_fund', 'payouts_in_transit', 'platform')"
NEW_ACCOUNT_KINDS = ("('creator_payable', 'creator_fund', 'payouts_in_transit', 'platform', "
                     "'disbursed')")
OLD_TX_KINDS = "('allocation', 'payout', 'reversal')"
NEW_TX_KINDS = "('allocation', 'payout', 'reversal', 'disbursement', 'recredit')"
STATES = "('pending', 'submitted', 'held', 'paid', 'failed', 'returned', 'canceled')"
ONCE = "state NOT IN ('pending', 'held')"


def _sqlite_relax(table: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in the declaration of ``table`` (a CHECK's IN list)."""
    conn = op.get_bind()
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND "
                               f"name = '{table}'").scalar_one()
    if sql.count(old) != 1:
        raise RuntimeError(f"migration 0008: {table}'s declaration does not hold {old} once")
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                         (sql.replace(old, new), table))
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _kinds(accounts: str, transactions: str, old_a: str, old_t: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_relax("accounts", old_a, accounts)
        _sqlite_relax("transactions", old_t, transactions)
        return
    op.drop_constraint(op.f("ck_accounts_kind"), "accounts", type_="check")
    op.create_check_constraint(op.f("ck_accounts_kind"), "accounts", f"kind IN {accounts}")
    op.drop_constraint(op.f("ck_transactions_kind"), "transactions", type_="check")
    op.create_check_constraint(op.f("ck_transactions_kind"), "transactions",
                               f"kind IN {transactions}")


def _tables() -> None:
    op.create_table(
        "payouts",
        sa.Column("payout_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("creator_id", sa.String(200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payouts_amount_positive")),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.batch_id"],
                                name="fk_payouts_batch_id_batches"),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.creator_id"],
                                name="fk_payouts_creator_id_creators"),
        sa.PrimaryKeyConstraint("payout_id", name="pk_payouts"),
        sa.UniqueConstraint("batch_id", "creator_id", name="uq_payouts_batch_creator"),
    )
    op.create_index("ix_payouts_creator_id", "payouts", ["creator_id"])
    op.create_table(
        "payout_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("payout_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("provider_reference", sa.String(200), nullable=True),
        sa.Column("failure_code", sa.String(200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("transaction_id", BigId, nullable=True),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_payout_events_state")),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_payout_events_seq_positive")),
        sa.ForeignKeyConstraint(["payout_id"], ["payouts.payout_id"],
                                name="fk_payout_events_payout_id_payouts"),
        sa.ForeignKeyConstraint(["transaction_id"], ["transactions.id"],
                                name="fk_payout_events_transaction_id_transactions"),
        sa.PrimaryKeyConstraint("id", name="pk_payout_events"),
        sa.UniqueConstraint("payout_id", "seq", name="uq_payout_events_payout_seq"),
        sa.UniqueConstraint("transaction_id", name="uq_payout_events_transaction_id"),
    )
    op.create_index("uq_payout_events_once", "payout_events", ["payout_id", "state"],
                    unique=True, sqlite_where=sa.text(ONCE), postgresql_where=sa.text(ONCE))
    op.create_table(
        "creator_profiles",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("creator_id", sa.String(200), nullable=False),
        sa.Column("payout_method", sa.String(200), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("tax_form", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.CheckConstraint("tax_form IN ('missing', 'submitted', 'accepted')",
                           name=op.f("ck_creator_profiles_tax_form")),
        sa.PrimaryKeyConstraint("id", name="pk_creator_profiles"),
    )
    op.create_index("ix_creator_profiles_creator", "creator_profiles", ["creator_id", "id"])


def _append_only() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for t in NEW_TABLES:
        if sqlite:
            for what in ("UPDATE", "DELETE"):
                op.execute(f"""CREATE TRIGGER {t}_no_{what.lower()} BEFORE {what} ON {t}
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: {what} on {t} refused'); END""")
        else:
            op.execute(f"""CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
ON {t} FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""")


def _backfill() -> None:
    """Payouts of the batches posted before this revision (see the module docstring)."""
    from ledger.store.payout_states import payout_id

    conn = op.get_bind()
    rows = conn.exec_driver_sql(
        "SELECT s.batch_id, s.creator_id, s.paid_minor, b.currency, "
        "b.batch_id IN (SELECT supersedes_id FROM batches WHERE supersedes_id IS NOT NULL) "
        "FROM statements s JOIN batches b ON b.batch_id = s.batch_id "
        "WHERE s.paid_minor > 0 ORDER BY b.seq, s.creator_id").all()
    payouts = [{"payout_id": payout_id(b, c), "batch_id": b, "creator_id": c,
                "amount_minor": int(a), "currency": cur} for b, c, a, cur, _ in rows]
    events = []
    for (_, _, _, _, superseded), p in zip(rows, payouts):
        second = ("canceled", "superseded") if superseded else ("submitted",
                                                                "sent before payout tracking")
        events += [{"payout_id": p["payout_id"], "seq": 1, "state": "pending", "reason": None,
                    "source": "migration"},
                   {"payout_id": p["payout_id"], "seq": 2, "state": second[0],
                    "reason": second[1], "source": "migration"}]
    if payouts:
        conn.execute(sa.text("INSERT INTO payouts (payout_id, batch_id, creator_id, "
                             "amount_minor, currency) VALUES (:payout_id, :batch_id, "
                             ":creator_id, :amount_minor, :currency)"), payouts)
        conn.execute(sa.text("INSERT INTO payout_events (payout_id, seq, state, reason, source) "
                             "VALUES (:payout_id, :seq, :state, :reason, :source)"), events)


def upgrade() -> None:
    _kinds(NEW_ACCOUNT_KINDS, NEW_TX_KINDS, OLD_ACCOUNT_KINDS, OLD_TX_KINDS)
    _tables()
    _append_only()
    _backfill()


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for t in NEW_TABLES:
        if sqlite:
            op.execute(f"DROP TRIGGER {t}_no_update")
            op.execute(f"DROP TRIGGER {t}_no_delete")
        else:
            op.execute(f"DROP TRIGGER {t}_append_only ON {t}")
    for t in reversed(NEW_TABLES):
        op.drop_table(t)
    _kinds(OLD_ACCOUNT_KINDS, OLD_TX_KINDS, NEW_ACCOUNT_KINDS, NEW_TX_KINDS)
