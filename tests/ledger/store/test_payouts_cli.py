"""``residuals payouts export|import|list``, ``creators set``, ``batch list|show``, end to end
on SQLite and PostgreSQL: files parsed back, reconciliation, idempotence, hostile input,
two imports at once and ``kill -9`` during an import."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text

from contract import schema as S
from ledger.store import open_store, write_session
from ledger.store.bulk import insert_frame
from tests.conftest import ROOT
from tests.ledger.store.payout_kit import complete, payable, post, states, violations
from tests.ledger.store.test_store_cli import cli

HEADER = "payout_id,status,provider_reference,failure_code,amount_minor,currency,occurred_at\n"


@pytest.fixture
def ledger(db_url: str) -> tuple[str, Engine, str]:
    """alice and bob complete (pending), carol without a profile (held), dan carried."""
    engine = open_store(db_url)
    complete(engine, "alice", "bob")
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000, "carol": 3000, "dan": 10})
    return db_url, engine, b1


def export(capsys, db: str, fmt: str, out: Path, batch: str = "P1"):  # type: ignore[no-untyped-def]
    return cli(capsys, "payouts", "export", "--batch", batch, "--format", fmt, "--out", out,
               "--db", db)


def ids(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT creator_id, payout_id FROM payouts")).all())


@pytest.mark.parametrize("fmt", ["csv", "paypal", "stripe"])
def test_export_formats_parse_back_and_submit(capsys, ledger, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              fmt: str) -> None:
    db, engine, b1 = ledger
    out = tmp_path / f"out.{fmt}"
    code, stdout, err = export(capsys, db, fmt, out)
    assert code == 0, err
    assert "exported 2 payouts" in stdout and "1 held" in stdout
    raw = out.read_text()
    pid = ids(engine)
    if fmt == "csv":
        rows = {r["creator_id"]: r for r in csv.DictReader(io.StringIO(raw))}
        assert {c: (r["payout_id"], int(r["amount_minor"]), r["currency"], r["amount"])
                for c, r in rows.items()} == {"alice": (pid["alice"], 5000, "USD", "50.00"),
                                              "bob": (pid["bob"], 4000, "USD", "40.00")}
    elif fmt == "paypal":
        rows = list(csv.reader(io.StringIO(raw)))
        assert sorted(rows) == sorted([
            ["alice@example.com", "50.00", "USD", pid["alice"], "Residuals payout, period P1",
             "PAYPAL"],
            ["bob@example.com", "40.00", "USD", pid["bob"], "Residuals payout, period P1",
             "PAYPAL"]])
    else:
        rows = [json.loads(line) for line in raw.splitlines()]
        got = {r["idempotency_key"]: (r["params"]["amount"], r["params"]["currency"],
                                      r["params"]["destination"],
                                      r["params"]["metadata"]["payout_id"]) for r in rows}
        assert got == {pid["alice"]: (5000, "usd", "alice@example.com", pid["alice"]),
                       pid["bob"]: (4000, "usd", "bob@example.com", pid["bob"])}
    assert states(engine, b1) == {"alice": "submitted", "bob": "submitted", "carol": "held"}
    code, _, err = export(capsys, db, fmt, tmp_path / "again")
    assert code == 1 and "no pending payouts to export (1 held)" in err
    assert not (tmp_path / "again").exists()
    code, _, err = export(capsys, db, fmt, out)
    assert code == 1 and "--out" in err and "exists" in err
    assert violations(engine) == set()


@pytest.mark.parametrize("fmt", ["csv", "paypal"])
def test_export_neutralises_formulas(capsys, ledger, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    db, _, _ = ledger
    code, _, err = cli(capsys, "creators", "set", "alice", "--payout-method", "=HYPERLINK(\"x\")",
                       "--db", db)
    assert code == 0, err
    out = tmp_path / f"{fmt}.csv"
    assert export(capsys, db, fmt, out)[0] == 0
    cells = [cell for row in csv.reader(io.StringIO(out.read_text())) for cell in row]
    assert "'=HYPERLINK(\"x\")" in cells
    assert not any(c.startswith(("=", "+", "@")) for c in cells)


def test_creators_set_releases_and_holds(capsys, ledger) -> None:  # type: ignore[no-untyped-def]
    db, engine, b1 = ledger
    code, out, err = cli(capsys, "creators", "set", "carol", "--payout-method", "acct_1",
                         "--country", "fr", "--db", db)
    assert code == 0, err
    assert "missing: tax_form_missing" in out and "released 0" in out
    code, out, _ = cli(capsys, "creators", "set", "carol", "--tax-form", "accepted", "--db", db)
    assert "missing: nothing" in out and "released 1" in out
    code, out, _ = cli(capsys, "creators", "set", "bob", "--tax-form", "missing", "--db", db)
    assert "held 1" in out
    assert states(engine, b1) == {"alice": "pending", "bob": "held", "carol": "pending"}
    code, _, err = cli(capsys, "creators", "set", "bob", "--tax-form", "maybe", "--db", db)
    assert code == 1 and err.startswith("error: --tax-form 'maybe'")
    code, _, err = cli(capsys, "creators", "set", "bob", "--country", "FRA", "--db", db)
    assert code == 1 and err.startswith("error: --country 'FRA'")
    code, _, err = cli(capsys, "creators", "set", "bob", "--db", db)
    assert code == 1 and "--payout-method, --country, --tax-form: give at least one" in err
    assert violations(engine) == set()


def report(path: Path, lines: list[tuple]) -> Path:  # type: ignore[type-arg]
    buf = io.StringIO()
    buf.write(HEADER)
    w = csv.writer(buf, lineterminator="\n")
    for line in lines:
        w.writerow(line)
    path.write_text(buf.getvalue())
    return path


def test_import_reconciles_and_is_idempotent(capsys, ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db, engine, b1 = ledger
    export(capsys, db, "csv", tmp_path / "x.csv")
    pid = ids(engine)
    a, b, c = pid["alice"], pid["bob"], pid["carol"]
    rep = report(tmp_path / "r.csv", [
        (a, "paid", "PP-1", "", 5000, "USD", "2026-11-02T10:00:00Z"),
        (a, "returned", "PP-1", "R01", 5000, "usd", "2026-11-05"),  # after paid: applies
        (b, "failed", "PP-2", "ACCOUNT_CLOSED", 4000, "USD", "2026-11-02"),
        (b, "failed", "PP-2", "ACCOUNT_CLOSED", 4000, "USD", "2026-11-02"),  # duplicate
        ("po_unknown", "paid", "", "", 1, "USD", "2026-11-02"),
        (c, "paid", "", "", 3000, "USD", "2026-11-02"),  # held: never submitted
        (a, "paid", "", "", 4999, "USD", "2026-11-02"),  # amount mismatch
    ])
    code, out, err = cli(capsys, "payouts", "import", "--report", rep, "--db", db)
    assert code == 0, err
    assert ("matched 3 (applied), unknown payout id 1, amount or currency mismatch 1, "
            "duplicate 1, out of order 1") in out
    assert "line 7: out of order" in out and "line 6: unknown payout id" in out
    assert states(engine, b1) == {"alice": "returned", "bob": "failed", "carol": "held"}
    assert payable(engine, "alice") == 5000 and payable(engine, "bob") == 4000
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM payout_events")).scalar_one()
        ref = conn.execute(text("SELECT failure_code FROM payout_events WHERE payout_id = :p "
                                "AND state = 'failed'"), {"p": b}).scalar_one()
    assert ref == "ACCOUNT_CLOSED"
    code, out, _ = cli(capsys, "payouts", "import", "--report", rep, "--db", db)
    assert "matched 0 (applied)" in out and "duplicate 4" in out
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM payout_events")).scalar_one() == before
    assert violations(engine) == set()
    b2 = post(engine, "P2", {"alice": 100, "bob": 100, "carol": 100, "dan": 0})
    with engine.connect() as conn:
        carried = dict(conn.execute(text("SELECT creator_id, carried_in_minor FROM statements "
                                         "WHERE batch_id = :b"), {"b": b2}).all())
    assert carried == {"alice": 5000, "bob": 4000, "carol": 0, "dan": 10}  # carol: held
    assert violations(engine) == set()


@pytest.mark.parametrize("line,where", [
    (("X", "lost", "", "", 1, "USD", "2026-11-02"), "line 3, column status"),
    (("X", "paid", "", "", "1.5", "USD", "2026-11-02"), "line 3, column amount_minor"),
    (("X", "paid", "", "", "-1", "USD", "2026-11-02"), "line 3, column amount_minor"),
    (("X", "paid", "", "", 1, "US", "2026-11-02"), "line 3, column currency"),
    (("X", "paid", "", "", 1, "USD", "yesterday"), "line 3, column occurred_at"),
    (("X", "paid", "a\x00b", "", 1, "USD", "2026-11-02"), "line 3, column provider_reference"),
    (("X", "paid", "r" * 201, "", 1, "USD", "2026-11-02"), "line 3, column provider_reference"),
    (("", "paid", "", "", 1, "USD", "2026-11-02"), "line 3, column payout_id"),
])
def test_bad_report_applies_nothing(capsys, ledger, tmp_path: Path, line: tuple,  # type: ignore[type-arg]
                                    where: str) -> None:
    db, engine, b1 = ledger
    export(capsys, db, "csv", tmp_path / "x.csv")
    a = ids(engine)["alice"]
    rep = report(tmp_path / "r.csv", [(a, "paid", "", "", 5000, "USD", "2026-11-02"), line])
    code, out, err = cli(capsys, "payouts", "import", "--report", rep, "--db", db)
    assert code == 1 and out == ""
    assert err.startswith(f"error: {rep}, {where}:") and err.count("\n") == 1
    assert states(engine, b1)["alice"] == "submitted"


def test_unreadable_reports(capsys, ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db, _, _ = ledger
    (tmp_path / "a.csv").write_text("payout_id,status\nx,paid\n")
    code, _, err = cli(capsys, "payouts", "import", "--report", tmp_path / "a.csv", "--db", db)
    assert code == 1 and "line 1, column provider_reference: missing from the header" in err
    (tmp_path / "b.csv").write_bytes(HEADER.encode() + b"x,paid,\xff\xfe,,1,USD,2026-11-02\n")
    code, _, err = cli(capsys, "payouts", "import", "--report", tmp_path / "b.csv", "--db", db)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    code, _, err = cli(capsys, "payouts", "import", "--report", tmp_path / "none.csv", "--db", db)
    assert code == 1 and err.startswith("error: --report")


HOSTILE = ["=cmd|' /C calc'!A0", "[red]markup[/red]", "line\nbreak", "\"quoted,\"", "ünïcødé ✓",
           "-2+3", "\t@SUM(1)", "' OR 1=1 --"]


def test_hostile_provider_strings_are_stored_verbatim(capsys, ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db, engine, b1 = ledger
    export(capsys, db, "csv", tmp_path / "x.csv")
    pid = ids(engine)
    rep = report(tmp_path / "r.csv", [
        (pid["alice"], "failed", HOSTILE[0], HOSTILE[2], 5000, "USD", "2026-11-02"),
        (pid["bob"], "paid", HOSTILE[1], HOSTILE[3], 4000, "USD", "2026-11-02"),
        ("\x1b[31mevil", "paid", HOSTILE[4], HOSTILE[5], 1, "USD", "2026-11-02"),
    ])
    code, out, err = cli(capsys, "payouts", "import", "--report", rep, "--db", db)
    assert code == 0, err
    assert "\x1b" not in out and "'\\x1b[31mevil'" in out
    with engine.connect() as conn:
        got = set(conn.execute(text("SELECT provider_reference, failure_code FROM payout_events "
                                    "WHERE provider_reference IS NOT NULL")).all())
    assert got == {(HOSTILE[0], HOSTILE[2]), (HOSTILE[1], HOSTILE[3])}
    code, out, _ = cli(capsys, "payouts", "list", "--state", "paid", "--db", db)
    assert code == 0 and "1 payouts" in out
    assert violations(engine) == set()


def test_batch_list_and_show(capsys, ledger) -> None:  # type: ignore[no-untyped-def]
    db, _, b1 = ledger
    code, out, _ = cli(capsys, "batch", "list", "--db", db)
    assert code == 0 and b1[:12] in out and "2 pending, 1 held" in out and "1 batches" in out
    code, out, _ = cli(capsys, "batch", "show", b1[:16], "--db", db)
    assert code == 0 and f"batch_id        {b1}" in out and "3 payouts" in out
    assert "held (no_payout_method,tax_form_missing)" in out
    code, _, err = cli(capsys, "batch", "show", "P9", "--db", db)
    assert code == 1 and err.startswith("error: BATCH 'P9'")


# -- processes ---------------------------------------------------------------------------

def big_ledger(db: str, tmp_path: Path, n: int) -> tuple[Engine, Path]:
    """n creators with complete profiles, one batch exported, and a report paying all."""
    engine = open_store(db)
    creators = [f"c{i:06d}" for i in range(n)]
    with write_session(engine) as s, s.begin():
        insert_frame(s, "creator_profiles", pl.DataFrame({
            S.CREATOR_ID: creators, "payout_method": [f"{c}@example.com" for c in creators],
            "country": ["US"] * n, "tax_form": ["accepted"] * n}))
    post(engine, "P1", {c: 1000 + i for i, c in enumerate(creators)})
    from residuals.workflows.disbursement import export_payouts

    export_payouts(db, "P1", "csv", tmp_path / "x.csv")
    sent = pl.read_csv(tmp_path / "x.csv")
    rep = sent.select("payout_id", pl.lit("paid").alias("status"),
                      pl.lit("ref").alias("provider_reference"),
                      pl.lit("").alias("failure_code"), "amount_minor", "currency",
                      pl.lit("2026-11-02T00:00:00Z").alias("occurred_at"))
    rep.write_csv(tmp_path / "report.csv")
    return engine, tmp_path / "report.csv"


def import_cmd(db: str, rep: Path) -> list[str]:
    return [sys.executable, "-m", "residuals.cli", "payouts", "import", "--report", str(rep),
            "--db", db]


def paid_events(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM payout_events WHERE state = 'paid'"))
                   .scalar_one())


def test_two_imports_of_one_report_at_once_apply_once(db_url: str, tmp_path: Path) -> None:
    engine, rep = big_ledger(db_url, tmp_path, 300)
    procs = [subprocess.Popen(import_cmd(db_url, rep), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    applied = sorted("matched 300" in o for o, _ in outs)
    assert applied == [False, True] and any("duplicate 300" in o for o, _ in outs)
    assert paid_events(engine) == 300
    assert violations(engine) == set()


def writer_active(engine: Engine) -> bool:
    """Whether another connection holds the ledger write lock (it is inside its transaction)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objid = :k"), {"k": 0x5E51D0A1}).scalar_one())
    import sqlite3

    con = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        con.close()


def test_kill9_during_import_leaves_all_or_nothing(db_url: str, tmp_path: Path) -> None:
    n = 4000
    engine, rep = big_ledger(db_url, tmp_path, n)
    proc = subprocess.Popen(import_cmd(db_url, rep), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    inside = False
    while proc.poll() is None:  # wait for the import's own state: it holds the write lock
        if writer_active(engine):
            inside = True
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.communicate(timeout=120)
    assert inside, "the import finished before it could be observed writing"
    assert paid_events(engine) == 0  # killed inside its transaction: nothing committed
    assert violations(engine) == set()
    done = subprocess.run(import_cmd(db_url, rep), cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and f"matched {n}" in done.stdout, done.stderr
    assert paid_events(engine) == n
    assert violations(engine) == set()
