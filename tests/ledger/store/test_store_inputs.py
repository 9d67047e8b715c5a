"""Hostile but contract-shaped inputs: periods, 64-bit amounts, spreadsheet formulas,
text that a database column cannot hold. Each is refused in one line before
anything is posted, or written so that it stays inert."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select

from contract import schema as S
from contract.errors import ResidualsError
from ledger.money import INT64_MAX
from ledger.store import models as M
from ledger.store import open_store, read_session, write_session
from ledger.store.posting import post_batch
from tests.conftest import ROOT
from tests.ledger.store.kit import allocator, request, write_dataset
from tests.ledger.store.test_store_cli import cli, n_batches, run

REVENUE_POLICY = ROOT / "policies" / "default.toml"


def one_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


# ---- periods ----------------------------------------------------------------

@pytest.mark.parametrize("period", ["2026-10\n", "2026-10\r", "\n2026-10", "2026-10\n\n"])
def test_period_with_newline_is_refused(capsys, tmp_path: Path, period: str) -> None:  # type: ignore[no-untyped-def]
    write_dataset(tmp_path / "data", 6)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    assert run(capsys, tmp_path / "data", db, tmp_path, "--pool", "10.00")[0] == 0
    code, _, err = run(capsys, tmp_path / "data", db, tmp_path, "--pool", "10.00", period=period)
    assert code == 1 and "--period" in one_line(err)
    assert n_batches(db) == 1
    assert sorted(p.name for p in tmp_path.glob("payouts-*")) == ["payouts-2026-10.csv"]


def test_store_refuses_a_period_with_newline(db_url: str) -> None:
    engine = open_store(db_url)
    with pytest.raises(ResidualsError, match="period"):
        with write_session(engine) as s, s.begin():
            post_batch(s, request(["a", "b"], period="2026-10\n"), allocator({"a": 5000, "b": 5000}))
    with read_session(engine) as s:
        assert s.execute(select(M.Batch)).first() is None
    engine.dispose()


# ---- 64-bit amounts -----------------------------------------------------------

def test_revenues_beyond_int64_are_refused(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """[2^63-1, 2^63-1, 202] summed in int64 wraps round to 200 (a pool of 100)."""
    write_dataset(tmp_path / "data", 6, revenues=[INT64_MAX, INT64_MAX, 202])
    db = f"sqlite:///{tmp_path / 'l.db'}"
    code, _, err = run(capsys, tmp_path / "data", db, tmp_path, policy=REVENUE_POLICY)
    assert code == 1
    msg = one_line(err)
    assert "accounts.parquet" in msg and S.REVENUE_MINOR in msg and "64-bit" in msg
    assert n_batches(db) == 0 and not list(tmp_path.glob("payouts-*"))


@pytest.mark.parametrize("pool", ["92233720368547758.08", "1e30", "99999999999999999999"])
def test_pool_beyond_int64_is_refused(capsys, tmp_path: Path, pool: str) -> None:  # type: ignore[no-untyped-def]
    write_dataset(tmp_path / "data", 6)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    code, _, err = run(capsys, tmp_path / "data", db, tmp_path, "--pool", pool)
    assert code == 1 and "--pool" in one_line(err)
    assert n_batches(db) == 0


def test_balance_beyond_int64_is_refused_before_posting(db_url: str) -> None:
    """Each pool fits in int64 but the fund's balance after the second would not."""
    engine = open_store(db_url)
    creators = ["a", "b"]
    half = INT64_MAX // 2
    with write_session(engine) as s, s.begin():
        post_batch(s, request(creators, period="P1", pool=INT64_MAX),
                   allocator({"a": half, "b": INT64_MAX - half}, min_payout=INT64_MAX))
    with pytest.raises(ResidualsError, match="64-bit") as info:
        with write_session(engine) as s, s.begin():
            post_batch(s, request(creators, period="P2", pool=10),
                       allocator({"a": 5, "b": 5}, min_payout=INT64_MAX))
    assert "\n" not in str(info.value)
    with read_session(engine) as s:
        assert s.execute(select(M.Batch.period)).scalars().all() == ["P1"]
        stored = s.execute(select(M.Balance.balance_minor)).scalars().all()
    assert all(isinstance(v, int) and abs(v) <= INT64_MAX for v in stored)
    engine.dispose()


# ---- spreadsheet formulas ----------------------------------------------------

HOSTILE_IDS = ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rcr", "plain", "=HYPERLINK(\"x\")"]


def _cells(path: Path) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return [cell for row in csv.reader(f) for cell in row]


