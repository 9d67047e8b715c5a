"""Batched non-negative least squares on small Gram matrices.

Rule: for every row ``q`` of a batch, :func:`nnls_gram` returns the ``x >= 0``
(zero outside ``mask[q]``) that minimises ``||A_q x - y_q||^2`` given only
``G_q = A_q^T A_q`` (k, k) and ``b_q = A_q^T y_q`` (k,). In attribution ``A_q``
holds a generation's k candidate clip embeddings as columns and ``y_q`` is the
generation's embedding, so ``G_q`` is the candidate-candidate cosine matrix and
``b_q`` the candidate similarities: NNLS asks how much of each clip it takes to
rebuild the generation.

The solver is Lawson and Hanson's active-set method (the algorithm of
``scipy.optimize.nnls``), compiled with numba and run row by row (the GIL is
released, so threads of one process solve blocks in parallel): add the
variable with the largest gradient ``b - G x``, solve the passive system, and
while its solution is infeasible step back towards it and drop the variables
that hit zero. Each passive system is solved with a Cholesky factor that is
updated, not recomputed: adding a variable appends one row, dropping one
recomputes the rows after it, so an iteration costs ``O(p^2)`` for ``p``
passive variables instead of a batched ``O(p^3)`` solve. Rows that do not
finish within ``max_iter`` iterations (degenerate ties, a passive system that
is not numerically positive definite) fall back to ``scipy.optimize.nnls``
one by one.
"""

from __future__ import annotations

import numba
import numpy as np

#: Ridge added to the diagonal of passive-set systems so that exactly
#: repeated candidates (a singular Gram matrix) still give a solution.
RIDGE = 1e-12


@numba.njit(cache=True, nogil=True)
def _cholesky_rows(g: np.ndarray, idx: np.ndarray, p: int, low: np.ndarray,
                   start: int) -> bool:
    """Rows ``start..p-1`` of the Cholesky factor of ``G[idx, idx] + RIDGE I`` (earlier kept)."""
    for i in range(start, p):
        for j in range(i + 1):
            s = g[idx[i], idx[j]]
            for m in range(j):
                s -= low[i, m] * low[j, m]
            if i == j:
                s += RIDGE
                if s <= 0.0:
                    return False
                low[i, i] = np.sqrt(s)
            else:
                low[i, j] = s / low[j, j]
    return True


@numba.njit(cache=True, nogil=True)
def _cholesky_solve(low: np.ndarray, b: np.ndarray, idx: np.ndarray, p: int,
                    tmp: np.ndarray, z: np.ndarray) -> None:
    """``z[:p]`` solving ``L L^T z = b[idx[:p]]``."""
    for i in range(p):
        s = b[idx[i]]
        for m in range(i):
            s -= low[i, m] * tmp[m]
        tmp[i] = s / low[i, i]
    for i in range(p - 1, -1, -1):
        s = tmp[i]
        for m in range(i + 1, p):
            s -= low[m, i] * z[m]
        z[i] = s / low[i, i]


@numba.njit(cache=True, nogil=True)
def _entering(g: np.ndarray, b: np.ndarray, allowed: np.ndarray, passive: np.ndarray,
              x: np.ndarray, idx: np.ndarray, p: int, tol: float) -> int:
    """The allowed non-passive variable with the largest gradient ``b - G x`` above tol, or -1."""
    best, top = -1, tol
    for j in range(b.shape[0]):
        if allowed[j] and not passive[j]:
            v = b[j]
            for m in range(p):
                v -= g[j, idx[m]] * x[idx[m]]
            if v > top:
                best, top = j, v
    return best


@numba.njit(cache=True, nogil=True)
def _step_back(x: np.ndarray, z: np.ndarray, idx: np.ndarray, p: int, passive: np.ndarray,
               tol: float) -> tuple[int, int]:
    """Move x towards z until the first passive variable hits 0; drop it (and any at 0).

    Returns the new passive count and the first position of ``idx`` that changed.
    """
    alpha, first = np.inf, 0
    for m in range(p):
        if z[m] <= 0.0:
            r = x[idx[m]] / (x[idx[m]] - z[m])
            if r < alpha:
                alpha, first = r, m
    keep, changed = 0, p
    for m in range(p):
        j = idx[m]
        x[j] += alpha * (z[m] - x[j])
        if m == first or x[j] <= tol:
            x[j] = 0.0
            passive[j] = False
            changed = min(changed, m)
        else:
            idx[keep] = j
            keep += 1
    return keep, changed


