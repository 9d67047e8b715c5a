"""Batched non-negative least squares on small Gram matrices.

Rule: for every row ``q`` of a batch, :func:`nnls_gram` returns the ``x >= 0``
(zero outside ``mask[q]``) that minimises ``||A_q x - y_q||^2`` given only
``G_q = A_q^T A_q`` (k, k) and ``b_q = A_q^T y_q`` (k,). In attribution ``A_q``
holds a generation's k candidate clip embeddings as columns and ``y_q`` is the
generation's embedding, so ``G_q`` is the candidate-candidate cosine matrix and
``b_q`` the candidate similarities: NNLS asks how much of each clip it takes to
rebuild the generation.

The solver is Lawson and Hanson's active-set method (the algorithm of
``scipy.optimize.nnls``) run on all rows at once: every iteration solves one
batched (k, k) system for the rows still working, and each row advances its own
state (add the most promising variable, or step back towards feasibility and
drop the variables that hit zero). Rows that do not finish within ``max_iter``
iterations (degenerate ties) fall back to ``scipy.optimize.nnls`` one by one.
"""

from __future__ import annotations

import numpy as np

#: Relative ridge added to the diagonal of passive-set systems so that exactly
#: repeated candidates (a singular Gram matrix) still give a solution.
RIDGE = 1e-12


def _solve_passive(gram: np.ndarray, rhs: np.ndarray, passive: np.ndarray) -> np.ndarray:
    """Solve ``G_PP z_P = b_P`` per row, ``z = 0`` outside the passive set P.

    The systems are compressed to the largest passive set of the batch
    (``p`` columns, usually far fewer than ``k``): each row's passive
    variables are gathered in index order into a ``(p, p)`` system, padded
    with identity rows, so one iteration costs ``O(n p^3)``, not ``O(n k^3)``.
    """
    n, k = passive.shape
    p = int(passive.sum(axis=1).max(initial=0))
    if p == 0:
        return np.zeros((n, k))
    cols = np.argsort(~passive, axis=1, kind="stable")[:, :p]  # passive first, index order
    live = np.take_along_axis(passive, cols, axis=1)
    rows = np.arange(n)[:, None, None]
    sub = gram[rows, cols[:, :, None], cols[:, None, :]]
    both = live[:, :, None] & live[:, None, :]
    eye = np.eye(p, dtype=bool)[None]
    system = np.where(both, sub, 0.0) + np.where(eye & both, RIDGE, 0.0)
    system = np.where(eye & ~both, 1.0, system)
    b = np.where(live, np.take_along_axis(rhs, cols, axis=1), 0.0)
    try:
        zc = np.linalg.solve(system, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        zc = np.einsum("nij,nj->ni", np.linalg.pinv(system), b)
    z = np.zeros((n, k))
    np.put_along_axis(z, cols, np.where(live, zc, 0.0), axis=1)
    return np.where(passive, z, 0.0)


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


def _step_back(x: np.ndarray, z: np.ndarray, infeasible: np.ndarray, passive: np.ndarray,
               tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Inner step: move from x towards z until the first passive variable hits 0, drop it."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(infeasible, x / (x - z), np.inf)
    first = ratio.argmin(axis=1)
    alpha = ratio[np.arange(len(first)), first][:, None]
    x = x + alpha * (z - x)
    drop = passive & (x <= tol)
    drop[np.arange(len(first)), first] = True
    passive = passive & ~drop
    return np.where(passive, x, 0.0), passive


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
        Iterations of the batched loop before the remaining rows are handed to
        ``scipy.optimize.nnls`` (default ``6 * k + 10``).

    Returns
    -------
    float64 (n, k)
        The minimiser, ``>= 0`` and ``0`` outside ``mask``.
    """
    gram = np.asarray(gram, dtype=np.float64)
    rhs = np.asarray(rhs, dtype=np.float64)
    n, k = rhs.shape
    if gram.shape != (n, k, k):
        raise ValueError(f"gram must have shape {(n, k, k)}; got {gram.shape}")
    mask = np.ones((n, k), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if tol is None:
        tol = 1e-12 * max(1.0, float(np.abs(rhs).max(initial=0.0))) * max(k, 1)
    if max_iter is None:
        max_iter = 6 * k + 10
    x = np.zeros((n, k))
    passive = np.zeros((n, k), dtype=bool)
    todo = np.flatnonzero(mask.any(axis=1))
    # Working copies of the unfinished rows, compacted only when an eighth of
    # them has finished (copying (rows, k, k) every iteration would dominate).
    g, b, m = gram[todo], rhs[todo], mask[todo]
    p, xs = passive[todo], x[todo]
    live = np.ones(todo.size, dtype=bool)
    for _ in range(max_iter):
        if todo.size == 0:
            break
        z = _solve_passive(g, b, p)
        infeasible = p & (z <= 0.0)
        inner = infeasible.any(axis=1) & live
        if inner.any():
            xs[inner], p[inner] = _step_back(xs[inner], z[inner], infeasible[inner],
                                             p[inner], tol)
        outer = ~infeasible.any(axis=1) & live
        if outer.any():
            # Accept z, then add the variable with the largest gradient b - G z.
            grad = b - np.einsum("nij,nj->ni", g, np.where(outer[:, None], z, 0.0))
            enter = ~p & m & (grad > tol) & outer[:, None]
            more = enter.any(axis=1)
            best = np.where(enter, grad, -np.inf).argmax(axis=1)
            rows = np.flatnonzero(more)
            p[rows, best[rows]] = True
            xs[outer] = z[outer]
            live &= ~(outer & ~more)
        if (~live).sum() * 8 >= todo.size:
            x[todo], passive[todo] = xs, p
            todo, g, b, m, p, xs = (a[live] for a in (todo, g, b, m, p, xs))
            live = np.ones(todo.size, dtype=bool)
    x[todo], passive[todo] = xs, p
    todo = todo[live]
    if todo.size:
        x[todo] = _scipy_rows(gram[todo], rhs[todo], mask[todo])
    return np.where(mask, np.maximum(x, 0.0), 0.0)
