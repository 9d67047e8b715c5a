"""``residuals policy check`` and ``residuals policy compare`` through the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from contract import schema as S
from attribution.scorer import write_attributions
from contract.io import attribution_sources, write_parquet
from residuals.cli import main
from tests.conftest import ROOT

POLICIES = ROOT / "policies"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A tiny period in the contract, attributions included."""
    emb = pl.Array(pl.Float32, 4)
    creators = pl.DataFrame({S.CREATOR_ID: ["ana", "ben", "cy", "dee"],
                             S.DISPLAY_NAME: ["Ana", "Ben", "Cy", "Dee"],
                             S.OPTED_OUT: [False, False, False, True]})
    clips = pl.DataFrame({
        S.CLIP_ID: ["k1", "k2", "k3", "k4", "k5"],
        S.CREATOR_ID: ["ana", "ana", "ben", "cy", "dee"],
        S.EMBEDDING: pl.Series([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                [1, 1, 0, 0]], dtype=emb),
        S.DURATION_S: [10.0, 20.0, 30.0, 40.0, 50.0],
    })
    gens = pl.DataFrame({
        S.GENERATION_ID: ["g1", "g2", "g3"],
        S.EMBEDDING: pl.Series([[1, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0]], dtype=emb),
        S.ACCOUNT_ID: ["x", "y", "x"],
    })
    accounts = pl.DataFrame({S.ACCOUNT_ID: ["x", "y"], S.REVENUE_MINOR: [40000, 60000]})
    attr = pl.DataFrame({
        S.GENERATION_ID: ["g1", "g2", "g2", "g3"], S.CLIP_ID: ["k1", "k3", "k4", "k2"],
        S.CREATOR_ID: ["ana", "ben", "cy", "ana"], S.RANK: [1, 1, 2, 1],
        S.SIMILARITY: [1.0, 0.7, 0.7, 1.0], S.WEIGHT: [1.0, 0.5, 0.5, 1.0],
    }, schema_overrides={S.RANK: pl.Int32, S.SIMILARITY: pl.Float32})
    for table, df in ((S.CREATORS, creators), (S.CLIPS, clips), (S.GENERATIONS, gens),
                      (S.ACCOUNTS, accounts)):
        write_parquet(df, tmp_path / table.filename)
    write_attributions(attr, tmp_path / S.ATTRIBUTIONS.filename, attribution_sources(
        tmp_path / S.CLIPS.filename, tmp_path / S.GENERATIONS.filename))
    return tmp_path


@pytest.mark.parametrize("name", ["attribution", "hybrid-70-30", "user-centric",
                                  "threshold-cap", "default"])
def test_check_shipped_policies(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["policy", "check", str(POLICIES / f"{name}.toml")], capsys)
    assert code == 0, err
    assert f"policy {name!r}" in out and out.strip().endswith("ok")


def test_check_bad_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[components]\nattribution = 0.5\nfoo = 0.5\n")
    code, out, err = run(["policy", "check", str(bad)], capsys)
    assert code == 1 and out == ""
    assert err == f"error: {bad}: key components.foo: unknown key (expected one of " \
                  "attribution, corpus, user_centric, equal)\n"


def test_compare(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["policy", "compare", "--policy", str(POLICIES / "attribution.toml"),
                          "--policy", str(POLICIES / "hybrid-70-30.toml"),
                          "--data", str(data_dir), "--pool", "300.00", "--top", "2"], capsys)
    assert code == 0, err
    # attribution: ana 2 of 3 generations, ben and cy half of g2 each
    # hybrid: 0.7 * attribution + 0.3 * clips (ana 2, ben 1, cy 1 of 4)
    for text in ("A = attribution", "B = hybrid-70-30", "300.00 USD", "creators paid",
                 "Gini", "top 1% share", "top 10% share", "median payout", "largest payout",
                 "200.00 USD",  # ana under A: 2/3 of 300.00
                 "185.00 USD",  # ana under B: 0.7 * 200 + 0.3 * 150
                 "gain or lose", "ben", "-15.00 USD"):
        assert text in out, (text, out)
    assert "dee" not in out  # opted out: never paid, never moves


def test_compare_uses_the_policy_pool(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["policy", "compare", "--policy", str(POLICIES / "hybrid-70-30.toml"),
                          "--policy", str(POLICIES / "user-centric.toml"),
                          "--data", str(data_dir)], capsys)
    assert code == 0, err
    assert "500.00 USD" in out  # revenue_share 0.5 of 1,000.00


@pytest.mark.parametrize(("args", "message"), [
    (["--policy", "POL"], "--policy: given 1 times, expected exactly 2"),
    (["--policy", "POL", "--policy", "POL", "--pool", "1.001"], "more than 2 decimals"),
    (["--policy", "POL", "--policy", "POL", "--currency", "XYZ", "--pool", "1"],
     "unknown currency 'XYZ'"),
    (["--policy", "POL", "--policy", "missing.toml"], "missing.toml: policy file not found"),
])
def test_compare_errors(args: list[str], message: str, data_dir: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(POLICIES / "attribution.toml") if a == "POL" else a for a in args]
    code, out, err = run(["policy", "compare", *args, "--data", str(data_dir)], capsys)
    assert code == 1 and message in err and err.count("\n") == 1, err


def test_compare_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["policy", "compare", "--policy", str(POLICIES / "attribution.toml"),
                        "--policy", str(POLICIES / "attribution.toml"),
                        "--data", str(tmp_path / "nope")], capsys)
    assert code == 1 and "data directory not found" in err


def test_console_script_exit_status(data_dir: Path) -> None:
    exe = Path(sys.executable).parent / "residuals"
    proc = subprocess.run([str(exe), "policy", "check", str(data_dir / "clips.parquet")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ")
    assert "cannot read policy" in proc.stderr and proc.stderr.count("\n") == 1


def test_compare_default_policy_without_licences(data_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # default.toml has licence multipliers; clips without a licence column get the default
    code, out, err = run(["policy", "compare", "--policy", str(POLICIES / "attribution.toml"),
                          "--policy", str(POLICIES / "default.toml"), "--data", str(data_dir),
                          "--pool", "300.00"], capsys)
    assert code == 0, err
    assert "A = attribution   B = default" in out


def test_compare_on_the_committed_samples(capsys: pytest.CaptureFixture[str]) -> None:
    """data/samples has no attributions.parquet: compare computes them first."""
    samples = ROOT / "data" / "samples"
    assert not (samples / S.ATTRIBUTIONS.filename).exists()
    code, out, err = run(["policy", "compare", "--policy", str(POLICIES / "attribution.toml"),
                          "--policy", str(POLICIES / "threshold-cap.toml"),
                          "--data", str(samples), "--top", "3"], capsys)
    assert code == 0, err
    assert "25,000.00 USD" in out and "B = threshold-cap" in out
    assert out.count(" USD │") >= 6
