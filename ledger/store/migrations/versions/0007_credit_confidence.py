"""Clip credits carry the confidence of the generations they earned from.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Why: a creator sees, next to each clip that earned money, how strongly the
generations it was credited for resemble their credited clips ("resembles
strongly / weakly", :func:`attribution.confidence.confidence_label`).
``batch_clip_credits.confidence`` is the attribution-weight-weighted mean
confidence of those generations, NULL when the attributions had no
``confidence`` column (and for every batch posted before this revision).

The column is added with a plain ``ALTER TABLE ... ADD COLUMN`` (never a
table copy, which on SQLite would drop the append-only triggers of migration
0001): the table keeps refusing UPDATE and DELETE. Format 3 manifests digest
the column (``credits_sha256``), so ``ledger verify`` catches a forged value.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("batch_clip_credits", sa.Column("confidence", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("batch_clip_credits", "confidence")
