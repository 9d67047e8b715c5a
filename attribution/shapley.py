"""Exact KNN-Shapley values (Jia et al., PVLDB 2019), vectorised over queries.

Rule: for one query (a generation) whose candidates are listed nearest first,
``1..N``, with per-candidate values ``v_i``, the KNN utility of a subset ``S``
is ``U(S) = (1/K) * sum of v over the K nearest members of S`` (all of S when
``|S| < K``). Its exact Shapley values satisfy

    s_N = v_N / max(K, N)
    s_i = s_{i+1} + (v_i - v_{i+1}) / max(K, i)        (i = N-1, ..., 1)

so ``s_i = sum_{j >= i} (v_j - v_{j+1}) / max(K, j)`` with ``v_{N+1} = 0``:
one reversed cumulative sum per row, no loop over queries. The base case is
``v_N / max(K, N)`` (the farthest point adds ``v_N / K`` exactly when fewer
than K others are present, which happens with probability ``min(K, N) / N``),
so it is also correct when ``K > N``; the paper's ``1[y_N = y] / N`` is the
``K <= N`` case. Efficiency holds: ``sum_i s_i = U(D)``.

Two utilities use it:

* the KNN-coverage utility of the attribution weighting,
  ``v = max(0, similarity - tau)``, where values are exactly zero past the last
  candidate above ``tau``, so a top-k list is exact whenever its last
  candidate is at or below ``tau`` (:func:`coverage_shapley` reports the rows
  where it is not);
* the hard-label classifier utility, ``v_i = 1[y_i = y_test]``, averaged over
  test points (:func:`knn_shapley`, the public function that agrees with
  pyDVL's ``KNNShapleyValuation``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def shapley_from_values(v: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Exact Shapley values of the KNN utility, one row per query.

    Parameters
    ----------
    v : float (n, N)
        Per-candidate values, each row in rank order (nearest first; ties
        already broken by the caller). Any real values are allowed.
    n_neighbors
        ``K`` of the utility, >= 1; may exceed ``N``.

    Returns
    -------
    float64 (n, N)
        ``s[q, i]`` is the Shapley value of candidate ``i`` for query ``q``.
    """
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be >= 1; got {n_neighbors}")
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"v must be 2-D (queries, candidates); got shape {v.shape}")
    n, big_n = v.shape
    if big_n == 0:
        return np.zeros((n, 0))
    # 1-based rank j of column j-1; the step from rank j to j+1 is divided by max(K, j).
    denom = np.maximum(float(n_neighbors), np.arange(1, big_n + 1, dtype=np.float64))
    step = np.empty_like(v)
    np.subtract(v[:, :-1], v[:, 1:], out=step[:, :-1])
    step[:, -1] = v[:, -1]
    step /= denom
    # reversed cumulative sum: s_i = sum_{j >= i} step_j
    return np.cumsum(step[:, ::-1], axis=1)[:, ::-1]


@dataclass(frozen=True)
class CoverageShapley:
    """Shapley values of the KNN-coverage utility for one block of generations.

    Attributes
    ----------
    values : float64 (n, k)
        Shapley values, 0 in padding slots and past the last candidate above tau.
    exact : bool (n,)
        False where the candidate list may be too short: every slot is filled
        and the last candidate is still above ``tau``, so clips beyond the list
        could have positive value. Each listed value is then too high by the
        same amount, between 0 and ``v_k / max(K, k)`` (the truncated tail of
        the recursion is common to every listed candidate).
    """

    values: np.ndarray
    exact: np.ndarray

    @property
    def n_inexact(self) -> int:
        """How many generations need a longer candidate list to be exact."""
        return int((~self.exact).sum())


