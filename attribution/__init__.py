"""Attribution: embeddings in, influence weights per (generation, clip) out.

Never imports ``ledger`` or ``streamlit``; meets the ledger only through the
``attributions`` table of the data contract.
"""

from __future__ import annotations

from attribution.shapley import knn_shapley

__all__ = ["knn_shapley"]
