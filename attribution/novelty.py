"""Novelty calibrated from the catalogue: do specific clips beat its generic concepts?

Rule: at fit time the catalogue is summarised by ``C`` concept centroids
(spherical k-means on an evenly strided sample of at most :data:`SAMPLE_ROWS`
clips, unit-norm). A generation ``g`` (unit norm) is explained by its
specific candidate clips with residual ``r_s = 1 - explained`` (the
non-negative least-squares fit of ``g`` over its candidates) and by the
generic concepts with residual ``r_c = 1 - cos^2(g, m)`` of its nearest
centroid ``m`` (one concept: a mix of centroids would fit anything once
``C`` approaches the dimension). It is **novel** (no credit) when
``r_s > ratio * r_c``: specific clips must leave at most ``ratio`` times what
the catalogue's generic content leaves. A copy of a clip has ``r_s ~ 0`` and
is attributed; a new generation inside a dense topic is explained by the
topic's centroid about as well as by any clips of the topic, ``r_s / r_c``
stays near 1, and it is novel. No cosine constant is involved: both residuals
are measured in the catalogue's own geometry (an anisotropic space where all
cosines are high moves both alike). ``ratio`` in (0, 1] is the one knob
(lower = stricter); docs/attribution.md says how an operator tunes it.
"""

from __future__ import annotations

import numpy as np

from attribution.catalogue import Catalogue, load_partition

#: ``novelty_ratio``: specific clips must leave at most this fraction of the
#: residual the concept centroids leave. 1.0 (novel only when the nearest concept
#: explains more than the clips) was chosen by the worst case of
#: bench/attribution_quality.py: no stricter ratio beats it on every family
#: (docs/attribution.md); an operator lowers it for their own model.
DEFAULT_RATIO: float = 1.0
#: Concept centroids (``n_concepts``); 16 and 256 measured no better in the worst case.
DEFAULT_CONCEPTS: int = 64
#: Clips sampled (evenly by catalogue index) to fit the centroids.
SAMPLE_ROWS: int = 16_384
#: At least this many sampled clips per centroid (small catalogues get fewer centroids).
CLIPS_PER_CONCEPT: int = 4


def catalogue_sample(cat: Catalogue, rows: int = SAMPLE_ROWS) -> np.ndarray:
    """float32 (m, d): unit-norm embeddings of every ``stride``-th catalogue row.

    The sample depends only on the catalogue (rows whose index is a multiple
    of ``stride = ceil(n / rows)``), never on its partitioning.
    """
    stride = max(1, -(-cat.n_rows // rows))
    parts = []
    for part in cat.partitions:
        emb, keys, _ = load_partition(part, cat.dim)
        take = keys % stride == 0
        parts.append((keys[take], emb[take]))
    keys = np.concatenate([k for k, _ in parts])
    emb = np.concatenate([e for _, e in parts])
    return emb[np.argsort(keys, kind="stable")]


def fit_centroids(sample: np.ndarray, n_concepts: int = DEFAULT_CONCEPTS,
                  seed: int = 0) -> np.ndarray:
    """float32 (C, d): unit-norm k-means centroids of ``sample`` (unit rows).

    ``C = min(n_concepts, len(sample) // CLIPS_PER_CONCEPT)`` (at least 1).
    Fitted in float64 with one thread and a fixed seed, so the same sample
    always gives the same centroids.
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    if n_concepts < 1:
        raise ValueError(f"n_concepts={n_concepts}: expected >= 1")
    c = max(1, min(int(n_concepts), len(sample) // CLIPS_PER_CONCEPT))
    with threadpool_limits(limits=1):
        km = KMeans(n_clusters=c, n_init=1, max_iter=100, random_state=seed)
        km.fit(np.asarray(sample, dtype=np.float64))
    centres = km.cluster_centers_
    norms = np.linalg.norm(centres, axis=1, keepdims=True)
    return (centres / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def generic_residual(gen: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """float64 (n,): ``1 - max(0, max_c cos(g, m_c))^2``, the residual of the best concept.

    Elementwise products summed along the last axis (``einsum``, no BLAS), so a
    generation's value never depends on the worker that computes it.
    """
    g = np.asarray(gen, dtype=np.float64)
    m = np.asarray(centroids, dtype=np.float64)
    cos = np.einsum("nd,cd->nc", g, m) / np.sqrt((g * g).sum(axis=1))[:, None]
    best = np.maximum(cos.max(axis=1), 0.0)
    return 1.0 - best * best


def novel(gen: np.ndarray, explained: np.ndarray, centroids: np.ndarray,
          ratio: float = DEFAULT_RATIO) -> np.ndarray:
    """bool (n,): generations whose specific clips do not beat the concepts by ``ratio``.

    ``explained`` is the part of each (unit-norm) generation's squared norm
    its candidate clips explain (0 when it has none).
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"novelty_ratio={ratio}: expected a value in (0, 1]")
    g = np.asarray(gen, dtype=np.float64)
    specific = 1.0 - explained / (g * g).sum(axis=1)
    return specific > ratio * generic_residual(gen, centroids)
