"""Weighting throughput on one core: (generation, candidate) pairs per second.

Rule: every rate is measured in the same run on the same candidate lists and
printed with its ratio to a baseline measured alongside: a reversed
cumulative sum over an array of the same shape (the memory-bound floor of the
KNN-Shapley recursion, which is one such sum plus a few element-wise passes).
Target (issue: weighting): ``knn-shapley`` >= 2e7 pairs/s per core.

BLAS and OpenMP are limited to one thread before numpy is imported, so the
numbers are per core.

Usage::

    python bench/shapley_speed.py [--n 1000000] [--k 10] [--nnls-n 20000] [--d 256]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from attribution.candidates import Candidates  # noqa: E402
from attribution.shapley import coverage_shapley  # noqa: E402
from attribution.weighting import weigh  # noqa: E402


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Fastest wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="generations")
    ap.add_argument("--k", type=int, default=10, help="candidates per generation")
    ap.add_argument("--nnls-n", type=int, default=20_000, help="generations for nnls")
    ap.add_argument("--d", type=int, default=256, help="embedding dimension for nnls")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    sim = -np.sort(-rng.uniform(0.2, 1.0, size=(args.n, args.k)), axis=1).astype(np.float32)
    valid = np.ones(sim.shape, dtype=bool)
    cands = Candidates(sim=sim, valid=valid)
    pairs = args.n * args.k
    sim64 = sim.astype(np.float64)

    base = best_of(lambda: np.cumsum(sim64[:, ::-1], axis=1), args.repeat)
    rows: list[tuple[str, float, int]] = [("baseline: reversed cumsum (n, k)", base, pairs)]
    rows.append(("coverage_shapley values", best_of(
        lambda: coverage_shapley(sim, valid, n_neighbors=3, tau=0.4), args.repeat), pairs))
    rows.append(("weigh knn-shapley (values + floor + normalise)", best_of(
        lambda: weigh("knn-shapley", cands), args.repeat), pairs))
    rows.append(("weigh softmax", best_of(lambda: weigh("softmax", cands), args.repeat), pairs))

    m = args.nnls_n
    gen = rng.normal(size=(m, args.d)).astype(np.float32)
    gen /= np.linalg.norm(gen, axis=1, keepdims=True)
    cand = gen[:, None, :] + rng.normal(scale=0.08, size=(m, args.k, args.d)).astype(np.float32)
    cand /= np.linalg.norm(cand, axis=2, keepdims=True)
    nsim = -np.sort(-np.einsum("nkd,nd->nk", cand, gen), axis=1).astype(np.float32)
    emb = Candidates(sim=nsim, valid=np.ones(nsim.shape, dtype=bool), gen=gen, cand=cand)
    rows.append((f"weigh nnls (d = {args.d})", best_of(lambda: weigh("nnls", emb), 1), m * args.k))
    rows.append((f"weigh knn-shapley + dedup 0.97 (d = {args.d})",
                 best_of(lambda: weigh("knn-shapley", emb, dedup_threshold=0.97), 1),
                 m * args.k))

    base_rate = pairs / base
    print(f"one core; n = {args.n:,} generations x k = {args.k} (nnls and dedup: "
          f"{m:,} x {args.k}, d = {args.d})\n")
    print("| what | seconds | pairs/s | x baseline |")
    print("|---|---:|---:|---:|")
    for name, sec, npairs in rows:
        rate = npairs / sec
        print(f"| {name} | {sec:.4f} | {rate:.3g} | {rate / base_rate:.3f} |")
    knn = pairs / rows[2][1]
    print(f"\nknn-shapley weighting: {knn:.3g} pairs/s per core "
          f"(target >= 2e7: {'met' if knn >= 2e7 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
