"""`residuals demo` end to end on the committed sample: two periods with the payout cycle
between them (a hold, an export, a provider report with a failure, an upheld claim),
verify, summarise; a second run changes nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.conftest import ROOT, SAMPLES


def run_demo(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "residuals", "demo", "--headless", "--data", str(SAMPLES),
         "--db", f"sqlite:///{tmp_path / 'demo.db'}", "--work", str(tmp_path / "work"),
         "--policy", str(ROOT / "policies" / "default.toml"), *extra],
        capture_output=True, text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        cwd=ROOT, timeout=600,
    )


def _ledger(db: Path) -> dict[str, object]:
    """What the demo left in the ledger, read with plain SQL."""
    with sqlite3.connect(db) as con:
        one = lambda sql: con.execute(sql).fetchall()  # noqa: E731
        return {
            "batches": one("SELECT period, batch_id FROM batches ORDER BY seq"),
            "recredits": one("SELECT batch_id FROM transactions WHERE kind = 'recredit'"),
            "failed": one("SELECT p.creator_id, p.batch_id FROM payout_events e JOIN payouts p "
                          "ON p.payout_id = e.payout_id WHERE e.state = 'failed'"),
            "held": one("SELECT p.creator_id, e.reason FROM payout_events e JOIN payouts p "
                        "ON p.payout_id = e.payout_id WHERE e.state = 'held' "
                        "AND e.source = 'demo'"),
            "applied": one("SELECT c.creator_id, e.batch_id, d.amount_minor FROM claim_events e "
                           "JOIN claims c ON c.claim_id = e.claim_id JOIN claim_events d ON "
                           "d.claim_id = e.claim_id AND d.outcome = 'upheld' "
                           "WHERE e.outcome = 'applied'"),
            "claims": one("SELECT count(*) FROM claims"),
            "profiles": one("SELECT count(*) FROM creator_profiles"),
            "entries": one("SELECT count(*) FROM entries"),
        }


def test_demo_posts_two_periods_with_the_cycle_and_is_idempotent(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert out.count("posted batch") == 2
    assert "OK: transactions" in out and "VIOLATION" not in out
    assert "Ten largest earnings" in out
    conservation = next(line for line in out.splitlines() if "conservation" in line)
    assert " = pool " in conservation and "!=" not in conservation

    ledger = _ledger(tmp_path / "demo.db")
    (p1, b1), (p2, b2) = ledger["batches"]
    assert (p1, p2) == ("2026-10", "2026-11")
    (failed_creator, failed_batch), = ledger["failed"]
    assert failed_batch == b1 and ledger["recredits"] == [(b1,)]
    (held_creator, reason), = ledger["held"]
    assert reason == "tax_form_missing" and held_creator != failed_creator
    assert ledger["applied"] == [(failed_creator, b2, 500)]
    assert ledger["claims"] == [(1,)]

    work = tmp_path / "work"
    exported = pl.read_csv(work / "2026-10" / "export-2026-10.csv")
    assert held_creator not in exported["creator_id"].to_list()
    report = pl.read_csv(work / "2026-10" / "provider-report-2026-10.csv")
    assert report["status"].value_counts().sort("status").rows() == [
        ("failed", 1), ("paid", exported.height - 1)]
    second_period = pl.read_parquet(work / "2026-11" / "generations.parquet")
    assert second_period["generation_id"][0] == "gen_3001"
    payouts = pl.read_csv(work / "2026-11" / "payouts-2026-11.csv")
    assert payouts.height > 0 and (payouts["amount_minor"] > 0).all()
    paid_line = next(line for line in out.splitlines() if "creators paid now" in line)
    assert f"{payouts.height:,} " in paid_line
    assert f"{failed_creator}: account closed, re-credited into 2026-11" in out

    second = run_demo(tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("already posted") == 2
    assert "posted batch" not in second.stdout
    assert "OK: transactions" in second.stdout
    assert _ledger(tmp_path / "demo.db") == ledger


def test_demo_bad_data_dir_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "residuals", "demo", "--headless", "--data",
         str(tmp_path / "missing"), "--db", f"sqlite:///{tmp_path / 'demo.db'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("error: --data")
    assert not (tmp_path / "demo.db").exists()


def test_demo_on_a_catalogue_smaller_than_k(tmp_path: Path) -> None:
    """k and depth are capped at the catalogue's size, as `batch run` caps them."""
    data = tmp_path / "tiny"
    made = subprocess.run(
        [sys.executable, "-m", "residuals", "samples", "make", "--out", str(data), "--seed", "3",
         "--creators", "3", "--clips", "8", "--generations", "20"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert made.returncode == 0, made.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "residuals", "demo", "--headless", "--data", str(data),
         "--db", f"sqlite:///{tmp_path / 'demo.db'}", "--work", str(tmp_path / "work"),
         "--policy", str(ROOT / "policies" / "default.toml"), "--seed", "3", "--periods", "1"],
        capture_output=True, text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        cwd=ROOT, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK: transactions" in proc.stdout
    written = pl.read_parquet(tmp_path / "work" / "2026-10" / "attributions.parquet")
    assert written.group_by("generation_id").len()["len"].max() <= 8
