"""Exact top-k speed: GEMM limit, faiss, scikit-learn and ``residuals attribute``, same data.

Rule: every engine runs in this process's run on the same clips and generations
(``residuals.samples.make_samples``, 200,000 clips x 20,000 generations x
d = 256, k = 10 at ``--scale 1``) and is reported as effective GFLOP/s,
``2 * clips * generations * d / seconds``, and as a ratio to the float32 GEMM
rate measured here (the physical limit of exact search) and to faiss
``IndexFlatIP``. Nothing is asserted; run it on a quiet machine.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1 = 200,000 x 20,000")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--sklearn-fraction", type=float, default=0.1,
                    help="share of generations scikit-learn scores (its rate is per FLOP)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/residuals-bench"))
    args = ap.parse_args()

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

    scorer = KnnScorer(k=args.k, workers=args.workers).fit(clips_path)
    secs, frame = timed(lambda: scorer.score(gens_df))
    rows.append(("KnnScorer.score, threads (search + weighting)", secs, flops))
    # agreement with faiss on the top-1 similarity (float32 rounding aside)
    top1 = frame.filter(frame[S.RANK] == 1)[S.SIMILARITY].to_numpy()
    agree = float(np.mean(np.abs(top1 - fd[:, 0]) < 1e-5))

    for name, extra in (("residuals attribute, threads (CLI end to end)", []),
                        ("residuals attribute, LocalCluster (CLI end to end)",
                         ["--scheduler", "local"])):
        out = args.cache / "speed-out.parquet"
        cmd = [str(Path(sys.executable).parent / "residuals"), "attribute", "--clips",
               str(clips_path), "--generations", str(gens_path), "--out", str(out),
               "--k", str(args.k), "--workers", str(args.workers), "--quiet", *extra]
        secs, _ = timed(lambda: subprocess.run(cmd, check=True, capture_output=True))
        rows.append((name, secs, flops))

    gemm = rows[0][2] / rows[0][1]
    faiss_rate = rows[1][2] / rows[1][1]
    print(f"{'engine':<52} {'seconds':>9} {'GFLOP/s':>9} {'x GEMM':>7} {'x faiss':>8}")
    for name, secs, fl in rows:
        rate = fl / secs
        print(f"{name:<52} {secs:>9.2f} {rate / 1e9:>9.1f} {rate / gemm:>7.2f} "
              f"{rate / faiss_rate:>8.2f}")
    print(f"top-1 similarity agrees with faiss for {agree:.4%} of generations")


if __name__ == "__main__":
    main()