def coverage_shapley(sim: np.ndarray, valid: np.ndarray, *, n_neighbors: int,
                     tau: float, catalogue_size: int | None = None) -> CoverageShapley:
    """Exact Shapley values of the KNN-coverage utility ``v = max(0, sim - tau)``.

    Parameters
    ----------
    sim : float (n, k)
        Similarities in rank order (non-increasing over the valid slots;
        ties in the order given, which is the clip-id order of the search).
    valid : bool (n, k)
        False in padding slots (which must come after the valid ones).
    n_neighbors
        ``K`` of the utility.
    tau
        Similarity below which a clip covers nothing of the generation.
    catalogue_size
        Number of clips searched, if known: a row listing the whole catalogue
        is exact even when its last candidate is above ``tau``.

    Returns
    -------
    CoverageShapley
    """
    valid = np.asarray(valid, dtype=bool)
    v = np.asarray(sim, dtype=np.float64) - tau  # a fresh float64 array, updated in place
    np.maximum(v, 0.0, out=v)
    v[~valid] = 0.0
    values = shapley_from_values(v, n_neighbors)
    k = sim.shape[1]
    if k == 0:
        exact = np.ones(sim.shape[0], dtype=bool)
    else:
        exact = ~valid[:, -1] | (v[:, -1] == 0.0)
        if catalogue_size is not None and catalogue_size <= k:
            exact = np.ones_like(exact)
    return CoverageShapley(values=values, exact=exact)


def knn_shapley(train_embeddings: np.ndarray, train_labels: np.ndarray,
                test_embeddings: np.ndarray, test_labels: np.ndarray,
                k: int) -> np.ndarray:
    """Hard-label KNN-Shapley values of training points (Jia et al., 2019).

    For each test point the training points are ranked by Euclidean distance
    (ties by training index), ``v_i = 1[train_label_i == test_label]``, and the
    exact Shapley values of ``U(S) = (1/k) * #{correct labels among the k
    nearest in S}`` are computed by the recursion of this module; the result is
    their mean over test points. With ``k <= n_train`` this is what pyDVL's
    ``KNNShapleyValuation`` computes; with ``k > n_train`` the base case here is
    ``v_N / k`` (the exact Shapley value), where pyDVL uses ``v_N / N``.

    Parameters
    ----------
    train_embeddings : (n_train, d)
    train_labels : (n_train,)
    test_embeddings : (n_test, d)
    test_labels : (n_test,)
    k
        Number of neighbours of the classifier, >= 1.

    Returns
    -------
    float64 (n_train,)
    """
    x = np.asarray(train_embeddings, dtype=np.float64)
    xt = np.asarray(test_embeddings, dtype=np.float64)
    y = np.asarray(train_labels)
    yt = np.asarray(test_labels)
    if x.ndim != 2 or xt.ndim != 2 or x.shape[1] != xt.shape[1]:
        raise ValueError(
            f"embeddings must be 2-D with the same d; got train {x.shape}, test {xt.shape}")
    if y.shape != (x.shape[0],) or yt.shape != (xt.shape[0],):
        raise ValueError(
            f"need one label per point; got {y.shape} train labels for {x.shape[0]} points "
            f"and {yt.shape} test labels for {xt.shape[0]} points")
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    n_train, d = x.shape
    n_test = xt.shape[0]
    if n_test == 0 or n_train == 0:
        raise ValueError("need at least one training and one test point")
    total = np.zeros(n_train)
    # Exact distances from differences (not the |a|^2 - 2ab + |b|^2 expansion), so
    # identical training points get identical distances and the stable sort
    # breaks their tie by index. Chunked to bound memory at ~32 MB.
    chunk = max(1, (1 << 22) // max(1, n_train * d))
    for start in range(0, n_test, chunk):
        q = xt[start:start + chunk]
        dist = np.sqrt(((q[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
        order = np.argsort(dist, axis=1, kind="stable")
        v = (y[order] == yt[start:start + chunk, None]).astype(np.float64)
        s = shapley_from_values(v, k)
        full = np.empty_like(s)
        np.put_along_axis(full, order, s, axis=1)
        total += full.sum(axis=0)
    return total / n_test
