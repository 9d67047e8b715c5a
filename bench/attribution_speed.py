"""Exact top-k speed: GEMM limit, faiss, scikit-learn and ``residuals attribute``, same data.

Rule: every engine runs in this run on the same clips and generations
(``residuals.samples.make_samples``, 200,000 clips x 20,000 generations x
d = 256 at ``--scale 1``) and is reported as effective GFLOP/s,
``2 * clips * generations * d / seconds``, and as a ratio to the float32 GEMM
rate measured here (the physical limit of exact search) and to faiss
``IndexFlatIP`` search alone with k = 10. faiss and the ``residuals
attribute`` command (end to end: reading Parquet, search, weighting, writing)
run as subprocesses once per BLAS configuration (the environment as it is,
and ``OPENBLAS_CORETYPE`` removed when it is set, or pinned to each of
``--coretypes`` when it is not); each engine's best time is kept, so engines
are compared best against best. The command runs at its default settings
(``--k``, ``--depth``, method) and at ``--depths`` (64 and 32). Nothing is asserted;
run it on a quiet machine.

    .venv/bin/python bench/attribution_speed.py [--scale 0.1] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract import schema as S  # noqa: E402
from contract.io import embedding_matrix, read_table  # noqa: E402


def data(scale: float, dim: int, cache: Path) -> tuple[Path, int, int]:
    """Sample data for this scale (cached between runs; same seed, same bytes)."""
    from residuals.samples import make_samples

    clips, gens = int(200_000 * scale), int(20_000 * scale)
    out = cache / f"speed-{clips}x{gens}x{dim}"
    if not (out / S.GENERATIONS.filename).exists():
        make_samples(out, creators=max(10, clips // 100), clips=clips, generations=gens,
                     dim=dim, seed=7, row_group_size=50_000)
    return out, clips, gens


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def gemm_rate(gen: np.ndarray, clips: np.ndarray) -> float:
    """Seconds for the full float32 product gen @ clips.T, blocked into a reused buffer."""
    bg, bc = 2048, 32_768
    buf = np.empty((bg, bc), dtype=np.float32)
    t0 = time.perf_counter()
    for i in range(0, len(gen), bg):
        g = gen[i:i + bg]
        for j in range(0, len(clips), bc):
            c = clips[j:j + bc]
            np.matmul(g, c.T, out=buf[:len(g), :len(c)])
    return time.perf_counter() - t0


def blas_configs(coretypes: str) -> list[dict[str, str]]:
    """Environments to time each engine in: as is, and with ``OPENBLAS_CORETYPE`` changed."""
    env = dict(os.environ)
    if "OPENBLAS_CORETYPE" in env:
        return [env, {k: v for k, v in env.items() if k != "OPENBLAS_CORETYPE"}]
    return [env] + [{**env, "OPENBLAS_CORETYPE": c} for c in coretypes.split(",") if c]


def best_of(configs: list[dict[str, str]], cmd: list[str]) -> float:
    """Best wall time of ``cmd`` over the BLAS configurations (printed as it goes)."""
    best = float("inf")
    for env in configs:
        t0 = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        secs = time.perf_counter() - t0
        if "--faiss-only" in cmd:
            secs = float(done.stdout.strip().splitlines()[-1])
        print(f"  {' '.join(c for c in cmd[2:4])} OPENBLAS_CORETYPE="
              f"{env.get('OPENBLAS_CORETYPE', '(unset)')}: {secs:.2f} s", flush=True)
        best = min(best, secs)
    return best


def faiss_search(root: Path, k: int, workers: int) -> float:
    """Seconds of faiss ``IndexFlatIP.search`` alone (index built before the clock starts)."""
    import faiss

    from attribution.search import normalize

    clips = normalize(embedding_matrix(read_table(root / S.CLIPS.filename, S.CLIPS),
                                       root / S.CLIPS.filename, S.CLIPS))
    gens = normalize(embedding_matrix(read_table(root / S.GENERATIONS.filename, S.GENERATIONS),
                                      root / S.GENERATIONS.filename, S.GENERATIONS))
    faiss.omp_set_num_threads(workers)
    index = faiss.IndexFlatIP(clips.shape[1])
    index.add(clips)
    t0 = time.perf_counter()
    index.search(gens, k)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1 = 200,000 x 20,000")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--sklearn-fraction", type=float, default=0.02,
                    help="share of generations scikit-learn scores (its rate is per FLOP)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/residuals-bench"))
    ap.add_argument("--coretypes", default="Haswell",
                    help="OPENBLAS_CORETYPE values to pin, comma-separated, when none is set")
    ap.add_argument("--depths", default="64,32",
                    help="search depths timed besides the default, comma-separated")
    ap.add_argument("--faiss-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.faiss_only is not None:
        print(faiss_search(args.faiss_only, args.k, args.workers))
        return

    from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
    from attribution.scorer import KnnScorer, default_method
    from attribution.search import normalize

    root, n_clips, n_gens = data(args.scale, args.dim, args.cache)
    clips_path, gens_path = root / S.CLIPS.filename, root / S.GENERATIONS.filename
    clips_df = read_table(clips_path, S.CLIPS)
    gens_df = read_table(gens_path, S.GENERATIONS)
    clips = normalize(embedding_matrix(clips_df, clips_path, S.CLIPS))
    gen = normalize(embedding_matrix(gens_df, gens_path, S.GENERATIONS))
    del clips_df
    flops = 2.0 * n_clips * n_gens * args.dim
    print(f"data: {n_clips:,} clips x {n_gens:,} generations x d = {args.dim}, k = {args.k}; "
          f"{os.cpu_count()} cores; method {default_method()}")
    rows: list[tuple[str, float, float]] = []  # name, seconds, flops

    secs = gemm_rate(gen, clips)
    rows.append(("float32 GEMM (numpy/OpenBLAS, no top-k)", secs, flops))

    import faiss

    faiss.omp_set_num_threads(args.workers)
    index = faiss.IndexFlatIP(args.dim)
    index.add(clips)
    secs, (fd, fi) = timed(lambda: index.search(gen, args.k))
    rows.append(("faiss IndexFlatIP search", secs, flops))

    from sklearn.neighbors import NearestNeighbors

    m = max(1, int(n_gens * args.sklearn_fraction))
    nn = NearestNeighbors(n_neighbors=args.k, algorithm="brute", metric="cosine",
                          n_jobs=args.workers).fit(clips)
    secs, _ = timed(lambda: nn.kneighbors(gen[:m]))
    rows.append((f"scikit-learn brute cosine ({m:,} generations)", secs,
                 2.0 * n_clips * m * args.dim))

    # softmax over a floor of -1 writes every candidate, so rank 1 is always present
    scorer = KnnScorer(k=args.k, depth=args.k, method="softmax", min_similarity=-1.0,
                       workers=args.workers).fit(clips_path)
    secs, frame = timed(lambda: scorer.score(gens_df))
    rows.append((f"KnnScorer.score, threads (search + softmax, depth {args.k})", secs, flops))
    # agreement with faiss on the top-1 similarity (float32 rounding aside)
    top1 = frame.filter(frame[S.RANK] == 1)[S.SIMILARITY].to_numpy()
    agree = float(np.mean(np.abs(top1 - fd[:, 0]) < 1e-5))

    configs = blas_configs(args.coretypes)
    faiss_best = best_of(configs, [sys.executable, __file__, "--faiss-only", str(root),
                                   "--k", str(args.k), "--workers", str(args.workers)])
    rows.append((f"faiss IndexFlatIP search, k = {args.k}, best BLAS config", faiss_best, flops))
    out = args.cache / "speed-out.parquet"
    cli = [str(Path(sys.executable).parent / "residuals"), "attribute", "--clips",
           str(clips_path), "--generations", str(gens_path), "--out", str(out),
           "--workers", str(args.workers), "--quiet"]
    runs = [(f"residuals attribute, defaults (k {DEFAULT_K}, depth {DEFAULT_DEPTH})", [])]
    runs += [(f"residuals attribute, defaults but depth {d}", ["--depth", str(d)])
             for d in map(int, args.depths.split(",")) if d != DEFAULT_DEPTH]
    runs += [(f"residuals attribute, --k {args.k} --depth {args.k}",
              ["--k", str(args.k), "--depth", str(args.k)])]
    for name, extra in runs:
        rows.append((name + ", best BLAS config", best_of(configs, cli + extra), flops))

    gemm = rows[0][2] / rows[0][1]
    faiss_rate = next(fl / sec for name, sec, fl in rows if "best BLAS" in name)
    print(f"{'engine':<70} {'seconds':>9} {'GFLOP/s':>9} {'x GEMM':>7} {'x faiss':>8}")
    for name, secs, fl in rows:
        rate = fl / secs
        print(f"{name:<70} {secs:>9.2f} {rate / 1e9:>9.1f} {rate / gemm:>7.2f} "
              f"{rate / faiss_rate:>8.2f}")
    print(f"top-1 similarity agrees with faiss for {agree:.4%} of generations")


if __name__ == "__main__":
    main()
