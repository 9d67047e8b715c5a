"""A batch that moves more balances, and a status report that moves more payouts, than
one SQL statement can name in parameters.

PostgreSQL's protocol allows at most 65,535 parameters per statement; a batch
that changes more balances than that must still post (the balance range check
and update are set-based over a temporary table, never an ``IN (...)`` list),
and a report that re-credits or pays more payouts than that must still import
(their payable accounts are read in one scan). Both run the way
``bench/ledger.py`` runs them, on both backends.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

#: Half the creators carry their allocation, so about 70,000 balances change.
CREATORS = 140_000


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_batch_moving_more_balances_than_parameters_posts(db_url: str) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "ledger.py"), "--child",
                          "posting", db_url, str(CREATORS), "100"], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["entries"] == CREATORS + 1 + CREATORS // 2 + 1
    assert r["verify_entries"] == r["entries"]  # verified right after posting


#: Every line of the report moves money (paid or failed): more payouts than parameters.
REPORT_LINES = 70_000


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_report_moving_more_payouts_than_parameters_imports(db_url: str) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "ledger.py"), "--child",
                          "report", db_url, str(REPORT_LINES), "0"], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["lines"] == REPORT_LINES  # the child asserts every line matched and applied
    from sqlalchemy import text

    from ledger.store.engine import open_store, read_session
    from ledger.store.verify import verify

    engine = open_store(db_url)
    with read_session(engine) as s:
        report = verify(s)
        moved = s.execute(text("SELECT count(*) FROM payout_events WHERE state IN "
                               "('paid', 'failed') AND transaction_id IS NOT NULL")).scalar_one()
    engine.dispose()
    assert report.ok, report.violations[:3]
    assert moved == REPORT_LINES
