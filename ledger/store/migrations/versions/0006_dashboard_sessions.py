"""Dashboard sessions that survive a page refresh; login waits per source address.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

Why: a login lasted as long as one browser tab's connection, so a refresh
logged the user out; and one failure count per username let anyone keep an
account waiting for good with one wrong guess every 15 minutes.
``dashboard_sessions`` holds the sha256 of each login's random cookie token
with its expiry and revocation; ``dashboard_login_throttle`` holds the
failures and the wait per (user, source address), replacing the per-user
``failed_logins`` and ``locked_until``; attempts record their source.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("dashboard_users") as batch:
        batch.drop_column("failed_logins")
        batch.drop_column("locked_until")
    with op.batch_alter_table("dashboard_login_attempts") as batch:
        batch.add_column(sa.Column("source", sa.String(length=64), nullable=True))
    op.create_table(
        "dashboard_login_throttle",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["dashboard_users.id"],
                                name="fk_dashboard_login_throttle_user_id_dashboard_users"),
        sa.PrimaryKeyConstraint("user_id", "source", name="pk_dashboard_login_throttle"),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["dashboard_users.id"],
                                name="fk_dashboard_sessions_user_id_dashboard_users"),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_dashboard_sessions"),
    )
    op.create_index("ix_dashboard_sessions_user_id", "dashboard_sessions", ["user_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_table("dashboard_sessions")
    op.drop_table("dashboard_login_throttle")
    with op.batch_alter_table("dashboard_login_attempts") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("dashboard_users") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer(), server_default="0",
                                   nullable=False))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
