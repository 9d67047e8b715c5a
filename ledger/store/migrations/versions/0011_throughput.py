"""Set-based checks for the payout tables and the transaction seals (PostgreSQL).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Why: a batch of a million creators opens half a million payouts, and a provider
report of a million lines posts a million small transactions, each sealed and
each with its event. On PostgreSQL every one of those rows paid for checks
made one row at a time: the foreign keys of ``transactions`` (batch, reversed
transaction), ``transaction_seals`` (transaction), ``payouts`` (batch, creator)
and ``payout_events`` (payout, transaction), and the balance check of
``transaction_seals`` (a PL/pgSQL trigger per seal, two index scans each).
Together they cost more than writing the rows.

What changes (PostgreSQL only; SQLite keeps its row triggers and foreign keys):

- those seven foreign keys become one statement-level trigger per table that
  joins the statement's new rows (its transition table) against the referenced
  table once, as revision 0003 did for the other bulk tables. The referenced
  rows are never deleted or re-keyed: ``batches``, ``transactions`` and
  ``payouts`` refuse UPDATE, DELETE and TRUNCATE, and ``creators`` refuses a
  delete or a change of id (0003). The deferred key that makes every
  transaction sealed by COMMIT (``fk_transactions_sealed``) stays as it is;
- the seal check runs once per statement over all the seals it inserts: every
  sealed transaction must have at least two entries and sum to zero per
  currency, exactly the rule of the row trigger it replaces (0001), with the
  same message and error code.

The guarantees are unchanged and tested as before (a seal of an unbalanced
or one-legged transaction is refused, a payout or event naming a missing row is
refused, raw UPDATE and DELETE are refused).
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UNBALANCED = "ledger: transaction entries do not sum to zero per currency (or fewer than two)"

# table -> [(foreign key name, column, referenced table, referenced column)]
REFERENCES = {
    "transactions": [
        ("fk_transactions_batch_id_batches", "batch_id", "batches", "batch_id"),
        ("fk_transactions_reverses_id_transactions", "reverses_id", "transactions", "id")],
    "transaction_seals": [("fk_transaction_seals_transaction_id_transactions",
                           "transaction_id", "transactions", "id")],
    "payouts": [("fk_payouts_batch_id_batches", "batch_id", "batches", "batch_id"),
                ("fk_payouts_creator_id_creators", "creator_id", "creators", "creator_id")],
    "payout_events": [
        ("fk_payout_events_payout_id_payouts", "payout_id", "payouts", "payout_id"),
        ("fk_payout_events_transaction_id_transactions", "transaction_id", "transactions",
         "id")],
}

SEALS_CHECK = f"""CREATE FUNCTION ledger_seals_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (
      SELECT 1 FROM new_seals n
      LEFT JOIN (SELECT transaction_id, sum(legs) AS legs, bool_or(total <> 0) AS unbalanced
                 FROM (SELECT transaction_id, count(*) AS legs, sum(amount_minor) AS total
                       FROM entries
                       WHERE transaction_id IN (SELECT transaction_id FROM new_seals)
                       GROUP BY transaction_id, currency) per_currency
                 GROUP BY transaction_id) t ON t.transaction_id = n.transaction_id
      WHERE coalesce(t.legs, 0) < 2 OR t.unbalanced) THEN
    RAISE EXCEPTION '{UNBALANCED}' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$"""
"""Every sealed transaction of the statement: >= 2 entries, zero sum per currency."""

SEAL_ROW_CHECK = f"""CREATE OR REPLACE FUNCTION ledger_seal_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT count(*) FROM entries WHERE transaction_id = NEW.transaction_id) < 2
     OR EXISTS (SELECT 1 FROM entries WHERE transaction_id = NEW.transaction_id
                GROUP BY currency HAVING sum(amount_minor) <> 0) THEN
    RAISE EXCEPTION '{UNBALANCED}' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$"""
"""Revision 0001's row trigger function, restored by the downgrade."""


def _check_function(table: str) -> str:
    tests = "\n".join(
        f"""  IF EXISTS (SELECT 1 FROM new_rows n LEFT JOIN {ref} r ON r.{rcol} = n.{col}
             WHERE n.{col} IS NOT NULL AND r.{rcol} IS NULL) THEN
    RAISE EXCEPTION 'ledger: {table}.{col} names a {ref} row that does not exist'
      USING ERRCODE = 'foreign_key_violation';
  END IF;"""
        for _, col, ref, rcol in REFERENCES[table])
    return f"""CREATE FUNCTION ledger_{table}_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{tests}
  RETURN NULL;
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, refs in REFERENCES.items():
        for name, *_ in refs:
            op.drop_constraint(name, table, type_="foreignkey")
        op.execute(_check_function(table))
        for event in ("INSERT", "UPDATE"):
            op.execute(f"""CREATE TRIGGER {table}_refs_{event.lower()} AFTER {event} ON {table}
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_{table}_refs()""")
    op.execute("DROP TRIGGER seals_balance ON transaction_seals")
    op.execute("DROP FUNCTION ledger_seal_balanced()")
    op.execute(SEALS_CHECK)
    op.execute("""CREATE TRIGGER seals_balance AFTER INSERT ON transaction_seals
REFERENCING NEW TABLE AS new_seals FOR EACH STATEMENT EXECUTE FUNCTION ledger_seals_balanced()""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER seals_balance ON transaction_seals")
    op.execute("DROP FUNCTION ledger_seals_balanced()")
    op.execute(SEAL_ROW_CHECK)
    op.execute("""CREATE TRIGGER seals_balance BEFORE INSERT ON transaction_seals
FOR EACH ROW EXECUTE FUNCTION ledger_seal_balanced()""")
    for table, refs in REFERENCES.items():
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {table}_refs_{event} ON {table}")
        op.execute(f"DROP FUNCTION ledger_{table}_refs()")
        for name, col, ref, rcol in refs:
            op.create_foreign_key(name, table, ref, [col], [rcol])
