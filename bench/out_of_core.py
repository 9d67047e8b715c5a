"""Out-of-core attribution: peak memory stays flat as the catalogue grows.

Rule: ``residuals attribute`` streams clip embeddings from Parquet row groups,
so its peak resident memory should be bounded by a few hundred MB plus the
generation block, whatever the number of clips. This script writes sample
catalogues of growing size (``residuals.samples.make_samples``, d = 128, the
same generations count), runs the CLI on each in a child process, and prints
the child's peak RSS (``wait4`` rusage) next to the size the clip embeddings
would take in memory, and the ratio between them.

    .venv/bin/python bench/out_of_core.py [--clips 200000 2000000] [--generations 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract import schema as S  # noqa: E402


def run_peak_rss(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; return (seconds, peak RSS in MB) of that child alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-500:]}")
    return secs, usage.ru_maxrss / 1024.0  # KB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, nargs="+", default=[200_000, 2_000_000])
    ap.add_argument("--generations", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/residuals-bench"))
    args = ap.parse_args()

    from residuals.samples import make_samples

    exe = str(Path(sys.executable).parent / "residuals")
    print(f"d = {args.dim}, {args.generations:,} generations, k = {args.k}, "
          f"{os.cpu_count()} cores, row groups of 100,000 clips")
    print(f"{'clips':>10} {'embeddings MB':>14} {'peak RSS MB':>12} {'RSS/emb':>8} "
          f"{'make s':>7} {'attribute s':>12}")
    for n in args.clips:
        root = args.cache / f"ooc-{n}x{args.generations}x{args.dim}"
        t0 = time.perf_counter()
        cached = (root / S.GENERATIONS.filename).exists()
        if not cached:
            make_samples(root, creators=max(10, n // 100), clips=n,
                         generations=args.generations, dim=args.dim, seed=11,
                         row_group_size=100_000)
        made = "cached" if cached else f"{time.perf_counter() - t0:.1f}"
        out = args.cache / "ooc-out.parquet"
        secs, rss = run_peak_rss([exe, "attribute", "--clips", str(root / S.CLIPS.filename),
                                  "--generations", str(root / S.GENERATIONS.filename),
                                  "--out", str(out), "--k", str(args.k), "--quiet"])
        emb_mb = n * args.dim * 4 / 2**20
        print(f"{n:>10,} {emb_mb:>14,.0f} {rss:>12,.0f} {rss / emb_mb:>8.2f} "
              f"{made:>7} {secs:>12.1f}")


if __name__ == "__main__":
    main()
