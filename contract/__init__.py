"""The data contract every Residuals package shares.

Column names and types of the Parquet tables (README, "Data contract") live in
:mod:`contract.schema`; validated readers live in :mod:`contract.io`; the one
error type that the CLI turns into a one-line message lives in
:mod:`contract.errors`. This package imports none of ``attribution``,
``ledger``, ``dashboard`` or ``residuals``: they all meet here.
"""

from __future__ import annotations

from contract.errors import ContractError, ResidualsError

__all__ = ["ContractError", "ResidualsError"]
