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


def _row(out: str, label: str) -> list[str]:
    """The cells of the compare table's row ``label``."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")]
        if len(cells) > 2 and cells[1] == label:
            return cells[2:-1]
    raise AssertionError(f"no row {label!r} in\n{out}")


CARRY = """name = "carry"
[pool]
currency = "USD"
amount = "300.00"
[components]
attribution = 1.0
[rules]
min_payout = "150.00"
"""


def test_compare_starts_from_the_ledger_balances(data_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A posted period leaves ben and cy 50.00 each below the minimum; compare --db carries
    those 100.00 in under both policies, and shows where each policy's money goes."""
    carry = tmp_path / "carry.toml"
    carry.write_text(CARRY)
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    code, _, err = run(["batch", "run", "--period", "2026-01", "--policy", str(carry),
                        "--data", str(data_dir), "--db", db, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    compare = ["policy", "compare", "--policy", str(POLICIES / "attribution.toml"),
               "--policy", str(carry), "--data", str(data_dir), "--pool", "300.00"]
    code, out, err = run([*compare, "--db", db], capsys)
    assert code == 0, err
    assert _row(out, "carried in") == ["100.00 USD", "100.00 USD"]
    # A pays everything: 300.00 + 100.00; B pays ana's 200.00 and carries ben's and cy's
    # 50.00 + 50.00 each (still below 150.00)
    assert _row(out, "paid out") == ["400.00 USD", "200.00 USD"]
    assert _row(out, "carried forward") == ["0.00 USD", "200.00 USD"]
    assert _row(out, "withheld") == ["0.00 USD", "0.00 USD"]
    code, out, err = run(compare, capsys)
    assert code == 0, err
    assert _row(out, "carried in") == ["0.00 USD", "0.00 USD"]
    assert _row(out, "paid out") == ["300.00 USD", "200.00 USD"]
    assert _row(out, "carried forward") == ["0.00 USD", "100.00 USD"]
    assert "give --db" in out


def test_compare_shows_withheld(data_dir: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """A fourth generation nobody's clip explains: a policy that withholds unattributed
    generations keeps a quarter of the 300.00 pool back; one that redistributes keeps
    nothing."""
    gens = pl.read_parquet(data_dir / S.GENERATIONS.filename)
    extra = gens.head(1).with_columns(pl.lit("g4").alias(S.GENERATION_ID))
    write_parquet(pl.concat([gens, extra]), data_dir / S.GENERATIONS.filename)
    attr = pl.read_parquet(data_dir / S.ATTRIBUTIONS.filename).select(
        S.GENERATION_ID, S.CLIP_ID, S.CREATOR_ID, S.RANK, S.SIMILARITY, S.WEIGHT)
    write_attributions(attr, data_dir / S.ATTRIBUTIONS.filename, attribution_sources(
        data_dir / S.CLIPS.filename, data_dir / S.GENERATIONS.filename))
    keep = tmp_path / "keep.toml"
    keep.write_text(CARRY.replace('"carry"', '"keep"').replace(
        'min_payout = "150.00"', 'unattributed = "withhold"'))
    code, out, err = run(["policy", "compare", "--policy", str(POLICIES / "attribution.toml"),
                          "--policy", str(keep), "--data", str(data_dir), "--pool", "300.00"],
                         capsys)
    assert code == 0, err
    assert _row(out, "withheld") == ["0.00 USD", "75.00 USD"]
    assert _row(out, "paid out") == ["300.00 USD", "225.00 USD"]


def test_compare_without_a_ledger_is_one_line(data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.db"
    code, out, err = run(["policy", "compare", "--policy", str(POLICIES / "attribution.toml"),
                          "--policy", str(POLICIES / "hybrid-70-30.toml"), "--data",
                          str(data_dir), "--db", f"sqlite:///{missing}"], capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: --db") and "no ledger" in err and err.count("\n") == 1
    assert not missing.exists()
