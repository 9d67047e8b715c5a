"""``residuals claims open|list|show|resolve`` end to end, on SQLite and PostgreSQL.

A real batch is posted from a contract data directory, a claim is opened,
shown with its evidence (the generation's candidates from the batch's
attributions) and upheld; the next batch pays it and ``ledger verify``
(recomputing both batches from their inputs) is OK. Two processes resolving
one claim at once record exactly one outcome.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.store import open_store
from tests.conftest import ROOT
from tests.ledger.store.conftest import db_url, pg_server  # noqa: F401 - both backends
from tests.ledger.store.kit import write_dataset
from tests.ledger.store.test_store_cli import POLICY, cli


@pytest.fixture
def posted(capsys, db_url: str, tmp_path: Path) -> tuple[str, Path]:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    write_dataset(data, 12)
    code, out, err = cli(capsys, "batch", "run", "--period", "2026-10", "--policy", POLICY,
                         "--data", data, "--db", db_url, "--out", tmp_path, "--pool", "100.00")
    assert code == 0, err
    return db_url, data


def _open(capsys, db: str, *extra: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return cli(capsys, "claims", "open", "--creator", "c0000003", "--period", "2026-10",
               "--db", db, *extra)


def test_claim_cycle_on_the_cli(capsys, posted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db, data = posted
    code, out, err = _open(capsys, db, "--kind", "copied_clip", "--generation", "g0000003",
                           "--clip", "k0000003", "--actor", "support")
    assert (code, out.strip()) == (0, "opened claim 1"), err
    code, out, _ = cli(capsys, "claims", "show", "1", "--db", db)
    assert code == 0
    assert "claim 1: copied_clip by c0000003, period 2026-10, state open" in out
    assert "k0000003\tc0000003\t0.9000\t0.7500  <- claimed" in out  # rank 1 of g0000003
    assert "k0000004\tc0000004\t0.8000\t0.2500" in out
    assert "statement 2026-10: earned" in out
    code, out, _ = cli(capsys, "claims", "resolve", "1", "--uphold", "--amount", "1.25",
                       "--db", db, "--actor", "admin")
    assert (code, out.strip()) == (0, "claim 1 upheld (paid by the next batch)")
    code, out, _ = cli(capsys, "claims", "list", "--state", "upheld", "--db", db)
    assert out.startswith("1\tupheld\tc0000003\tcopied_clip\t2026-10\t")
    code, _, err = cli(capsys, "batch", "run", "--period", "2026-11", "--policy", POLICY,
                       "--data", data, "--db", db, "--out", tmp_path, "--pool", "100.00")
    assert code == 0, err
    code, out, _ = cli(capsys, "claims", "show", "1", "--db", db)
    assert "upheld: 1.25 USD funded by pool, applied by batch" in out
    code, out, err = cli(capsys, "ledger", "verify", "--db", db)
    assert code == 0 and "OK:" in out and "batches recomputed 2" in out, out + err
    engine = open_store(db)
    with engine.connect() as conn:
        pool = conn.execute(text("SELECT pool_minor FROM batches WHERE period = '2026-11'"))
        assert pool.scalar_one() == 10_000 - 125
    engine.dispose()


def test_hostile_text_is_stored_and_printed_as_plain_text(capsys, posted) -> None:  # type: ignore[no-untyped-def]
    db, _ = posted
    hostile = "wrong!\n\x1b[2J<script>alert(1)</script> ![x](http://e/x.png) '; DROP TABLE claims"
    code, _, err = _open(capsys, db, "--kind", "wrong_amount", "--text", hostile)
    assert code == 0, err
    code, out, _ = cli(capsys, "claims", "show", "1", "--db", db)
    line = [x for x in out.splitlines() if x.startswith("text: ")]
    assert line == ["text: wrong!\\n\\x1b[2J<script>alert(1)</script> ![x](http://e/x.png) "
                    "'; DROP TABLE claims"]
    engine = open_store(db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT text FROM claims")).scalar_one() == hostile
    engine.dispose()


@pytest.mark.parametrize("args, code, message", [
    (["resolve", "1", "--uphold"], 1, "--uphold needs --amount"),
    (["resolve", "1", "--uphold", "--reject"], 1, "exactly one of --uphold and --reject"),
    (["resolve", "1", "--reject"], 1, "--reject needs --reason TEXT"),
    (["resolve", "1", "--uphold", "--amount", "1.234"], 1, "--amount '1.234'"),
    (["resolve", "1", "--uphold", "--amount", "1", "--funding", "bank"], 1, "--funding 'bank'"),
    (["resolve", "9", "--reject", "--reason", "x"], 1, "ID 9: no such claim"),
    (["resolve", "x"], 2, "Invalid value for 'ID'"),
    (["list", "--state", "lost"], 1, "--state 'lost'"),
    (["open", "--creator", "c0000001", "--period", "2026-10", "--kind", "copied_clip",
      "--clip", "k1"], 1, "--generation: must not be empty"),
    (["open", "--creator", "c0000001", "--period", "2030-01", "--kind", "wrong_amount",
      "--text", "x"], 1, "--period '2030-01'"),
    (["open", "--creator", "c0000001", "--period", "2026-10", "--kind", "wrong_amount",
      "--text", "x", "--expiry-days", "0"], 1, "--expiry-days 0"),
])
def test_errors_are_one_line_naming_the_flag(capsys, posted, args, code, message) -> None:  # type: ignore[no-untyped-def]
    db, _ = posted
    assert _open(capsys, db, "--kind", "wrong_amount", "--text", "too little")[0] == 0
    got, out, err = cli(capsys, "claims", *args, "--db", db)
    assert got == code and message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_two_processes_resolving_one_claim_record_one_outcome(capsys, posted) -> None:  # type: ignore[no-untyped-def]
    db, _ = posted
    assert _open(capsys, db, "--kind", "wrong_amount", "--text", "too little")[0] == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmds = [[sys.executable, "-m", "residuals", "claims", "resolve", "1", "--db", db, *how]
            for how in (["--uphold", "--amount", "2.00", "--actor", "one"],
                        ["--reject", "--reason", "no", "--actor", "two"])]
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in cmds]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert sorted(r[0] for r in results) == [0, 1], results
    loser = next(r for r in results if r[0] == 1)
    assert "is already" in loser[2] and "Traceback" not in loser[2]
    engine = open_store(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT outcome FROM claim_events")).scalars().all()
    engine.dispose()
    assert len(rows) == 1
