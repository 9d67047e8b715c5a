"""Policy lab recompute time: one edit of a 100,000-creator period, as the page does it.

Rule: the lab keeps the posted policy's allocation cached; an edit costs one
allocation under the edited policy (:func:`dashboard.data.reallocate`) plus the
comparison (:func:`dashboard.lab.compare`, the metrics table, the Lorenz
chart serialised as the page sends it). The baseline, measured in the same run on the same inputs, is the
allocation alone (:func:`ledger.allocate.allocate`): the ratio shows what the
lab adds on top of the engine. Target: the recompute under 2 s. Data: the
synthetic generator of ``bench/allocate.py`` (heavy-tailed catalogues,
top-10 attributions). Prints the median of ``--repeat`` runs; asserts nothing.

    .venv/bin/python bench/dashboard_lab.py [--creators 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from allocate import seal_attributions  # noqa: E402 (bench/allocate.py)
from contract import schema as S  # noqa: E402

CURRENT = """
name = "hybrid-70-30"
[pool]
currency = "USD"
amount = "250000.00"
[components]
attribution = 0.7
corpus = 0.3
[rules]
exclude_opted_out = true
min_payout = "10.00"
"""


def merge_repeated_pairs(path: Path) -> None:
    """The generator draws clips with replacement; the contract wants one row per
    (generation, clip): merge repeats (weights add, so each generation still sums to 1)."""
    import polars as pl

    df = pl.read_parquet(path)
    df.group_by(S.GENERATION_ID, S.CLIP_ID, S.CREATOR_ID).agg(
        pl.col(S.RANK).min(), pl.col(S.SIMILARITY).max(), pl.col(S.WEIGHT).sum(),
    ).sort(S.GENERATION_ID, S.RANK).write_parquet(path)
    seal_attributions(path.parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from allocate import make_data  # bench/allocate.py: the shared synthetic generator

    from dashboard import charts, lab
    from ledger.fairness import AMOUNT_SHARE, POPULATION_SHARE
    from dashboard.data import LabPeriod, load_inputs, reallocate
    from ledger.allocate import allocate
    from ledger.policy import parse_policy

    n = args.creators
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        make_data(data, creators=n, clips=3 * n, generations=n, k=10)
        merge_repeated_pairs(data / S.ATTRIBUTIONS.filename)
        inputs = load_inputs(data, None)
        load_s = time.perf_counter() - t0
    period = LabPeriod("bench-lab", "2026-10", CURRENT, 25_000_000, "USD", n, inputs)
    current = reallocate(period, CURRENT)
    edited_text = lab.apply_knobs(CURRENT, lab.Knobs(
        weights={"attribution": 0.5, "corpus": 0.3, "user_centric": 0.0, "equal": 0.2},
        cap_share=0.01, min_payout="5.00", exclude_opted_out=True, unattributed="redistribute"))
    policy = parse_policy(CURRENT)

    base, lab_times = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        allocate(policy, inputs, pool_minor=period.pool_minor, currency="USD",
                 batch_id=period.batch_id)
        base.append(time.perf_counter() - t)
        t = time.perf_counter()
        edited = reallocate(period, edited_text)
        cmp = lab.compare(current, edited)
        lab.metrics_table(cmp.metrics, "USD")
        charts.lorenz(cmp.lorenz, x=POPULATION_SHARE, y=AMOUNT_SHARE, series=lab.SERIES,
                      title="Lorenz").to_dict()  # what the page sends to the browser
        lab_times.append(time.perf_counter() - t)

    b, r = statistics.median(base), statistics.median(lab_times)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
          f"(shared with other work while measured)")
    print(f"period: {n:,} creators, {3 * n:,} clips, {10 * n:,} attribution rows "
          f"(inputs generated and loaded in {load_s:.1f} s)")
    print(f"baseline  allocate() alone             median {b:6.3f} s  ({args.repeat} runs)")
    print(f"lab       reallocate + compare + chart median {r:6.3f} s  ({args.repeat} runs)")
    print(f"ratio lab / allocate: {r / b:.2f}x; target < 2 s: {'met' if r < 2 else 'NOT met'}")
    print(f"creators paid: current {int((current.frame['paid_minor'] > 0).sum()):,}, "
          f"edited {int((edited.frame['paid_minor'] > 0).sum()):,}")


if __name__ == "__main__":
    main()
