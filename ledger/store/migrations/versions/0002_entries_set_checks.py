"""Entries: set-based reference checks on PostgreSQL; accounts append-only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Why: on PostgreSQL a foreign key is checked by one trigger call per inserted
row, which made the COPY of entries five times slower than the table itself
allows. The two foreign keys of ``entries`` (to ``transactions`` and
``accounts``) are replaced there by the statement-level trigger that already
runs once per INSERT/COPY: it now refuses, in one set-based query each, a new
entry whose transaction does not exist, whose account does not exist, or whose
transaction is sealed. References can't dangle later because transactions
refuse DELETE (0001) and accounts now refuse UPDATE and DELETE (both
backends). SQLite keeps its declarative foreign keys (cheap there). The
``(account_id, currency)`` index on entries is dropped: nothing queries it
(balances are kept in ``balances``; verify aggregates the whole table).
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEALED = "ledger: transaction is sealed, no entries can be added to it"
NO_TX = "ledger: entry names a transaction that does not exist"
NO_ACCOUNT = "ledger: entry names an account that does not exist"

POSTGRES_ENTRIES_CHECK = f"""CREATE OR REPLACE FUNCTION ledger_entries_open() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_rows n LEFT JOIN transactions t ON t.id = n.transaction_id
             WHERE t.id IS NULL) THEN
    RAISE EXCEPTION '{NO_TX}' USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM new_rows n LEFT JOIN accounts a ON a.id = n.account_id
             WHERE a.id IS NULL) THEN
    RAISE EXCEPTION '{NO_ACCOUNT}' USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM new_rows n JOIN transaction_seals s
             ON s.transaction_id = n.transaction_id) THEN
    RAISE EXCEPTION '{SEALED}' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NULL;
END $$"""

POSTGRES_ENTRIES_CHECK_0001 = f"""CREATE OR REPLACE FUNCTION ledger_entries_open()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_rows n JOIN transaction_seals s
             ON s.transaction_id = n.transaction_id) THEN
    RAISE EXCEPTION '{SEALED}' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NULL;
END $$"""


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_entries_account_currency", table_name="entries")
    if sqlite:
        for what in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER accounts_no_{what.lower()} BEFORE {what} ON accounts
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: {what} on accounts refused'); END""")
        return
    op.drop_constraint("fk_entries_account_id_accounts", "entries", type_="foreignkey")
    op.drop_constraint("fk_entries_transaction_id_transactions", "entries", type_="foreignkey")
    op.execute(POSTGRES_ENTRIES_CHECK)
    op.execute("""CREATE TRIGGER accounts_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
ON accounts FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER accounts_no_update")
        op.execute("DROP TRIGGER accounts_no_delete")
    else:
        op.execute("DROP TRIGGER accounts_append_only ON accounts")
        op.execute(POSTGRES_ENTRIES_CHECK_0001)
        op.create_foreign_key("fk_entries_transaction_id_transactions", "entries",
                              "transactions", ["transaction_id"], ["id"])
        op.create_foreign_key("fk_entries_account_id_accounts", "entries", "accounts",
                              ["account_id"], ["id"])
    op.create_index("ix_entries_account_currency", "entries", ["account_id", "currency"])
