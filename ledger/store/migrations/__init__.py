"""Alembic migrations of the ledger store, shipped inside the package."""
