"""A large batch posts in bounded memory: columnar frames and chunked writes, no Python
object per row kept alive.

A child process posts one batch of 200,000 creators (about 300,000 entries,
200,000 statement lines, clip credits and accounts) to SQLite, the way
``bench/ledger.py`` does, and reports its peak RSS above its RSS before
posting. The budget is 1 KB per creator: materialising the rows as Python
objects (a tuple and its values cost 150-300 bytes per row and table) or as
one big text buffer would exceed it; the 1,000,000-creator figures are in
docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CREATORS = 200_000
BYTES_PER_CREATOR = 1024


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_large_batch_memory_is_bounded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'big.db'}"
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "ledger.py"), "--child",
                          "posting", url, str(CREATORS), "2000"], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["entries"] == CREATORS + 1 + CREATORS // 2 + 1
    growth = (r["rss_peak_mb"] - r["rss_start_mb"]) * 2**20
    print(f"peak RSS growth {growth / 2**20:.0f} MB for {CREATORS:,} creators "
          f"({growth / CREATORS:.0f} bytes per creator)")
    assert growth < BYTES_PER_CREATOR * CREATORS
