"""Weighting methods: a candidate list in, influence weights out.

Rule: every method maps :class:`~attribution.candidates.Candidates` to a
float64 ``(n, k)`` matrix ``w`` with ``w >= 0``, ``w = 0`` where a slot is not
valid, and each row summing to 1 (the generation is attributed) or 0 (nothing
similar enough: the generation counts as novel). Methods are looked up by
name in :data:`METHODS`; :func:`weigh` applies one, optionally after grouping
near-duplicate candidates (:mod:`attribution.dedup`) so that copies of one clip
share what one clip would earn.

Methods (docs/attribution.md has the formulas and what they do not measure):

* ``softmax``: softmax of similarities over a floor, the commercial baseline;
* ``knn-shapley``: normalised exact Shapley values of the KNN-coverage utility
  (:mod:`attribution.shapley`);
* ``nnls``: normalised non-negative least-squares decomposition of the
  generation's embedding over its candidates (:mod:`attribution.nnls`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from attribution import dedup
from attribution import novelty as novelty_rule
from attribution.candidates import Candidates
from attribution.nnls import nnls_gram
from attribution.shapley import coverage_shapley


def _normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1; rows summing to 0 stay 0."""
    total = x.sum(axis=1, keepdims=True)
    return np.divide(x, total, out=np.zeros_like(x), where=total > 0)


def derived(cands: Candidates, min_similarity: float) -> np.ndarray:
    """bool (n,): generations whose best candidate reaches ``min_similarity``.

    The generation-level floor of ``knn-shapley`` and ``nnls``: a generation
    below it resembles nothing in the catalogue closely enough to count as
    derived, and all its weights are 0 (the policy decides where its share
    goes).
    """
    best = np.where(cands.valid, cands.sim, -np.inf).max(axis=1, initial=-np.inf)
    return best >= min_similarity


