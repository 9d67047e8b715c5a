"""Crash safety and concurrency of ``residuals batch run``, on SQLite and PostgreSQL.

- kill -9 at a random moment of a batch run, 30 times per backend: afterwards
  the database holds the whole batch or none of it, ``verify`` is OK, and
  running again completes the batch exactly once;
- two runs of the same period started together: exactly one posts, the other
  reports it (the same batch: "already posted"; a different one: refused).

The kill delay is drawn uniformly over the length of a complete run measured
first, so kills land before, during and after the posting transaction. The
seed is printed; set ``RESIDUALS_CRASH_SEED`` to replay a run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.store import models as M
from ledger.store import open_store, read_session
from ledger.store.verify import verify
from residuals.cli import main
from tests.conftest import ROOT
from tests.ledger.store.kit import write_dataset

POLICY = ROOT / "policies" / "attribution.toml"
KILLS = 30
CREATORS = 5_000


def command(data: Path, db: str, out: Path, period: str, pool: str = "5000.00") -> list[str]:
    return [sys.executable, "-m", "residuals", "batch", "run", "--period", period, "--policy",
            str(POLICY), "--data", str(data), "--db", db, "--out", str(out), "--pool", pool]


def period_batches(db: str, period: str, *, check: bool = True) -> tuple[int, int]:
    """(batches of ``period``, all batches), after checking that verify is OK."""
    engine = open_store(db)
    try:
        with read_session(engine) as s:
            if check:
                report = verify(s)
                assert report.ok, [str(v) for v in report.violations]
            mine = s.execute(select(func.count()).select_from(M.Batch)
                             .where(M.Batch.period == period)).scalar_one()
            total = s.execute(select(func.count()).select_from(M.Batch)).scalar_one()
    finally:
        engine.dispose()
    return int(mine), int(total)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill9_leaves_all_or_nothing(db_url: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("RESIDUALS_CRASH_SEED", random.randrange(1 << 30)))
    print(f"crash seed {seed}")
    rng = random.Random(seed)
    data = tmp_path / "data"
    write_dataset(data, CREATORS)
    start = time.perf_counter()
    subprocess.run(command(data, db_url, tmp_path, "p00"), check=True, capture_output=True,
                   cwd=ROOT)
    full = time.perf_counter() - start
    outcomes = {"none": 0, "whole": 0}
    rerun = {"posted": 0, "already": 0}
    for i in range(1, KILLS + 1):
        period = f"p{i:02d}"
        proc = subprocess.Popen(command(data, db_url, tmp_path, period), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, full))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mine, total = period_batches(db_url, period)
        assert mine in (0, 1) and total == i + mine  # p00 .. p(i-1), and maybe p(i)
        outcomes["whole" if mine else "none"] += 1
        with pytest.raises(SystemExit) as info:
            main(command(data, db_url, tmp_path, period)[3:])
        out = " ".join(capsys.readouterr().out.split())
        assert info.value.code in (0, None)
        rerun["posted" if "posted batch" in out else "already"] += 1
        assert ("already posted" in out) == bool(mine)
        mine, total = period_batches(db_url, period, check=i == KILLS)
        assert (mine, total) == (1, i + 1)
        assert (tmp_path / f"payouts-{period}.csv").exists()
    print(f"after kill -9: {outcomes}; re-runs: {rerun}; full run {full:.2f}s")


def _start_two(cmds: list[list[str]]) -> list[tuple[int, str, str]]:
    procs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for c in cmds]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append((p.returncode, " ".join(out.split()), err.strip()))
    return results


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_runs_of_the_same_batch_at_once(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_dataset(data, 2000)
    for period in ("a1", "a2"):  # "a1" also races the first-use schema migration
        results = _start_two([command(data, db_url, tmp_path, period)] * 2)
        assert [r[0] for r in results] == [0, 0], results
        posted = [r for r in results if "posted batch" in r[1]]
        told = [r for r in results if "already posted" in r[1]]
        assert len(posted) == 1 and len(told) == 1, results
        assert period_batches(db_url, period)[0] == 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_different_batches_for_a_period_at_once(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_dataset(data, 2000)
    results = _start_two([command(data, db_url, tmp_path, "b1", pool="100.00"),
                          command(data, db_url, tmp_path, "b1", pool="200.00")])
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    loser = next(r for r in results if r[0] == 1)
    assert "already has batch" in loser[2] and "--supersede" in loser[2]
    assert period_batches(db_url, "b1") == (1, 1)
