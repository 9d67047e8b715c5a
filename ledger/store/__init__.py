"""The ledger of record: a double-entry, append-only store on SQLAlchemy 2.0.

Rule: money is posted only through :mod:`ledger.store.posting`, one whole
batch per database transaction; the database itself (triggers and a deferred
foreign key, created by the Alembic migrations in ``migrations/``) refuses
unbalanced transactions and any UPDATE or DELETE of entries. Readers
(:mod:`ledger.store.read`) take a ``Session`` and return polars frames.

Public entry points::

    from ledger.store import open_store, models, read_session, write_session
    engine = open_store("sqlite:///data/demo.db")   # creates/upgrades the schema
    with read_session(engine) as s:
        batches(s); creator_statement(s, "c0001"); balances(s)
"""

from __future__ import annotations

from ledger.store import models
from ledger.store.engine import (
    DEFAULT_URL,
    make_engine,
    open_store,
    read_session,
    resolve_url,
    upgrade,
    write_session,
)
from ledger.store.read import (
    balances,
    batches,
    creator_clip_earnings,
    creator_statement,
    payouts,
)

__all__ = [
    "DEFAULT_URL", "balances", "batches", "creator_clip_earnings", "creator_statement",
    "make_engine", "models", "open_store", "payouts", "read_session", "resolve_url",
    "upgrade", "write_session",
]
