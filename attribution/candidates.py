"""The candidate list: what the search hands to the weighting methods, and what is written.

Rule: a search produces, for every generation, its ``depth`` most similar
clips (rank 1 = most similar, ties broken by clip id) as a :class:`TopK`; the
scorer turns it into :class:`Candidates` (adding the embeddings a method may
need); a weighting method maps ``Candidates`` to a ``(n, depth)`` float64
weight matrix whose rows sum to 1 (attributed) or 0 (unattributed), never
more, and are 0 wherever ``valid`` is False. :func:`written` then keeps, per
generation, every candidate with a positive weight, up to ``k``: when more
than ``k`` are positive the ``k`` largest (ties by rank) are kept and
renormalised, so a row still sums to 1; a generation with no positive weight
keeps its most similar clip with weight 0, so every generation appears in the
attributions table.
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


#: Clips written per generation at most (``--k``): every candidate with a
#: positive weight is written, up to this many (:func:`written`). Provisional:
#: the benchmark suite (bench/attribution_quality.py) chooses the final value.
DEFAULT_K: int = 15

#: Candidates the weighting sees per generation (``--depth``): the search
#: returns this many clips and the weighting method decomposes the generation
#: over all of them. Chosen by bench/attribution_quality.py (worst case over
#: the synthetic families; docs/attribution.md, "The default, chosen by measurement").
DEFAULT_DEPTH: int = 32


@dataclass(frozen=True)
class Written:
    """The rows written for a block of generations (``-1`` / 0 in padding slots).

    Attributes
    ----------
    pos : int64 (n, k)
        Position of each written candidate in its generation's candidate list
        (0 = rank 1), ascending; ``-1`` in padding.
    weight : float64 (n, k)
        Its weight; a row sums to 1, or is all 0 (one row, the best candidate).
    """

    pos: np.ndarray
    weight: np.ndarray


def written(weight: np.ndarray, valid: np.ndarray, k: int) -> Written:
    """Keep every positive weight, up to ``k`` per row (the largest, ties by rank).

    A row with more than ``k`` positive weights keeps its ``k`` largest,
    renormalised to sum 1; other rows keep their weights bit for bit. A row
    with no positive weight keeps its first valid candidate with weight 0.
    Vectorised: one stable sort per block, no loop over generations.
    """
    n, depth = weight.shape
    k = min(int(k), depth)
    positive = weight > 0
    order = np.argsort(np.where(positive, -weight, np.inf), axis=1, kind="stable")[:, :k]
    take = np.take_along_axis(positive, order, axis=1)
    none = ~positive.any(axis=1) & valid.any(axis=1)
    take[none, 0] = True
    order[none, 0] = np.argmax(valid[none], axis=1)
    pos = np.sort(np.where(take, order, depth), axis=1)
    keep = pos < depth
    pos = np.where(keep, pos, -1)
    w = np.where(keep, np.take_along_axis(weight, np.maximum(pos, 0), axis=1), 0.0)
    cut = positive.sum(axis=1) > k
    if cut.any():
        w[cut] /= w[cut].sum(axis=1, keepdims=True)
    return Written(pos, w)
