"""``residuals batch run``, ``ledger verify``, ``db upgrade`` and ``statement``, end to end."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import text

from contract import schema as S
from ledger.store import batches, open_store, read_session
from ledger.store.engine import head_revision
from residuals.cli import main
from tests.conftest import ROOT
from tests.ledger.store.kit import write_dataset

POLICY = ROOT / "policies" / "attribution.toml"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_dataset(tmp_path / "data", 40, opted_out_every=7)
    return tmp_path / "data"


def run(capsys, data: Path, db: str, out: Path, *extra: str, period: str = "2026-10",
        policy: Path = POLICY) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return cli(capsys, "batch", "run", "--period", period, "--policy", policy, "--data", data,
               "--db", db, "--out", out, *extra)


def n_batches(db: str) -> int:
    engine = open_store(db)
    with read_session(engine) as s:
        n = batches(s).height
    engine.dispose()
    return n


def test_batch_run_posts_once_and_writes_payouts(capsys, data: Path, db_url: str,
                                                 tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, data, db_url, tmp_path, "--pool", "1000.00")
    assert code == 0 and "posted batch" in out
    pay_path = tmp_path / "payouts-2026-10.csv"
    pay = pl.read_csv(pay_path, schema_overrides={"amount": pl.String})
    assert pay.columns == [S.CREATOR_ID, "amount", S.AMOUNT_MINOR, S.CURRENCY, S.REFERENCE]
    assert pay[S.AMOUNT_MINOR].sum() == 100_000  # no minimum payout: the whole pool is paid
    assert not pay[S.CREATOR_ID].is_in(["c0000000", "c0000007"]).any()  # opted out
    first = pay_path.read_bytes()
    pay_path.unlink()
    code, out, _ = run(capsys, data, db_url, tmp_path, "--pool", "1000.00")
    assert code == 0 and "already posted" in " ".join(out.split())
    assert pay_path.read_bytes() == first  # rewritten from the ledger, byte for byte
    assert n_batches(db_url) == 1
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db_url)
    assert code == 0 and out.strip().endswith("batches recomputed 1")
    assert "OK:" in out


def test_supersede(capsys, data: Path, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, data, db_url, tmp_path, "--pool", "1000.00")[0] == 0
    code, _, err = run(capsys, data, db_url, tmp_path, "--pool", "1200.00")
    assert code == 1 and "--supersede" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, data, db_url, tmp_path, "--pool", "1200.00", "--supersede")
    assert code == 0 and "superseding" in out
    pay = pl.read_csv(tmp_path / "payouts-2026-10.csv")
    assert pay[S.AMOUNT_MINOR].sum() == 120_000
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db_url)
    assert code == 0, out


def test_verify_fails_on_tampering(capsys, data: Path, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, data, db_url, tmp_path, "--pool", "1000.00")[0] == 0
    engine = open_store(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE balances SET balance_minor = balance_minor - 5 "
                          "WHERE account_id = (SELECT min(id) FROM accounts)"))
    engine.dispose()
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db_url)
    assert code == 1
    assert "VIOLATION balances" in out and "FAILED: 1 violation(s)" in out


def test_verify_recomputes_from_manifest_inputs(capsys, data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'l.db'}"
    assert run(capsys, data, db, tmp_path, "--pool", "1000.00")[0] == 0
    (data / "accounts.parquet").unlink()
    pl.DataFrame({S.ACCOUNT_ID: ["a"], S.REVENUE_MINOR: [1]}).write_parquet(
        data / "accounts.parquet")
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db)
    assert code == 0 and "not recomputed: inputs in" in out and "batches recomputed 0" in out


def test_statement(capsys, data: Path, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, data, db_url, tmp_path, "--pool", "1000.00")[0] == 0
    out_dir = tmp_path / "st"
    out_dir.mkdir()
    code, out, _ = cli(capsys, "statement", "--creator", "c0000003", "--period", "2026-10",
                       "--db", db_url, "--out", out_dir)
    assert code == 0
    lines = pl.read_csv(out_dir / "statement-c0000003-2026-10.csv",
                        schema_overrides={"earned": pl.String})
    engine = open_store(db_url)
    with read_session(engine) as s:
        bhash = batches(s)[S.BATCH_HASH][0]
    engine.dispose()
    assert lines[S.BATCH_HASH].to_list() == [bhash]
    assert lines["earned"][0] == f"{lines[S.ALLOCATED_MINOR][0] // 100}.{lines[S.ALLOCATED_MINOR][0] % 100:02d}"
    clips = pl.read_csv(out_dir / "statement-c0000003-2026-10-clips.csv")
    assert clips[S.CLIP_ID].to_list() == ["k0000003"]  # credited by generations 2 and 3
    assert clips[S.WEIGHT].to_list() == pytest.approx([1.0])
    page = (out_dir / "statement-c0000003-2026-10.html").read_text()
    assert bhash in page and "k0000003" in page and "<script" not in page
    code, _, err = cli(capsys, "statement", "--creator", "nobody", "--db", db_url, "--out",
                       out_dir)
    assert code == 1 and "no such creator" in err


def test_db_upgrade(capsys, db_url: str) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "db", "upgrade", "--db", db_url)
    assert code == 0 and f"upgraded from empty to revision {head_revision()}" in out
    code, out, _ = cli(capsys, "db", "upgrade", "--db", db_url)
    assert code == 0 and f"already at revision {head_revision()}" in out


BAD = {
    "zero pool": (("--pool", "0"), "expected > 0"),
    "negative pool": (("--pool", "-5.00"), "negative"),
    "too many decimals": (("--pool", "1.001"), "more than 2 decimals"),
    "unknown currency": (("--pool", "10", "--currency", "XYZ"), "unknown currency"),
    "bad period": (("--period", "no/slashes"), "--period"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_flags_write_nothing(capsys, data: Path, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    flags, match = BAD[case]
    db = f"sqlite:///{tmp_path / 'l.db'}"
    args = list(flags)
    period = "2026-10"
    if args[0] == "--period":
        period, args = args[1], []
    code, out, err = run(capsys, data, db, tmp_path, *args, period=period)
    assert code == 1 and match in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    assert not list(tmp_path.glob("payouts-*"))
    assert not (tmp_path / "l.db").exists() or n_batches(db) == 0


def test_unknown_creator_in_attributions(capsys, tmp_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    write_dataset(tmp_path / "bad", 10, unknown_creator=True)
    code, _, err = run(capsys, tmp_path / "bad", db_url, tmp_path, "--pool", "10")
    assert code == 1 and "attributions.parquet" in err and "'nobody' is not in creators" in err
    assert n_batches(db_url) == 0 and not list(tmp_path.glob("payouts-*"))


def test_invalid_policy(capsys, data: Path, tmp_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[components]\nattribution = 1.5\n')
    code, _, err = run(capsys, data, db_url, tmp_path, "--pool", "10", policy=bad)
    assert code == 1 and "bad.toml" in err and len(err.strip().splitlines()) == 1
    assert n_batches(db_url) == 0


def test_currency_differs_from_existing_batches(capsys, data: Path, db_url: str,
                                                tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, data, db_url, tmp_path, "--pool", "1000.00")[0] == 0
    eur = tmp_path / "eur.toml"
    eur.write_text(POLICY.read_text().replace('"USD"', '"EUR"'))
    code, _, err = run(capsys, data, db_url, tmp_path, "--pool", "10", period="2026-11",
                       policy=eur)
    assert code == 1 and "--currency EUR" in err and "USD" in err
    assert n_batches(db_url) == 1 and not (tmp_path / "payouts-2026-11.csv").exists()


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:1/nothing",
                                 "sqlite:////nonexistent-dir/x.db", "mysql://x@y/z", "not a url"])
def test_unreachable_database(capsys, data: Path, tmp_path: Path, url: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, data, url, tmp_path, "--pool", "10")
    assert code == 1 and err.startswith("error: --db") and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("payouts-*"))


def test_batch_run_computes_attributions_on_samples(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'l.db'}"
    code, out, _ = cli(capsys, "batch", "run", "--period", "2026-10", "--policy",
                       ROOT / "policies" / "default.toml", "--data", ROOT / "data" / "samples",
                       "--db", db, "--out", tmp_path)
    assert code == 0 and "posted batch" in out
    engine = open_store(db)
    with read_session(engine) as s:
        b = batches(s)
        manifest = s.execute(text("SELECT manifest FROM batches")).scalar_one()
    engine.dispose()
    assert b.height == 1
    assert '"attributions":"computed"' in manifest.replace(" ", "")
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db)
    assert code == 0 and "batches recomputed 1" in out
