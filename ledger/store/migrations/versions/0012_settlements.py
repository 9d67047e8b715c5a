"""Payout events may share a settlement transaction.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Why: a provider report of a million lines posted a million small transactions
(a transaction, its seal, two entries and the event, per line), and writing
those rows, with their checks, took most of an import. The money each state
moves now goes in one transaction per (batch, state) of an import or a
transition: its entries are the events' legs summed per account (the transit
or disbursed leg once, each creator's payable once), and every event names
that transaction. ``ledger verify`` checks each settling transaction's entries,
per account, against the legs of the events naming it.

What changes: ``payout_events.transaction_id`` is no longer unique (on SQLite
the table is rebuilt without the constraint, SQLite's documented way to drop
one, its indexes and triggers recreated). A downgrade restores the constraint
and refuses, naming the transaction, when events already share one.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLE = "payout_events"
NAME = "uq_payout_events_transaction_id"
CLAUSE = f"CONSTRAINT {NAME} UNIQUE (transaction_id)"


def _sqlite_rebuild(declaration: str) -> None:
    """Replace ``payout_events`` by a table declared ``declaration`` (with the name
    ``payout_events_new``), rows, indexes and triggers kept."""
    conn = op.get_bind()
    extras = [sql for (sql,) in conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type, name", (TABLE,)).all()]
    conn.exec_driver_sql(declaration)
    conn.exec_driver_sql(f"INSERT INTO {TABLE}_new SELECT * FROM {TABLE}")
    conn.exec_driver_sql(f"DROP TABLE {TABLE}")
    conn.exec_driver_sql(f"ALTER TABLE {TABLE}_new RENAME TO {TABLE}")
    for sql in extras:
        conn.exec_driver_sql(sql)


def _declaration() -> str:
    sql = op.get_bind().exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).scalar_one()
    # after a rename SQLite stores the name quoted: CREATE TABLE "payout_events" (
    new, n = re.subn(rf'^CREATE TABLE "?{TABLE}"? \(', f"CREATE TABLE {TABLE}_new (", str(sql))
    if n != 1:
        raise RuntimeError(f"migration 0012: unexpected declaration of {TABLE}: {sql[:60]!r}")
    return new


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(NAME, TABLE, type_="unique")
        return
    sql, n = re.subn(r",\s*" + re.escape(CLAUSE), "", _declaration())
    if n != 1:
        raise RuntimeError(f"migration 0012: {TABLE}'s declaration does not hold {CLAUSE} once")
    _sqlite_rebuild(sql)


def downgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        f"SELECT transaction_id FROM {TABLE} WHERE transaction_id IS NOT NULL "
        "GROUP BY transaction_id HAVING count(*) > 1 ORDER BY transaction_id LIMIT 1")).scalar()
    if shared is not None:
        raise RuntimeError(f"migration 0012 down: transaction {shared} settles more than one "
                           "payout event; revision 0011 allows one each")
    if op.get_bind().dialect.name != "sqlite":
        op.create_unique_constraint(NAME, TABLE, ["transaction_id"])
        return
    sql = _declaration()
    end = sql.rindex(")")
    _sqlite_rebuild(f"{sql[:end].rstrip()}, \n\t{CLAUSE}\n)")
