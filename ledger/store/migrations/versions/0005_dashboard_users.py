"""Dashboard users and login attempts move to tables the dashboard owns.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-03

Why: logins are the dashboard's business, not the ledger's. ``users`` and
``login_attempts`` become ``dashboard_users`` and ``dashboard_login_attempts``
(declared in ``dashboard/models.py``), with the same columns; every row is
copied with its id, and on PostgreSQL the id sequences continue after the
copied rows. A pure move: nothing else changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
USER_COLUMNS = ("id", "username", "password_hash", "role", "creator_id", "failed_logins",
                "locked_until", "created_at")
ATTEMPT_COLUMNS = ("id", "username", "success", "at")


def _create_users(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=400), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("creator_id", sa.String(length=200), nullable=True),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.CheckConstraint("role <> 'creator' OR creator_id IS NOT NULL",
                           name=f"ck_{name}_creator_has_id"),
        sa.CheckConstraint("role IN ('admin', 'economist', 'creator')", name=f"ck_{name}_role"),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.creator_id"],
                                name=f"fk_{name}_creator_id_creators"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
        sa.UniqueConstraint("username", name=f"uq_{name}_username"),
    )
    op.create_index(f"ix_{name}_creator_id", name, ["creator_id"], unique=False)


def _create_attempts(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )
    op.create_index(f"ix_{name}_username", name, ["username"], unique=False)


def _move(source: str, target: str, columns: tuple[str, ...]) -> None:
    """Copy every row of ``source`` into ``target`` (ids kept), then drop ``source``."""
    cols = ", ".join(columns)
    op.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {source}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"SELECT setval(pg_get_serial_sequence('{target}', 'id'), "
                   f"COALESCE((SELECT MAX(id) FROM {target}), 0) + 1, false)")
    op.drop_table(source)


def upgrade() -> None:
    _create_users("dashboard_users")
    _create_attempts("dashboard_login_attempts")
    _move("users", "dashboard_users", USER_COLUMNS)
    _move("login_attempts", "dashboard_login_attempts", ATTEMPT_COLUMNS)


def downgrade() -> None:
    _create_users("users")
    _create_attempts("login_attempts")
    _move("dashboard_users", "users", USER_COLUMNS)
    _move("dashboard_login_attempts", "login_attempts", ATTEMPT_COLUMNS)