def softmax(cands: Candidates, *, temperature: float = 0.5,
            min_similarity: float = 0.5) -> np.ndarray:
    """Softmax over the similarities of the valid candidates.

    ``w_j = exp(s_j / T) / sum_l exp(s_l / T)`` over candidates with
    ``s >= min_similarity`` (for this baseline the floor applies to each
    candidate); a generation with none gets all-zero weights.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    sim = cands.sim.astype(np.float64)
    keep = cands.valid & (sim >= min_similarity)
    top = np.where(keep, sim, -np.inf).max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(keep, np.exp((sim - top) / temperature), 0.0)
    return _normalise(e)


def _rank_order(masked: np.ndarray) -> np.ndarray | None:
    """Stable order putting each row of ``masked`` similarities best first, or None if so already.

    ``masked`` holds ``-inf`` in padding slots.
    """
    if masked.shape[1] < 2 or bool((masked[:, 1:] <= masked[:, :-1]).all()):
        return None
    return np.argsort(-masked, axis=1, kind="stable")


def knn_shapley(cands: Candidates, *, neighbors: int = 3, tau: float = 0.4,
                min_similarity: float = 0.55) -> np.ndarray:
    """Normalised exact Shapley values of the KNN-coverage utility.

    ``U(S) = (1/K) * sum of max(0, s - tau) over the K most similar clips in S``
    with ``K = neighbors``; values by the recursion of
    :func:`attribution.shapley.shapley_from_values`, scaled to sum 1 per
    generation. All 0 when no candidate is above ``tau`` or the generation's
    best similarity is below ``min_similarity`` (:func:`derived`). Candidates
    are taken in the order given (the search's rank order, ties by clip id); a
    list not sorted by similarity is stably re-sorted first.
    """
    if neighbors < 1:
        raise ValueError(f"neighbors must be >= 1; got {neighbors}")
    if cands.k == 0:
        return np.zeros((cands.n, 0))
    masked = np.where(cands.valid, cands.sim, -np.inf)
    order = _rank_order(masked)
    best = masked.max(axis=1, initial=-np.inf) if order is not None else masked[:, 0]
    sim, valid = cands.sim, cands.valid & (best >= min_similarity)[:, None]
    if order is not None:
        sim = np.take_along_axis(sim, order, axis=1)
        valid = np.take_along_axis(valid, order, axis=1)
    values = _normalise(coverage_shapley(sim, valid, n_neighbors=int(neighbors),
                                         tau=tau).values)
    if order is not None:
        out = np.empty_like(values)
        np.put_along_axis(out, order, values, axis=1)
        values = out
    return values


def knn_shapley_exact(cands: Candidates, *, tau: float = 0.4,
                      catalogue_size: int | None = None) -> np.ndarray:
    """bool (n,): generations whose ``knn-shapley`` weights are exact.

    False where every slot is filled and the last candidate is still above
    ``tau``: clips beyond the list could then share the credit, and a larger
    ``k`` is needed for exact values (see
    :class:`attribution.shapley.CoverageShapley`).
    """
    valid = np.asarray(cands.valid, dtype=bool)
    if cands.k == 0 or (catalogue_size is not None and catalogue_size <= cands.k):
        return np.ones(cands.n, dtype=bool)
    lowest = np.where(valid, cands.sim, np.inf).min(axis=1)
    return ~valid.all(axis=1) | (lowest.astype(np.float64) - tau <= 0.0)


#: Novelty rules of ``nnls`` (``novelty=``): ``"concepts"`` compares the
#: specific clips with the catalogue's concept centroids (:mod:`attribution.novelty`);
#: ``"floor"`` is the fixed cosine floor ``min_similarity`` (kept for comparison).
NOVELTY_RULES = ("concepts", "floor")
#: Provisional novelty rule of ``KnnScorer`` (the benchmark suite chooses the
#: final one); :func:`nnls` called without ``novelty`` uses it when it is given
#: ``centroids`` and the floor otherwise.
DEFAULT_NOVELTY: str = "concepts"


def _gram_blocks(cands: Candidates, keep: np.ndarray, rows: np.ndarray, step: int = 64
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(rows, G, b)`` per chunk: float64 Gram matrices and right-hand sides of ``rows``.

    Entries of slots outside ``keep`` are left in place: :func:`nnls_gram`
    never lets those variables enter (its ``mask``).
    """
    assert cands.gen is not None and cands.cand is not None
    for start in range(0, rows.size, step):  # small float64 copies: 2-4x faster than 512 rows
        r = rows[start:start + step]
        c = cands.cand[r].astype(np.float64)
        g = cands.gen[r].astype(np.float64)
        yield r, np.matmul(c, np.swapaxes(c, 1, 2)), np.einsum("nkd,nd->nk", c, g)


def nnls(cands: Candidates, *, novelty: str | None = None,
         novelty_ratio: float = novelty_rule.DEFAULT_RATIO,
         centroids: np.ndarray | None = None, min_similarity: float = 0.52,
         min_weight: float = 0.05) -> np.ndarray:
    """Normalised non-negative least-squares decomposition of the generation.

    ``x = argmin_{x >= 0} ||g - sum_j x_j c_j||^2`` over the valid candidates
    ``c_j``, then ``w = x / sum(x)``; weights below ``min_weight`` (the fit of
    the generation's own noise by unrelated clips) are dropped and the rest
    renormalised, the largest weight always kept. Which generations are
    attributed at all is the ``novelty`` rule: ``"concepts"`` (the specific
    clips must leave at most ``novelty_ratio`` times the residual that the
    catalogue's concept ``centroids`` leave, :func:`attribution.novelty.novel`)
    or ``"floor"`` (the best similarity must reach ``min_similarity``,
    :func:`derived`); ``None`` means :data:`DEFAULT_NOVELTY` when ``centroids``
    are given, else ``"floor"``. Needs ``cands.gen`` and ``cands.cand``. Solved in float64
    on the (k, k) Gram matrices of a block (:func:`attribution.nnls.nnls_gram`).
    """
    if cands.gen is None or cands.cand is None:
        raise ValueError("nnls needs generation and candidate embeddings (cands.gen, cands.cand)")
    if not 0.0 <= min_weight < 1.0:
        raise ValueError(f"min_weight={min_weight}: expected a value in [0, 1)")
    if novelty is None:
        novelty = DEFAULT_NOVELTY if centroids is not None else "floor"
    if novelty not in NOVELTY_RULES:
        raise ValueError(f"novelty={novelty!r}: expected one of {', '.join(NOVELTY_RULES)}")
    if novelty == "concepts" and centroids is None:
        raise ValueError("novelty='concepts' needs centroids (KnnScorer.fit computes them)")
    floor = novelty == "floor"
    keep = cands.valid & (derived(cands, min_similarity)[:, None] if floor else True)
    out = np.zeros((cands.n, cands.k))
    explained = np.zeros(cands.n)
    for r, gram, rhs in _gram_blocks(cands, keep, np.flatnonzero(keep.any(axis=1))):
        x = nnls_gram(gram, rhs, keep[r])
        out[r] = x
        explained[r] = 2 * (rhs * x).sum(axis=1) - np.einsum("ni,nij,nj->n", x, gram, x)
    if not floor:
        out[novelty_rule.novel(cands.gen, explained, centroids, novelty_ratio)] = 0.0
    w = _normalise(out)
    if min_weight > 0:
        big = (w >= min_weight) | (w == w.max(axis=1, keepdims=True))
        w = _normalise(np.where(big, w, 0.0))
    return w


Method = Callable[..., np.ndarray]
METHODS: dict[str, Method] = {"softmax": softmax, "knn-shapley": knn_shapley, "nnls": nnls}

#: Methods that read ``cands.gen`` / ``cands.cand`` (grouping near-duplicates does too).
NEEDS_EMBEDDINGS: set[str] = {"nnls"}

#: Chosen by measurement on the planted benchmark (bench/attribution_quality.py;
#: numbers and reasons in docs/attribution.md).
DEFAULT_METHOD: str = "nnls"

#: Recommended near-duplicate threshold for ``weigh(..., dedup_threshold=...)``. On
#: data/samples, planted copies have cosine >= 0.9994 to their original and
#: distinct clips at most 0.64 to each other.
DEFAULT_DEDUP_THRESHOLD: float = 0.97


def needs_embeddings(method: str, dedup_threshold: float | None = None) -> bool:
    """Whether weighting ``method`` (with this grouping) needs candidate embeddings."""
    return method in NEEDS_EMBEDDINGS or dedup_threshold is not None


def weigh(method: str, cands: Candidates, *, dedup_threshold: float | None = None,
          **params: float) -> np.ndarray:
    """Apply the named method; unknown names are a ValueError listing the known ones.

    Parameters
    ----------
    method
        A key of :data:`METHODS`.
    cands
        The candidate lists of one block of generations.
    dedup_threshold
        If given, candidates more similar to each other than this are one group
        for weighting (:mod:`attribution.dedup`); needs ``cands.cand``.
    **params
        Keyword parameters of the method (e.g. ``temperature``, ``tau``).
    """
    try:
        fn = METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown weighting method {method!r}; expected one of {', '.join(sorted(METHODS))}"
        ) from None
    if dedup_threshold is None:
        return fn(cands, **params)
    return dedup.weigh_grouped(fn, cands, dedup.duplicate_groups(cands, dedup_threshold),
                               **params)