def test_people_csvs_neutralise_formulas(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_dataset(tmp_path / "data", len(HOSTILE_IDS), creator_ids=HOSTILE_IDS)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    code, _, err = run(capsys, tmp_path / "data", db, tmp_path, "--pool", "100.00")
    assert code == 0, err
    pay_path = tmp_path / "payouts-2026-10.csv"
    cells = _cells(pay_path)
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'=1+2" in cells and "plain" in cells
    pay = pl.read_csv(pay_path)
    assert pay[S.AMOUNT_MINOR].dtype.is_integer() and pay[S.AMOUNT_MINOR].sum() == 10_000
    assert pay["amount"].dtype.is_float()  # numbers stay numbers
    code, out, err = cli(capsys, "statement", "--creator", "=1+2", "--db", db, "--out", tmp_path)
    assert code == 0, err
    written = [Path(line.split(" ", 1)[1]) for line in out.splitlines()
               if line.startswith("wrote ") and line.endswith(".csv")]
    assert len(written) == 2
    for path in written:
        assert not [c for c in _cells(path) if c[:1] in ("=", "+", "-", "@", "\t", "\r")], path


# ---- text a database column cannot hold ------------------------------------------

def test_longest_allowed_text_posts_on_both_backends(capsys, tmp_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    ids = ["é" * S.MAX_ID_CHARS] + [f"c{i}" for i in range(3)]
    write_dataset(tmp_path / "data", 4, creator_ids=ids)
    creators = pl.read_parquet(tmp_path / "data" / "creators.parquet").with_columns(
        pl.lit("ñ" * S.MAX_NAME_CHARS).alias(S.DISPLAY_NAME))
    creators.write_parquet(tmp_path / "data" / "creators.parquet")
    code, _, err = run(capsys, tmp_path / "data", db_url, tmp_path, "--pool", "10.00")
    assert code == 0, err
    assert cli(capsys, "ledger", "verify", "--db", db_url)[0] == 0


@pytest.mark.parametrize("case", ["long_id", "nul_id", "long_name", "nul_name", "long_clip"])
def test_text_beyond_the_contract_is_refused_on_both_backends(
        capsys, tmp_path: Path, db_url: str, case: str) -> None:  # type: ignore[no-untyped-def]
    ids = [f"c{i}" for i in range(4)]
    if case == "long_id":
        ids[2] = "x" * (S.MAX_ID_CHARS + 1)
    if case == "nul_id":
        ids[2] = "c\x002"
    write_dataset(tmp_path / "data", 4, creator_ids=ids)
    data = tmp_path / "data"
    if case in ("long_name", "nul_name"):
        name = "n" * (S.MAX_NAME_CHARS + 1) if case == "long_name" else "bad\x00name"
        pl.read_parquet(data / "creators.parquet").with_columns(
            pl.when(pl.col(S.CREATOR_ID) == "c2").then(pl.lit(name))
            .otherwise(pl.col(S.DISPLAY_NAME)).alias(S.DISPLAY_NAME)
        ).write_parquet(data / "creators.parquet")
    if case == "long_clip":
        clips = pl.read_parquet(data / "clips.parquet")
        clips.with_columns(pl.when(pl.col(S.CREATOR_ID) == "c2")
                           .then(pl.lit("k" * (S.MAX_ID_CHARS + 1)))
                           .otherwise(pl.col(S.CLIP_ID)).alias(S.CLIP_ID)
                           ).write_parquet(data / "clips.parquet")
    code, _, err = run(capsys, data, db_url, tmp_path, "--pool", "10.00")
    msg = one_line(err)
    assert code == 1 and "row 2" in msg, msg
    assert "Traceback" not in err
    column = S.CLIP_ID if case == "long_clip" else (
        S.CREATOR_ID if case.endswith("id") else S.DISPLAY_NAME)
    file = "clips.parquet" if case == "long_clip" else "creators.parquet"
    assert file in msg and f"column {column}" in msg
    assert n_batches(db_url) == 0


def test_policy_name_beyond_the_contract_is_refused(capsys, tmp_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    write_dataset(tmp_path / "data", 4)
    policy = tmp_path / "long.toml"
    text = (ROOT / "policies" / "attribution.toml").read_text().replace(
        'name = "attribution"', f'name = "{"p" * (S.MAX_POLICY_NAME_CHARS + 1)}"')
    policy.write_text(text)
    code, _, err = run(capsys, tmp_path / "data", db_url, tmp_path, "--pool", "10.00",
                       policy=policy)
    msg = one_line(err)
    assert code == 1 and "long.toml" in msg and "name" in msg and str(S.MAX_POLICY_NAME_CHARS) in msg
    assert n_batches(db_url) == 0
