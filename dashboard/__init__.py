"""Dashboard: the Streamlit app. Pages draw; data comes from the ledger's store."""

from __future__ import annotations
