"""Exact blocked top-k cosine search: a per-block numpy function and a merge.

Rule: the top-k of a generation is the ``k`` catalogue entries with the
largest cosine similarity, ordered by similarity descending and, on equal
similarity, by catalogue index ascending (the catalogue is indexed in
``(clip_id, segment_id)`` order, so ties are broken by clip id). When the
catalogue holds several segments per clip, a clip counts once, with its best
segment. :func:`topk_block` computes this for one block of generations
against one partition of the catalogue; :func:`merge_partials` combines two
such results into the result for the union of their partitions. The merge is
a total order on (similarity, index), so it is commutative and associative:
any tree of merges, in any order, on any scheduler gives the same bits. This
is the chunk/combine pattern of ``dask/array/reductions.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribution.candidates import TopK

#: Columns of the catalogue scored per GEMM call inside :func:`topk_block`.
TILE = 8192
#: Extra candidates the faiss pre-selection returns beyond ``k`` (at least
#: :data:`MARGIN_MIN`, else ``k / MARGIN_DIV``), so that the exact k-th best
#: usually clears the bound that proves nothing outside was missed.
MARGIN_MIN, MARGIN_DIV = 8, 8
#: Pairs rescored per numpy call in :func:`preselect_topk` (bounds the float64 temporaries).
RESCORE_PAIRS = 512


@dataclass(frozen=True)
class Partial:
    """A top-k result for a block of generations over part of the catalogue.

    Attributes
    ----------
    sim : float64 (n, k)
        Exact similarities (:func:`exact_similarity`), best first; ``-inf`` in padding.
    idx : int64 (n, k)
        Catalogue index of the entry (segment row when there are segments); ``-1`` in padding.
    grp : int64 (n, k) or None
        Clip number of each entry when the catalogue has segments (entries of
        one clip share it); None when every entry is its own clip.
    """

    sim: np.ndarray
    idx: np.ndarray
    grp: np.ndarray | None = None

    @property
    def topk(self) -> TopK:
        """The public :class:`TopK` (similarities rounded to float32)."""
        return TopK(self.sim.astype(np.float32), self.idx)

    @property
    def n(self) -> int:
        return int(self.sim.shape[0])

    @property
    def k(self) -> int:
        return int(self.sim.shape[1])


def normalize(x: np.ndarray, *, chunk: int = 16_384) -> np.ndarray:
    """Rows scaled to unit Euclidean norm, as C-contiguous float32.

    Each row's norm and quotient are computed in float64, row by row in the
    same way whatever the chunking, so the result does not depend on how the
    rows were blocked; ``chunk`` only bounds the float64 temporaries. Zero rows
    are rejected by the contract readers.
    """
    x = np.asarray(x)
    out = np.empty(x.shape, dtype=np.float32)
    for lo in range(0, len(x), chunk):
        x64 = x[lo:lo + chunk].astype(np.float64)
        norms = np.sqrt((x64 * x64).sum(axis=1))
        np.divide(x64, norms[:, None], out=x64)
        out[lo:lo + chunk] = x64
    return out


def empty_partial(n: int, k: int, segments: bool = False) -> Partial:
    """A result with no hits: every slot is padding."""
    return Partial(
        np.full((n, k), -np.inf, dtype=np.float64),
        np.full((n, k), -1, dtype=np.int64),
        np.full((n, k), -1, dtype=np.int64) if segments else None,
    )


def select_topk(
    rows: np.ndarray,
    sim: np.ndarray,
    idx: np.ndarray,
    grp: np.ndarray | None,
    n: int,
    k: int,
) -> Partial:
    """Top-k per row from a flat list of (row, similarity, index[, group]) hits.

    Sorts by (row, -similarity, index), keeps the first hit of each group
    within a row (a clip's best segment), then the first ``k`` per row. Hits
    may arrive in any order; the result depends only on the set of hits.
    """
    out = empty_partial(n, k, grp is not None)
    if len(rows) == 0:
        return out
    order = np.lexsort((idx, -sim, rows))
    rows, sim, idx = rows[order], sim[order], idx[order]
    if grp is not None:
        grp = grp[order]
        # Stable sort by (row, group) keeps, within a group, the best-first order.
        by_group = np.lexsort((grp, rows))  # lexsort is stable
        r2, g2 = rows[by_group], grp[by_group]
        dup_sorted = np.zeros(len(rows), dtype=bool)
        dup_sorted[1:] = (r2[1:] == r2[:-1]) & (g2[1:] == g2[:-1])
        keep = np.ones(len(rows), dtype=bool)
        keep[by_group[dup_sorted]] = False
        rows, sim, idx, grp = rows[keep], sim[keep], idx[keep], grp[keep]
    starts = np.searchsorted(rows, np.arange(n))
    pos = np.arange(len(rows)) - starts[rows]
    take = pos < k
    r, p = rows[take], pos[take]
    out.sim[r, p] = sim[take]
    out.idx[r, p] = idx[take]
    if grp is not None:
        out.grp[r, p] = grp[take]
    return out


def _flat(part: Partial) -> tuple[np.ndarray, ...]:
    valid = part.idx >= 0
    rows = np.nonzero(valid)[0]
    grp = part.grp[valid] if part.grp is not None else None
    return rows, part.sim[valid], part.idx[valid], grp


def merge_partials(a: Partial, b: Partial) -> Partial:
    """The top-k of the union of two partials over the same generations.

    Commutative and associative (a total order decides every comparison), so
    a tree reduction in any shape and order gives identical bits.
    """
    if a.sim.shape != b.sim.shape:
        raise ValueError(f"cannot merge top-k of shapes {a.sim.shape} and {b.sim.shape}")
    ra, sa, ia, ga = _flat(a)
    rb, sb, ib, gb = _flat(b)
    grp = None if ga is None or gb is None else np.concatenate([ga, gb])
    return select_topk(np.concatenate([ra, rb]), np.concatenate([sa, sb]),
                       np.concatenate([ia, ib]), grp, a.n, a.k)


def merge_many(parts: list[Partial]) -> Partial:
    """Merge a list of partials (a ``combine`` step of the tree reduction)."""
    if not parts:
        raise ValueError("nothing to merge")
    if len(parts) == 1:
        return parts[0]
    flats = [_flat(p) for p in parts]
    grp = None if any(f[3] is None for f in flats) else np.concatenate([f[3] for f in flats])
    return select_topk(
        np.concatenate([f[0] for f in flats]), np.concatenate([f[1] for f in flats]),
        np.concatenate([f[2] for f in flats]), grp, parts[0].n, parts[0].k,
    )


def exact_similarity(gen: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Cosine similarity of paired unit-norm rows, computed exactly the same way everywhere.

    ``gen[i] . clips[i]`` in float64 (float32 products are exact in float64)
    summed along the contiguous last axis, so the value of a pair depends only
    on its two vectors: never on tiling, BLAS threads or scheduler. GEMM
    values only pre-select; this decides ranks.
    """
    return (gen.astype(np.float64) * clips.astype(np.float64)).sum(axis=-1)


def gemm_error_bound(d: int) -> float:
    """Bound on |float32 GEMM dot - exact dot| for unit vectors of length ``d``.

    Standard bound ``gamma_d = d u / (1 - d u)`` with ``u = 2**-24``, doubled,
    plus the rounding of the unit norms themselves.
    """
    u = 2.0**-24
    return 2.0 * d * u / (1.0 - d * u) + 1e-6


def _group_max(s: np.ndarray, grp: np.ndarray) -> np.ndarray:
    """Per-row maximum over runs of equal ``grp`` (segments of one clip are contiguous)."""
    starts = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]])
    return np.maximum.reduceat(s, starts, axis=1)


