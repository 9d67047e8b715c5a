"""Weighting methods: a candidate list in, influence weights out.

Rule: every method maps :class:`~attribution.candidates.Candidates` to a
float64 ``(n, k)`` matrix ``w`` with ``w >= 0``, ``w = 0`` where a slot is not
valid, and each row summing to 1 (the generation is attributed) or 0 (nothing
similar enough: the generation counts as novel). Methods are looked up by
name in :data:`METHODS`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from attribution.candidates import Candidates


def softmax(cands: Candidates, *, temperature: float = 0.05,
            min_similarity: float = 0.5) -> np.ndarray:
    """Softmax over the similarities of the valid candidates.

    ``w_j = exp(s_j / T) / sum_l exp(s_l / T)`` over candidates with
    ``s >= min_similarity``; a generation with none gets all-zero weights.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    sim = cands.sim.astype(np.float64)
    keep = cands.valid & (sim >= min_similarity)
    top = np.where(keep, sim, -np.inf).max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(keep, np.exp((sim - top) / temperature), 0.0)
    total = e.sum(axis=1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


Method = Callable[..., np.ndarray]
METHODS: dict[str, Method] = {"softmax": softmax}


def weigh(method: str, cands: Candidates, **params: float) -> np.ndarray:
    """Apply the named method; unknown names are a ValueError listing the known ones."""
    try:
        fn = METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown weighting method {method!r}; expected one of {', '.join(sorted(METHODS))}"
        ) from None
    return fn(cands, **params)
