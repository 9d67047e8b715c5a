"""Plain brute-force top-k: the slow, obviously correct reference.

Rule: score every generation against every catalogue row with
:func:`attribution.search.exact_similarity`, give each clip its best segment,
and sort each generation's clips by similarity descending, then catalogue
index ascending. No blocking, no thresholds: tests compare every fast or
distributed path with this.
"""

from __future__ import annotations

import numpy as np

from attribution.search import Partial, empty_partial, exact_similarity, normalize


def brute_force_topk(
    gen: np.ndarray,
    clips: np.ndarray,
    k: int,
    groups: np.ndarray | None = None,
) -> Partial:
    """Top-k of ``gen`` against ``clips`` by exhaustive scoring.

    Parameters
    ----------
    gen : (n, d) array
        Generation embeddings (any scale; normalised here).
    clips : (N, d) array
        Catalogue embeddings in catalogue order (row i has index i).
    k : int
        Entries to return per generation.
    groups : (N,) int array or None
        Clip number of each row when rows are segments of clips.
    """
    g = normalize(gen)
    c = normalize(clips)
    n, big_n = len(g), len(c)
    sim = exact_similarity(g[:, None, :], c[None, :, :])  # (n, N)
    grp = np.arange(big_n) if groups is None else np.asarray(groups)
    out = empty_partial(n, k, groups is not None)
    for i in range(n):  # obviously correct, not fast
        best: dict[int, tuple[float, int]] = {}
        for j in range(big_n):
            key = (-sim[i, j], j)
            g_j = int(grp[j])
            if g_j not in best or key < best[g_j]:
                best[g_j] = key
        ranked = sorted(best.items(), key=lambda item: item[1])[:k]
        for r, (g_j, (neg, j)) in enumerate(ranked):
            out.sim[i, r] = -neg
            out.idx[i, r] = j
            if out.grp is not None:
                out.grp[i, r] = g_j
    return out
