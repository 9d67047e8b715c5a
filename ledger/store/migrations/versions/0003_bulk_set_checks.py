"""Set-based reference checks for the other bulk tables on PostgreSQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Why: as for entries in 0002, the per-row foreign-key triggers of the tables a
batch writes in bulk (``accounts``, ``statements``, ``batch_clip_credits``,
``balances``) dominated the time of posting a large batch on PostgreSQL. Each
is replaced there by one statement-level trigger per INSERT/COPY that checks
every new row's references with one set-based query. References cannot dangle
later: batches and accounts refuse DELETE (0001, 0002), and creators now refuse
DELETE and any change of ``creator_id`` (both backends). SQLite keeps its
declarative foreign keys.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# table -> [(constraint name, column, referenced table, referenced column)]
REFERENCES = {
    "accounts": [("fk_accounts_creator_id_creators", "creator_id", "creators", "creator_id")],
    "statements": [("fk_statements_batch_id_batches", "batch_id", "batches", "batch_id"),
                   ("fk_statements_creator_id_creators", "creator_id", "creators",
                    "creator_id")],
    "batch_clip_credits": [
        ("fk_batch_clip_credits_batch_id_batches", "batch_id", "batches", "batch_id"),
        ("fk_batch_clip_credits_creator_id_creators", "creator_id", "creators", "creator_id")],
    "balances": [("fk_balances_account_id_accounts", "account_id", "accounts", "id")],
}


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
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("""CREATE TRIGGER creators_no_delete BEFORE DELETE ON creators
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on creators refused'); END""")
        op.execute("""CREATE TRIGGER creators_keep_id BEFORE UPDATE OF creator_id ON creators
WHEN NEW.creator_id IS NOT OLD.creator_id
BEGIN SELECT RAISE(ABORT, 'ledger: creator_id cannot change'); END""")
        return
    for table, refs in REFERENCES.items():
        for name, *_ in refs:
            op.drop_constraint(name, table, type_="foreignkey")
        op.execute(_check_function(table))
        for event in ("INSERT", "UPDATE"):
            op.execute(f"""CREATE TRIGGER {table}_refs_{event.lower()} AFTER {event} ON {table}
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_{table}_refs()""")
    op.execute("""CREATE FUNCTION ledger_creators_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'UPDATE' OR NEW.creator_id IS DISTINCT FROM OLD.creator_id THEN
    RAISE EXCEPTION 'ledger: % of a creator refused (creators are referenced by the ledger)',
      TG_OP USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$""")
    op.execute("""CREATE TRIGGER creators_keep BEFORE UPDATE OR DELETE ON creators
FOR EACH ROW EXECUTE FUNCTION ledger_creators_keep()""")
    op.execute("""CREATE TRIGGER creators_no_truncate BEFORE TRUNCATE ON creators
FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER creators_no_delete")
        op.execute("DROP TRIGGER creators_keep_id")
        return
    op.execute("DROP TRIGGER creators_keep ON creators")
    op.execute("DROP TRIGGER creators_no_truncate ON creators")
    op.execute("DROP FUNCTION ledger_creators_keep()")
    for table, refs in REFERENCES.items():
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {table}_refs_{event} ON {table}")
        op.execute(f"DROP FUNCTION ledger_{table}_refs()")
        for name, col, ref, rcol in refs:
            op.create_foreign_key(name, table, ref, [col], [rcol])
