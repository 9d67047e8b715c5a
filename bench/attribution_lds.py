"""Counterfactual check: the linear datamodeling score (LDS) of every weighting method.

Rule: attribution weights claim that a generation owes itself to some clips.
The check makes that claim testable with a generative model small enough to
retrain many times: train it on a catalogue of clip embeddings, sample
generations from it, then for S random half subsets of the catalogue retrain
it on the subset and record each generation's log-likelihood ``ll[s, j]``.
A method's attribution weights ``w[j, i]`` (computed once, on the full
catalogue, through :class:`attribution.scorer.KnnScorer`) predict that a
subset containing the clips credited for generation ``j`` makes ``j`` more
likely. With ``a[s, j] = sum_{i in subset s} w[j, i]``::

    LDS = mean over generations j of Spearman( a[:, j], ll[:, j] )   (across subsets s)

A generation whose ``a[:, j]`` is constant across subsets (no weight at all,
e.g. marked novel) scores 0: it predicts nothing. LDS near 1 means the
weights track the model's counterfactual behaviour (influence), near 0 that
they only describe resemblance. Two model classes, both retrained exactly
(no approximation): a ``GaussianMixture`` (diagonal covariances, fixed
``random_state``) and a Gaussian kernel density estimate (bandwidth fixed).

Sizes (fixed below, a few seconds on two cores): the catalogue is the
``topics`` family's clips (frozen parameters, smaller sizes, d = 16),
``CLIPS`` clips, ``GENERATIONS`` generations sampled from each model,
``SUBSETS`` half subsets drawn with a fixed seed. Methods: ``softmax``,
``knn-shapley``, ``nnls`` (library defaults, i.e. the concepts novelty rule
at the default depth; the fixed floor; no novelty rule; depth 128 and 256;
``knn-shapley`` and ``softmax`` also at depth 256), and plain
cosine top-k (weight 1/k on each of the k most similar clips)
as the resemblance baseline. Deterministic: same code, same numbers.

Usage::

    python bench/attribution_lds.py [--subsets 64] [--k 15] [--seed 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from attribution.candidates import DEFAULT_DEPTH  # noqa: E402
from attribution.scorer import KnnScorer  # noqa: E402
from contract import schema as S  # noqa: E402
from residuals.families import FAMILIES, topics  # noqa: E402

CLIPS, GENERATIONS, DIM = 400, 200, 16
GMM_COMPONENTS = 12
KDE_BANDWIDTH = 0.25

#: Methods under test: name -> KnnScorer keyword arguments (None: cosine top-k baseline).
#: Every one at the library's default depth unless it names another.
METHODS: dict[str, dict | None] = {
    "cosine top-k (baseline)": None,
    "softmax": {"method": "softmax"},
    "knn-shapley": {"method": "knn-shapley"},
    "nnls (defaults: concepts rule)": {"method": "nnls"},
    "nnls, floor 0.52": {"method": "nnls", "novelty": "floor"},
    "nnls, no novelty rule": {"method": "nnls", "novelty": "floor", "min_similarity": -1.0},
    "nnls, depth 128": {"method": "nnls", "depth": 128},
    "nnls, depth 256": {"method": "nnls", "depth": 256},
    "knn-shapley, depth 256": {"method": "knn-shapley", "depth": 256},
    "softmax, depth 256": {"method": "softmax", "depth": 256},
}


def lds(weights: np.ndarray, subsets: np.ndarray, ll: np.ndarray) -> tuple[float, np.ndarray]:
    """(mean LDS, per-generation Spearman correlations).

    Parameters
    ----------
    weights : float (m, n)
        Attribution weight of clip i for generation j.
    subsets : bool (s, n)
        Which clips each retraining subset holds.
    ll : float (s, m)
        Log-likelihood of generation j under the model retrained on subset s.

    A generation whose predicted sum (or log-likelihood) is constant across
    subsets has correlation 0.
    """
    pred = subsets.astype(np.float64) @ weights.T  # (s, m)
    rp, rl = rankdata(pred, axis=0), rankdata(ll, axis=0)
    rp -= rp.mean(axis=0)
    rl -= rl.mean(axis=0)
    den = np.sqrt((rp ** 2).sum(axis=0) * (rl ** 2).sum(axis=0))
    rho = np.divide((rp * rl).sum(axis=0), den, out=np.zeros(den.shape), where=den > 1e-12)
    return float(rho.mean()), rho


def half_subsets(n: int, count: int, seed: int) -> np.ndarray:
    """bool (count, n): ``count`` random subsets of exactly n // 2 clips each."""
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((count, n)), axis=1)
    out = np.zeros((count, n), dtype=bool)
    np.put_along_axis(out, order[:, : n // 2], True, axis=1)
    return out


def gmm(train: np.ndarray):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(n_components=GMM_COMPONENTS, covariance_type="diag",
                           reg_covar=1e-4, random_state=0).fit(train)


def kde_loglik(train: np.ndarray, x: np.ndarray, h: float = KDE_BANDWIDTH) -> np.ndarray:
    """Log density of each row of ``x`` under a Gaussian KDE on ``train`` (bandwidth ``h``)."""
    from scipy.special import logsumexp

    d2 = ((x[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)
    dim = train.shape[1]
    return (logsumexp(-d2 / (2 * h * h), axis=1) - np.log(len(train))
            - 0.5 * dim * np.log(2 * np.pi * h * h))


def model_runs(clips: np.ndarray, subsets: np.ndarray, seed: int) -> dict[str, tuple]:
    """{model class: (generations, ll (s, m))}: sample from the full model, retrain per subset."""
    full = gmm(clips)
    gens_gmm = full.sample(GENERATIONS)[0]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(clips), GENERATIONS)
    gens_kde = clips[pick] + KDE_BANDWIDTH * rng.standard_normal((GENERATIONS, clips.shape[1]))
    ll_gmm = np.stack([gmm(clips[s]).score_samples(gens_gmm) for s in subsets])
    ll_kde = np.stack([kde_loglik(clips[s], gens_kde) for s in subsets])
    return {"GaussianMixture": (gens_gmm, ll_gmm), "KDE": (gens_kde, ll_kde)}


def _frame(emb: np.ndarray, prefix: str, id_col: str, creators: np.ndarray | None) -> pl.DataFrame:
    ids = [f"{prefix}{i:05d}" for i in range(len(emb))]
    cols = {id_col: ids}
    if creators is not None:
        cols[S.CREATOR_ID] = [f"creator_{c:04d}" for c in creators]
    cols[S.EMBEDDING] = emb.astype(np.float32).tolist()
    return pl.DataFrame(cols, schema_overrides={S.EMBEDDING: pl.Array(pl.Float32, emb.shape[1])})


def weight_matrix(clips: np.ndarray, creators: np.ndarray, gens: np.ndarray, k: int,
                  params: dict | None) -> np.ndarray:
    """(m, n) weights of one method on the full catalogue (``None``: cosine top-k, 1/k each)."""
    clip_df = _frame(clips, "clip_", S.CLIP_ID, creators)
    gen_df = _frame(gens, "gen_", S.GENERATION_ID, None)
    out = KnnScorer(k=k, **(params or {"method": "softmax"})).fit(clip_df).score(gen_df)
    g = out[S.GENERATION_ID].str.slice(4).cast(pl.Int64).to_numpy()
    c = out[S.CLIP_ID].str.slice(5).cast(pl.Int64).to_numpy()
    w = out[S.WEIGHT].to_numpy() if params is not None else np.full(len(g), 1.0 / k)
    dense = np.zeros((len(gens), len(clips)))
    np.add.at(dense, (g, c), w)
    return dense


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subsets", type=int, default=64)
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--seed", type=int, default=FAMILIES["topics"].held_out_seed)
    args = ap.parse_args(argv)
    if args.subsets < 2:
        ap.error(f"--subsets {args.subsets}: expected >= 2")
    t0 = time.perf_counter()
    params = replace(FAMILIES["topics"].params, creators=40, clips=CLIPS, generations=1, dim=DIM)
    planted = topics(params, args.seed)
    clips, creators = planted.clip_emb.astype(np.float64), planted.clip_creator
    subsets = half_subsets(CLIPS, args.subsets, args.seed)
    runs = model_runs(clips, subsets, args.seed)
    print(f"catalogue: topics family, seed {args.seed}, {CLIPS} clips, d = {DIM}; "
          f"{GENERATIONS} generations per model; {args.subsets} half subsets; k = {args.k}, "
          f"default depth {DEFAULT_DEPTH}\n")
    print("| method | " + " | ".join(f"LDS {m} (± s.e.) | unattributed {m}" for m in runs) + " |")
    print("|---|" + "---:|---:|" * len(runs))
    for name, method_params in METHODS.items():
        cells = []
        for gens, ll in runs.values():
            w = weight_matrix(clips, creators, gens, args.k, method_params)
            score, rho = lds(w, subsets, ll)
            se = rho.std(ddof=1) / np.sqrt(len(rho))
            cells += [f"{score:.4f} ± {se:.4f}", f"{(w.sum(axis=1) == 0).mean():.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
