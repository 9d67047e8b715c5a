"""The language each dashboard user reads their pages in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

Why: a creator who chose Spanish in the sidebar got English again at the next
login (the choice lived in the browser session and the address only).
``dashboard_users.language`` keeps the last choice (``en``, ``es``; null: never
chosen); the dashboard sets it when the user picks a language and uses it at
the next login. Nullable, no default: existing users keep reading English
until they choose. Added and dropped in place on both backends (no table
rebuild: other tables hold foreign keys to this one).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dashboard_users", sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    # A plain ALTER TABLE on both backends (SQLite >= 3.35): rebuilding the table, as a
    # batch operation does on SQLite, would trip the sessions' foreign keys to it.
    op.execute("ALTER TABLE dashboard_users DROP COLUMN language")
