"""Alembic environment: runs on the connection that ``ledger.store.engine`` passes in.

Rule: migrations never open their own connection; the caller provides one in
``config.attributes["connection"]`` and owns its transaction and locks.
"""

from __future__ import annotations

from alembic import context

from ledger.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
