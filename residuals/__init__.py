"""Residuals: the CLI and the end-to-end pipeline over attribution, ledger and dashboard."""

from __future__ import annotations

__version__ = "0.1.0"
