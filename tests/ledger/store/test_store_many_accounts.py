"""A batch that moves more balances than one SQL statement can name in parameters.

PostgreSQL's protocol allows at most 65,535 parameters per statement; a batch
that changes more balances than that must still post (the balance range check
and update are set-based over a temporary table, never an ``IN (...)`` list).
The batch is posted the way ``bench/ledger.py`` posts it, verified there, on
both backends.
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
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "ledger.py"), "--child", db_url,
                          str(CREATORS), "100"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["entries"] == CREATORS + 1 + CREATORS // 2 + 1
    assert r["verify_entries"] == r["entries"]  # verified right after posting