def _kth_per_row(rows: np.ndarray, values: np.ndarray, n: int, k: int) -> np.ndarray:
    """The k-th largest of ``values`` within each row (``-inf`` where a row has fewer)."""
    order = np.lexsort((-values, rows))
    r, v = rows[order], values[order]
    pos = np.arange(len(r)) - np.searchsorted(r, np.arange(n))[r]
    at = pos == k - 1
    out = np.full(n, -np.inf)
    out[r[at]] = v[at]
    return out


def _faiss_knn(gen: np.ndarray, clips: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss's flat inner-product top-``width`` (float32 scores, any tie order), one thread."""
    import faiss

    return faiss.knn(gen, clips, width, metric=faiss.METRIC_INNER_PRODUCT)


def preselect_topk(gen: np.ndarray, clips: np.ndarray, keys: np.ndarray, k: int,
                   ) -> tuple[Partial, np.ndarray]:
    """Exact top-k from a faiss pre-selection, and which rows it proves.

    faiss returns each generation's ``width = k + margin`` best clips by its
    float32 GEMM scores; they are rescored with :func:`exact_similarity` and
    ranked by (similarity, index). A clip outside the pre-selection scored at
    most the lowest faiss score ``a`` inside it, so its exact similarity is at
    most ``a + eps`` (:func:`gemm_error_bound`, which holds for any summation
    order). A row is **proved** when its exact k-th best is above ``a + eps``:
    then no clip outside can enter its top k, and its result is the exact
    top-k whatever order faiss used. Rows not proved must be recomputed
    (:func:`topk_block` does so with its own path). Returns the partial and
    the bool (b,) of proved rows.
    """
    b, width = gen.shape[0], min(len(clips), k + max(MARGIN_MIN, k // MARGIN_DIV))
    approx, pos = _faiss_knn(gen, clips, width)
    exact = np.empty((b, width))
    gen64 = gen.astype(np.float64)
    step = max(1, RESCORE_PAIRS // width)  # float64 temporaries that stay in cache
    for lo in range(0, b, step):
        exact[lo:lo + step] = exact_similarity(gen64[lo:lo + step, None, :],
                                               clips[pos[lo:lo + step]])
    ok = pos.ravel() >= 0  # faiss pads with -1 only when a partition has fewer than width rows
    rows, cols = np.repeat(np.arange(b), width)[ok], pos.ravel()[ok]
    best = select_topk(rows, exact.ravel()[ok], keys[cols], None, b, k)
    if width >= len(clips):
        return best, np.ones(b, dtype=bool)
    bound = approx.min(axis=1).astype(np.float64) + gemm_error_bound(gen.shape[1])
    return best, best.sim[:, k - 1] > bound


def _replace_rows(base: Partial, rows: np.ndarray, part: Partial) -> Partial:
    """``base`` with ``rows`` taken from ``part`` (a result for those rows only)."""
    sim, idx = base.sim.copy(), base.idx.copy()
    sim[rows], idx[rows] = part.sim, part.idx
    return Partial(sim, idx, None)


def topk_block(
    gen: np.ndarray,
    clips: np.ndarray,
    keys: np.ndarray,
    k: int,
    groups: np.ndarray | None = None,
    *,
    tile: int = TILE,
    use_faiss: bool = True,
) -> Partial:
    """Exact top-k of unit-norm generations against one partition of unit-norm clips.

    Parameters
    ----------
    gen : float32 (b, d)
        Unit-norm generation embeddings.
    clips : float32 (p, d)
        Unit-norm catalogue embeddings of this partition, rows in ascending ``keys``.
    keys : int64 (p,)
        Catalogue index of each partition row (the tie-break order), ascending.
    k : int
        Number of clips to keep per generation.
    groups : int64 (p,) or None
        Clip number of each row when the catalogue has segments (non-decreasing).
    tile : int
        Catalogue rows per GEMM call.
    use_faiss : bool
        Pre-select with faiss (see below); False forces the numpy path.

    Notes
    -----
    Scores ``tile`` clips at a time with one float32 GEMM. From the first
    tile, the k-th best GEMM value (``np.partition``; over clip maxima when
    there are segments) minus twice the GEMM error bound becomes a
    per-generation threshold; afterwards the threshold is the running k-th
    best exact similarity minus the bound. Only entries at or above it are
    rescored with :func:`exact_similarity` and merged, so after the first tile
    almost nothing but the GEMM touches the whole score matrix, and the result
    is exactly the top-k under exact similarities whatever the tiling.

    Without segments, and with ``use_faiss``, the rows are first pre-selected
    by faiss (:func:`preselect_topk`); only rows it cannot prove take the path
    above. Both give the same bits: the result is a function of the exact
    similarities alone.
    """
    if groups is None and use_faiss and len(gen) and len(clips) > k:
        fast, proved = preselect_topk(gen, clips, keys, k)
        slow = np.flatnonzero(~proved)
        if slow.size == 0:
            return fast
        rest = topk_block(gen[slow], clips, keys, k, tile=tile, use_faiss=False)
        return _replace_rows(fast, slow, rest)
    b = gen.shape[0]
    seg = groups is not None
    best = empty_partial(b, k, seg)
    eps = gemm_error_bound(gen.shape[1])
    gen64 = gen.astype(np.float64)  # converted once, not per survivor
    thr = np.full(b, -np.inf, dtype=np.float64)
    width = min(tile, max(len(clips), 1))
    buf = np.empty((b, width), dtype=np.float32)
    maskbuf = np.zeros(b * width + 8, dtype=bool)
    lanes = np.arange(8)
    for start in range(0, len(clips), tile):
        stop = min(start + tile, len(clips))
        w = stop - start
        s = buf[:, :w]
        np.matmul(gen, clips[start:stop].T, out=s)
        if start == 0:
            m = _group_max(s, groups[start:stop]) if seg else s
            if m.shape[1] > k:
                kth = np.partition(m, m.shape[1] - k, axis=1)[:, m.shape[1] - k]
                thr = kth.astype(np.float64) - 2 * eps
        cut = (thr - eps).astype(np.float32) if start else thr.astype(np.float32)
        # Survivors: scan the boolean mask eight bytes at a time (it is almost all False).
        nbytes = b * w
        np.greater_equal(s, cut[:, None], out=maskbuf[:nbytes].reshape(b, w))
        nwords = -(-nbytes // 8)
        maskbuf[nbytes:nwords * 8] = False
        words = np.flatnonzero(maskbuf[:nwords * 8].view(np.uint64))
        if len(words) == 0:
            continue
        pos = (words[:, None] * 8 + lanes).ravel()
        pos = pos[maskbuf[pos]]
        rows, c = np.divmod(pos, w)
        fr, fs, fi, fg = _flat(best)
        if not seg:  # rescore only what can still reach the top k (GEMM values +- eps)
            approx = s[rows, c].astype(np.float64)
            kth = _kth_per_row(np.concatenate([fr, rows]), np.concatenate([fs, approx]), b, k)
            near = approx >= kth[rows] - 2 * eps
            rows, c = rows[near], c[near]
        cols = start + c
        exact = exact_similarity(gen64[rows], clips[cols])
        best = select_topk(
            np.concatenate([fr, rows]), np.concatenate([fs, exact]),
            np.concatenate([fi, keys[cols]]),
            np.concatenate([fg, groups[cols]]) if seg else None, b, k,
        )
        thr = best.sim[:, k - 1].copy()
    return best
