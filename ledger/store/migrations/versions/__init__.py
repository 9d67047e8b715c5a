"""Alembic revision scripts (applied in order by ``ledger.store.engine.upgrade``)."""
