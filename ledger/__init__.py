"""Ledger: shares in, payouts and ledger entries out (polars, SQLAlchemy).

Never imports ``attribution`` or ``dask``; meets attribution only through the
``attributions`` table of the data contract.
"""

from __future__ import annotations
