"""`residuals demo` end to end on the committed sample: attribute, post, verify, summarise."""

from __future__ import annotations

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


def test_demo_posts_verifies_and_is_idempotent(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "posted batch" in out
    assert "OK: transactions" in out
    assert "Ten largest earnings" in out
    conservation = next(line for line in out.splitlines() if "conservation" in line)
    assert " = pool " in conservation and "!=" not in conservation

    work = tmp_path / "work" / "2026-10"
    payouts = pl.read_csv(work / "payouts-2026-10.csv")
    assert payouts.height > 0
    assert (payouts["amount_minor"] > 0).all()
    paid_line = next(line for line in out.splitlines() if "creators paid now" in line)
    assert f"{payouts.height:,} " in paid_line

    second = run_demo(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "already posted" in second.stdout
    assert "posted batch" not in second.stdout


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
         "--policy", str(ROOT / "policies" / "default.toml")],
        capture_output=True, text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        cwd=ROOT, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK: transactions" in proc.stdout
    written = pl.read_parquet(tmp_path / "work" / "2026-10" / "attributions.parquet")
    assert written.group_by("generation_id").len()["len"].max() <= 8
