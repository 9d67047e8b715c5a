"""Allocation speed and memory: ``ledger.allocate`` against plain pandas, same data.

Rule: 1,000,000 creators, 3,000,000 clips and 10,000,000 attribution rows
(1,000,000 generations x top-10), allocated under the hybrid policy (70%
attribution, 30% corpus volume, opted-out creators excluded). Each
implementation runs in its own child process, which reads the same Parquet
files, times the allocation three times (reading excluded) and reports its
best time and its own peak RSS (``resource.getrusage``, so the whole process,
reading included). The two alternate for ``--rounds`` rounds, and each keeps
its best round, because load on a shared machine comes in bursts. The pandas
version is the straightforward one (groupby sums, float largest remainder,
the same tie-break keys); its payouts must equal ours, and the script asserts
it. Prints times, peak memory and the ratios. Nothing else is asserted.

    .venv/bin/python bench/allocate.py [--scale 1.0] [--rounds 3] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract import schema as S  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

POOL_MINOR = 2_500_000_000  # 25,000,000.00 USD
BATCH = "bench-allocate"
POLICY = """
name = "hybrid-70-30"
[pool]
currency = "USD"
[components]
attribution = 0.7
corpus = 0.3
[rules]
exclude_opted_out = true
unattributed = "redistribute"
"""


def make_data(out: Path, creators: int, clips: int, generations: int, k: int,
              seed: int = 11) -> None:
    """Write creators, clips, generations, accounts and attributions Parquet files."""
    import polars as pl

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)

    def ids(prefix: str, idx: np.ndarray) -> pl.Series:
        return pl.select(pl.lit(prefix) + pl.Series(idx).cast(pl.String).str.zfill(8)).to_series()

    pl.DataFrame({
        S.CREATOR_ID: ids("c", np.arange(creators)),
        S.DISPLAY_NAME: ids("Creator ", np.arange(creators)),
        S.OPTED_OUT: rng.random(creators) < 0.03,
    }).write_parquet(out / S.CREATORS.filename)
    # heavy-tailed catalogues: clip owners drawn from a Zipf-like distribution
    owner = np.minimum((rng.pareto(1.2, clips) * creators / 50).astype(np.int64), creators - 1)
    pl.DataFrame({
        S.CLIP_ID: ids("k", np.arange(clips)),
        S.CREATOR_ID: ids("c", owner),
    }).write_parquet(out / S.CLIPS.filename)
    gen = np.repeat(np.arange(generations), k)
    clip = rng.integers(0, clips, generations * k)
    raw = rng.random(generations * k) ** 3
    sums = np.bincount(gen, weights=raw, minlength=generations)
    weight = raw / sums[gen]
    rank = np.tile(np.arange(1, k + 1, dtype=np.int32), generations)
    pl.DataFrame({
        S.GENERATION_ID: ids("g", gen),
        S.CLIP_ID: ids("k", clip),
        S.CREATOR_ID: ids("c", owner[clip]),
        S.RANK: rank,
        S.SIMILARITY: (1.0 - rank / 100).astype(np.float32),
        S.WEIGHT: weight,
    }).write_parquet(out / S.ATTRIBUTIONS.filename)
    accounts = max(1, generations // 100)
    pl.DataFrame({
        S.GENERATION_ID: ids("g", np.arange(generations)),
        S.ACCOUNT_ID: ids("a", rng.integers(0, accounts, generations)),
    }).write_parquet(out / S.GENERATIONS.filename)
    pl.DataFrame({
        S.ACCOUNT_ID: ids("a", np.arange(accounts)),
        S.REVENUE_MINOR: rng.integers(0, 100_000, accounts),
    }).write_parquet(out / S.ACCOUNTS.filename)
    seal_attributions(out)


REPEAT = 3  # runs per child process; a child reports its best


def seal_attributions(data: Path) -> None:
    """Record in ``attributions.parquet`` the hashes of the clips and generations beside it,
    as ``residuals attribute`` does (readers refuse attributions without them)."""
    import polars as pl

    from attribution.scorer import write_attributions
    from contract.io import attribution_sources

    path = data / S.ATTRIBUTIONS.filename
    write_attributions(pl.read_parquet(path), path, attribution_sources(
        data / S.CLIPS.filename, data / S.GENERATIONS.filename))


def run_polars(data: Path, out: Path) -> dict:
    import polars as pl

    from ledger.allocate import ALLOCATED_MINOR, AllocationInputs, allocate
    from ledger.policy import parse_policy

    frames = {t.name: pl.read_parquet(data / t.filename)
              for t in (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS, S.ATTRIBUTIONS)}
    policy = parse_policy(POLICY, source="hybrid-70-30")
    inputs = AllocationInputs(frames["creators"], frames["clips"], frames["attributions"],
                              frames["generations"], frames["accounts"])
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        alloc = allocate(policy, inputs, pool_minor=POOL_MINOR, batch_id=BATCH)
        times.append(time.perf_counter() - t0)
    alloc.frame.select(S.CREATOR_ID, ALLOCATED_MINOR).write_parquet(out)
    return {"seconds": min(times), "first": times[0],
            "paid_creators": int((alloc.frame[ALLOCATED_MINOR] > 0).sum())}


def run_pandas(data: Path, out: Path) -> dict:
    """The same allocation written the obvious way in pandas."""
    import pandas as pd

    creators = pd.read_parquet(data / S.CREATORS.filename)
    clips = pd.read_parquet(data / S.CLIPS.filename)
    attr = pd.read_parquet(data / S.ATTRIBUTIONS.filename)
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        base = _pandas_allocation(creators, clips, attr)
        times.append(time.perf_counter() - t0)
    pd.DataFrame({S.CREATOR_ID: base.index, S.ALLOCATED_MINOR: base.to_numpy()}).to_parquet(out)
    return {"seconds": min(times), "first": times[0], "paid_creators": int((base > 0).sum())}


def _pandas_allocation(creators: pd.DataFrame, clips: pd.DataFrame,
                       attr: pd.DataFrame) -> pd.Series:
    """Hybrid 70/30 in plain pandas: allocated minor units indexed by creator_id."""
    import polars as pl

    from ledger.money import tie_keys  # the tie-break must be the same function

    clips = clips.drop_duplicates(S.CLIP_ID)
    df = creators[[S.CREATOR_ID, S.OPTED_OUT]].set_index(S.CREATOR_ID).sort_index()
    n_clips = clips.groupby(S.CREATOR_ID).size().reindex(df.index).fillna(0)
    weight = attr.groupby(S.CREATOR_ID)[S.WEIGHT].sum().reindex(df.index).fillna(0)
    eligible = ~df[S.OPTED_OUT] & (n_clips >= 1)
    n_clips, weight = n_clips.where(eligible, 0.0), weight.where(eligible, 0.0)
    share = 0.7 * weight / weight.sum() + 0.3 * n_clips / n_clips.sum()
    exact = share / share.sum() * POOL_MINOR
    base = np.floor(exact).astype("int64")
    left = POOL_MINOR - int(base.sum())
    keys = tie_keys(pl.Series(df.index.to_numpy(), dtype=pl.String), BATCH)
    rem = (exact - base).to_numpy()
    candidates = np.flatnonzero(share.to_numpy() > 0)
    # largest remainder first, then largest tie key (lexsort: last key is primary)
    order = np.lexsort((keys[candidates], rem[candidates]))[::-1]
    base.iloc[candidates[order[:left]]] += 1
    return base


def child(which: str, data: Path, out: Path) -> None:
    result = (run_polars if which == "polars" else run_pandas)(data, out)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(which: str, data: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", which, "--cache", str(data),
                           "--out", str(out)], capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"{which} run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0,
                    help="1 = 1,000,000 creators and 10,000,000 attribution rows")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/residuals-bench/allocate"))
    ap.add_argument("--child", choices=["polars", "pandas"])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternate the two implementations this many times; keep each one's best")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.cache, args.out)
        return

    import polars as pl

    creators, gens = int(1_000_000 * args.scale), int(1_000_000 * args.scale)
    data = args.cache / f"{creators}c-{gens}g"
    if not (data / S.ATTRIBUTIONS.filename).exists():
        t0 = time.perf_counter()
        make_data(data, creators, 3 * creators, gens, 10)
        print(f"generated data in {time.perf_counter() - t0:.1f} s -> {data}")
    rows = pl.scan_parquet(data / S.ATTRIBUTIONS.filename).select(pl.len()).collect().item()
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), "
          f"Python {platform.python_version()}, polars {pl.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"data: {creators:,} creators, {3 * creators:,} clips, {rows:,} attribution rows; "
          "hybrid 70/30 policy")
    # On a shared machine load comes in bursts: alternate the implementations
    # and keep each one's best round (its best of REPEAT runs in that round).
    rounds = []
    for _ in range(args.rounds):
        rounds.append((measure("polars", data, data / "out-polars.parquet"),
                       measure("pandas", data, data / "out-pandas.parquet")))
    ours = min((r[0] for r in rounds), key=lambda r: r["seconds"])
    theirs = min((r[1] for r in rounds), key=lambda r: r["seconds"])
    ours["peak_rss_mb"] = max(r[0]["peak_rss_mb"] for r in rounds)
    theirs["peak_rss_mb"] = max(r[1]["peak_rss_mb"] for r in rounds)
    per_round = [r[1]["seconds"] / r[0]["seconds"] for r in rounds]
    a = pl.read_parquet(data / "out-polars.parquet").sort(S.CREATOR_ID)
    b = pl.read_parquet(data / "out-pandas.parquet").sort(S.CREATOR_ID)
    assert a[S.CREATOR_ID].equals(b[S.CREATOR_ID]), "creator sets differ"
    diff = int((a[S.ALLOCATED_MINOR] != b[S.ALLOCATED_MINOR]).sum())
    assert diff == 0, f"{diff} payouts differ between ledger.allocate and pandas"
    assert int(a[S.ALLOCATED_MINOR].sum()) == POOL_MINOR
    print(f"{'':10} {'best of ' + str(REPEAT):>11} {'first run':>10} {'peak RSS':>10}")
    for name, r in (("ledger", ours), ("pandas", theirs)):
        print(f"{name:10} {r['seconds']:10.2f}s {r['first']:9.2f}s {r['peak_rss_mb']:8.0f} MB")
    print(f"speed-up per round: {', '.join(f'{x:.1f}x' for x in per_round)}; load average "
          f"now {os.getloadavg()[0]:.2f}")
    print(f"speed-up: {theirs['seconds'] / ours['seconds']:.1f}x (best against best); "
          f"memory ratio (pandas / ledger): {theirs['peak_rss_mb'] / ours['peak_rss_mb']:.2f}; "
          f"payouts identical for all {a.height:,} creators, sum {POOL_MINOR:,} minor units")


if __name__ == "__main__":
    main()
