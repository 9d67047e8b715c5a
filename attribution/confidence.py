"""How much of a generation its credited clips explain, and what to call it.

Rule: the confidence of a generation is the fraction of its (squared) norm
that the weighted mix of its credited clips explains,
``confidence = cos^2(g, sum_j w_j c_j) = 1 - min_a ||g - a v||^2 / ||g||^2``
with ``v = sum_j w_j c_j`` over the written clips ``c_j`` and their weights
``w_j``: 1 for an exact copy of one clip (or of a mix, with the mix's
weights), near 0 when the credited clips point elsewhere, and exactly 0 for a
generation with no credit. It is one number per generation, written in the
``confidence`` column of the attributions table (every row of a generation
carries it) and labelled by :func:`confidence_label` with the thresholds
:data:`~contract.resemblance.STRONG` and :data:`~contract.resemblance.WEAK` of
:mod:`contract.resemblance`, their one home.
"""

from __future__ import annotations

import numpy as np

from contract.resemblance import LABEL_NONE, LABEL_STRONG, LABEL_WEAK, STRONG, WEAK


def confidence(gen: np.ndarray, cand: np.ndarray, pos: np.ndarray,
               weight: np.ndarray) -> np.ndarray:
    """float64 (n,): the confidence of each generation of a block.

    Parameters
    ----------
    gen : float (n, d)
        Generation embeddings.
    cand : float (n, depth, d)
        Its candidate clip embeddings.
    pos : int (n, k)
        Positions of the written candidates (``-1`` in padding).
    weight : float (n, k)
        Their weights (rows sum to 1 or 0).

    Computed in float64 with elementwise products and sums along the
    contiguous last axis, so a generation's value depends only on its own
    vectors (never on blocking, BLAS threads or scheduler).
    """
    live = pos >= 0
    chosen = np.take_along_axis(cand, np.maximum(pos, 0)[:, :, None], axis=1)
    w = np.where(live, weight, 0.0)
    mix = (chosen.astype(np.float64) * w[:, :, None]).sum(axis=1)
    g = np.asarray(gen, dtype=np.float64)
    dot = (g * mix).sum(axis=1)
    norms = (g * g).sum(axis=1) * (mix * mix).sum(axis=1)
    out = np.divide(dot * dot, norms, out=np.zeros(len(g)), where=norms > 0)
    return np.clip(np.where(dot > 0, out, 0.0), 0.0, 1.0)


def confidence_label(x: float) -> str:
    """``"resembles strongly"`` (>= :data:`~contract.resemblance.STRONG`),
    ``"resembles weakly"`` (>= :data:`~contract.resemblance.WEAK`) or ``"no clear
    resemblance"``; raises on a value outside [0, 1]."""
    value = float(x)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"x={x!r}: expected a confidence in [0, 1]")
    if value >= STRONG:
        return LABEL_STRONG
    if value >= WEAK:
        return LABEL_WEAK
    return LABEL_NONE
