"""Near-duplicate grouping of candidates, applicable to any weighting method.

Rule: within one generation's candidate list, two valid candidates whose
cosine similarity to each other exceeds ``threshold`` are linked; the
connected components of these links are groups. A group takes part in
weighting as one candidate, its representative (the best-ranked member, hence
the group's best similarity to the generation), and the weight the method
gives the representative is split equally among the group's members. So ten
uploads of one clip earn together what one upload would earn alone.

Everything is vectorised over generations: the (k, k) candidate-candidate
similarities come from one batched matrix product, components from min-label
propagation (at most k rounds over the whole block), and the grouped list is
the original one with non-representatives moved behind the representatives,
order otherwise kept, so rank order and tie-breaking are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attribution.candidates import Candidates


@dataclass(frozen=True)
class Groups:
    """Near-duplicate groups of one block of candidate lists.

    Attributes
    ----------
    rep : int64 (n, k)
        Slot of the representative of each slot's group (the slot itself for a
        representative); ``-1`` in padding slots.
    size : int64 (n, k)
        Number of members of each slot's group; ``0`` in padding slots.
    """

    rep: np.ndarray
    size: np.ndarray

    @property
    def is_rep(self) -> np.ndarray:
        """bool (n, k): the slot represents its group."""
        return self.rep == np.arange(self.rep.shape[1])[None, :]


def candidate_similarity(cand: np.ndarray) -> np.ndarray:
    """Cosine similarity among each generation's candidates, float32 (n, k, k)."""
    cand = np.asarray(cand, dtype=np.float32)
    return np.matmul(cand, np.swapaxes(cand, 1, 2))


def duplicate_groups(cands: Candidates, threshold: float) -> Groups:
    """Connected components of the "more similar than ``threshold``" graph per generation.

    Parameters
    ----------
    cands
        Candidate lists with ``cand`` (unit-norm candidate embeddings) set.
    threshold
        Cosine similarity above which two candidates count as the same clip.

    Returns
    -------
    Groups
    """
    if cands.cand is None:
        raise ValueError("near-duplicate grouping needs candidate embeddings (cands.cand)")
    n, k = cands.n, cands.k
    valid = np.asarray(cands.valid, dtype=bool)
    linked = candidate_similarity(cands.cand) > threshold
    linked &= valid[:, :, None] & valid[:, None, :]
    linked |= np.eye(k, dtype=bool)[None]
    slots = np.broadcast_to(np.arange(k, dtype=np.int64), (n, k))
    label = np.where(valid, slots, k)
    for _ in range(k):  # a component's diameter is < k, so k rounds always suffice
        new = np.where(linked, label[:, None, :], k).min(axis=2)
        new = np.where(valid, new, k)
        if np.array_equal(new, label):
            break
        label = new
    rep = np.where(valid, label, -1)
    same = (rep[:, :, None] == rep[:, None, :]) & valid[:, None, :]
    size = np.where(valid, same.sum(axis=2), 0).astype(np.int64)
    return Groups(rep=rep, size=size)


def weigh_grouped(method: Callable[..., np.ndarray], cands: Candidates, groups: Groups,
                  **params: float) -> np.ndarray:
    """Weigh representatives with ``method``, then split each group's weight equally.

    Parameters
    ----------
    method
        A weighting method (``Candidates -> (n, k)`` weights).
    cands
        The full candidate lists.
    groups
        Their near-duplicate groups (:func:`duplicate_groups`).
    **params
        Passed to ``method``.

    Returns
    -------
    float64 (n, k)
        Weights on the original slots; rows sum to what the method gives the
        grouped list (1 or 0).
    """
    is_rep = groups.is_rep & cands.valid
    # representatives first, original order kept within each part
    order = np.argsort(~is_rep, axis=1, kind="stable")
    compact = Candidates(
        sim=np.take_along_axis(cands.sim, order, axis=1),
        valid=np.take_along_axis(is_rep, order, axis=1),
        gen=cands.gen,
        cand=None if cands.cand is None
        else np.take_along_axis(cands.cand, order[:, :, None], axis=1),
    )
    w_compact = np.asarray(method(compact, **params), dtype=np.float64)
    w_rep = np.zeros_like(w_compact)
    np.put_along_axis(w_rep, order, w_compact, axis=1)
    w_rep = np.where(is_rep, w_rep, 0.0)
    share = np.take_along_axis(w_rep, np.maximum(groups.rep, 0), axis=1)
    return np.where(cands.valid, share / np.maximum(groups.size, 1), 0.0)
