"""The candidate list: what the search hands to the weighting methods.

Rule: a search produces, for every generation, its ``k`` most similar clips
(rank 1 = most similar, ties broken by clip id) as a :class:`TopK`; the scorer
turns it into :class:`Candidates` (adding the embeddings a method may need);
a weighting method maps ``Candidates`` to a ``(n, k)`` float64 weight matrix
whose rows sum to 1 (attributed) or 0 (unattributed), never more, and are 0
wherever ``valid`` is False.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TopK:
    """Per-generation top-k, sorted best first.

    Attributes
    ----------
    sim : float32 (n, k)
        Cosine similarity; ``-inf`` in padding slots (fewer than k clips).
    idx : int64 (n, k)
        Row of the clip (or segment) in the catalogue order; ``-1`` in padding.
    """

    sim: np.ndarray
    idx: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.idx >= 0


@dataclass(frozen=True)
class Candidates:
    """Everything a weighting method may use about one block of generations.

    Attributes
    ----------
    sim : float32 (n, k)
        Cosine similarity of each candidate to its generation, best first.
    valid : bool (n, k)
        False in padding slots.
    gen : float32 (n, d) or None
        Unit-norm generation embeddings (needed by ``nnls``).
    cand : float32 (n, k, d) or None
        Unit-norm candidate clip embeddings (needed by ``nnls`` and by
        near-duplicate grouping).
    """

    sim: np.ndarray
    valid: np.ndarray
    gen: np.ndarray | None = None
    cand: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.sim.shape[0])

    @property
    def k(self) -> int:
        return int(self.sim.shape[1])


#: Candidates kept per generation by default (``--k``). Chosen on the planted
#: benchmark (docs/benchmarks.md, "Attribution quality"): with the default
#: ``nnls`` weighting, recall@10 is 0.8885 at k = 10, just under the exact
#: cosine top-10 baseline (0.8907), and 0.9023 at k = 15, where every quality
#: target is met; the cost is 1.5x the candidates to gather and weigh.
DEFAULT_K: int = 15