@numba.njit(cache=True, nogil=True)
def _lawson_hanson(gram: np.ndarray, rhs: np.ndarray, mask: np.ndarray, tol: float,
                   max_iter: int, out: np.ndarray, done: np.ndarray) -> None:
    """Lawson-Hanson per row, each passive system by an updated Cholesky factor.

    Adding a variable appends one row to the factor; dropping variables
    recomputes the rows from the first dropped position on.
    """
    n, k = rhs.shape
    low = np.zeros((k, k))
    tmp, z = np.empty(k), np.empty(k)
    idx = np.empty(k, dtype=np.int64)
    passive = np.zeros(k, dtype=np.bool_)
    for q in range(n):
        g, b, x = gram[q], rhs[q], out[q]
        x[:] = 0.0
        passive[:] = False
        p, factored, iters, ok = 0, 0, 0, True
        while ok:
            j = _entering(g, b, mask[q], passive, x, idx, p, tol)
            if j < 0:
                break
            idx[p], passive[j] = j, True
            p += 1
            while p > 0:  # solve the passive system; step back while it is infeasible
                iters += 1
                if iters > max_iter or not _cholesky_rows(g, idx, p, low, factored):
                    ok = False
                    break
                factored = p
                _cholesky_solve(low, b, idx, p, tmp, z)
                if z[:p].min() > 0.0:
                    for m in range(p):
                        x[idx[m]] = z[m]
                    break
                p, changed = _step_back(x, z, idx, p, passive, tol)
                factored = min(factored, changed)
        done[q] = ok


def _scipy_rows(gram: np.ndarray, rhs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``scipy.optimize.nnls`` row by row on a Cholesky factor of each Gram matrix.

    With ``G = L L^T``, ``||L^T x - L^{-1} b||^2 = x^T G x - 2 b^T x + const``, so
    the least-squares problem with matrix ``L^T`` and target ``L^{-1} b`` has the
    same minimiser. Used only for rows the batched solver left unfinished.
    """
    from scipy.linalg import cho_factor, solve_triangular
    from scipy.optimize import nnls

    out = np.zeros(rhs.shape)
    for q in range(rhs.shape[0]):  # only the few rows that did not converge
        cols = np.flatnonzero(mask[q])
        if cols.size == 0:
            continue
        g = gram[q][np.ix_(cols, cols)] + RIDGE * np.eye(cols.size)
        low, _ = cho_factor(g, lower=True)
        low = np.tril(low)
        target = solve_triangular(low, rhs[q, cols], lower=True)
        out[q, cols] = nnls(low.T, target)[0]
    return out


def nnls_gram(gram: np.ndarray, rhs: np.ndarray, mask: np.ndarray | None = None, *,
              tol: float | None = None, max_iter: int | None = None) -> np.ndarray:
    """Batched NNLS from Gram matrices.

    Parameters
    ----------
    gram : float (n, k, k)
        Symmetric positive semi-definite ``A^T A`` per row.
    rhs : float (n, k)
        ``A^T y`` per row.
    mask : bool (n, k), optional
        Variables allowed to be non-zero (default: all).
    tol
        A variable enters when its gradient ``b - G x`` exceeds ``tol``
        (default ``1e-12 * max(1, max |b|) * k``).
    max_iter
        Passive-system solves per row before the row is handed to
        ``scipy.optimize.nnls`` (default ``6 * k + 10``).

    Returns
    -------
    float64 (n, k)
        The minimiser, ``>= 0`` and ``0`` outside ``mask``.
    """
    gram = np.ascontiguousarray(gram, dtype=np.float64)
    rhs = np.ascontiguousarray(rhs, dtype=np.float64)
    n, k = rhs.shape
    if gram.shape != (n, k, k):
        raise ValueError(f"gram must have shape {(n, k, k)}; got {gram.shape}")
    mask = np.ones((n, k), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if tol is None:
        tol = 1e-12 * max(1.0, float(np.abs(rhs).max(initial=0.0))) * max(k, 1)
    if max_iter is None:
        max_iter = 6 * k + 10
    x = np.zeros((n, k))
    done = np.zeros(n, dtype=bool)
    _lawson_hanson(gram, rhs, np.ascontiguousarray(mask), float(tol), int(max_iter), x, done)
    todo = np.flatnonzero(~done)
    if todo.size:
        x[todo] = _scipy_rows(gram[todo], rhs[todo], mask[todo])
    return np.where(mask, np.maximum(x, 0.0), 0.0)


def warm_up() -> None:
    """Load the compiled solver (from numba's cache, else compile it) with a tiny problem.

    The first call of a numba function in a process costs about a second
    whatever its size; the engine calls this in a background thread while the
    search runs, so the first weighting task does not wait for it.
    """
    nnls_gram(np.eye(2)[None], np.ones((1, 2)))
