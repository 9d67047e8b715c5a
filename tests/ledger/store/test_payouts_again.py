"""``residuals payouts exports|export-again`` (:func:`residuals.workflows.disbursement.
export_again`): a lost export file is rendered again from the ledger, byte for byte, on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from contract.errors import ResidualsError
from ledger.store import models as M
from ledger.store import open_store, write_session
from residuals.workflows.disbursement import export_again, past_exports
from tests.ledger.store.payout_kit import complete, post
from tests.ledger.store.test_store_cli import cli

FORMATS = ["csv", "paypal", "stripe"]


@pytest.fixture
def ledger(db_url: str) -> tuple[str, Engine]:
    """alice and bob complete (pending), carol without a profile (held)."""
    engine = open_store(db_url)
    complete(engine, "alice", "bob")
    post(engine, "P1", {"alice": 5000, "bob": 4000, "carol": 3000})
    return db_url, engine


def export(capsys, db: str, fmt: str, out: Path) -> str:  # type: ignore[no-untyped-def]
    """Export P1's pending payouts in ``fmt``; returns the file's sha256."""
    code, _, err = cli(capsys, "payouts", "export", "--batch", "P1", "--format", fmt,
                       "--out", out, "--db", db)
    assert code == 0, err
    return hashlib.sha256(out.read_bytes()).hexdigest()


def later_profile(engine: Engine, creator: str, method: str) -> None:
    """A profile change recorded after every export (a day into the future)."""
    with write_session(engine) as s, s.begin():
        s.add(M.CreatorProfile(creator_id=creator, payout_method=method, country="FR",
                               tax_form="accepted",
                               recorded_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_again_is_the_same_file(capsys, ledger, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    db, engine = ledger
    first = tmp_path / "first"
    sha = export(capsys, db, fmt, first)
    later_profile(engine, "alice", "alice-new@example.com")  # the file keeps the old one
    code, out, err = cli(capsys, "payouts", "exports", "--db", db)
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{sha}  P1  batch ") and "2 payouts  90.00 USD" in out
    again = tmp_path / "again"
    code, out, err = cli(capsys, "payouts", "export-again", sha[:12], "--out", again, "--db", db)
    assert code == 0, err
    assert again.read_bytes() == first.read_bytes()
    assert f"wrote the {fmt} export {sha[:16]}" in out
    assert export_again(db, sha.upper()).fmt == fmt


def test_a_profile_recorded_at_the_same_time_after_the_export(capsys, ledger,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path) -> None:
    """A clock that counts seconds (SQLite) cannot order a profile change recorded in the
    export's second: the export is rendered both with and without it."""
    db, engine = ledger
    first = tmp_path / "first"
    sha = export(capsys, db, "csv", first)
    with write_session(engine) as s, s.begin():
        s.execute(text("INSERT INTO creator_profiles (creator_id, payout_method, country, "
                       "tax_form, recorded_at) SELECT 'alice', 'same-second@example.com', "
                       "'US', 'accepted', min(recorded_at) FROM payout_events "
                       "WHERE source = :s"), {"s": f"export:{sha}"})
    assert export_again(db, sha).data == first.read_bytes()


def test_every_export_of_a_batch_is_listed_and_rendered_again(capsys, ledger,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    db, engine = ledger
    files = {export(capsys, db, "stripe", tmp_path / "a"): tmp_path / "a"}
    complete(engine, "carol")  # carol's payout is released: a second export of P1
    files[export(capsys, db, "paypal", tmp_path / "b")] = tmp_path / "b"
    listed = past_exports(db)
    assert set(listed["sha256"]) == set(files)
    assert sorted(listed["payouts"]) == [1, 2]
    for sha, path in files.items():
        assert export_again(db, sha).data == path.read_bytes()


@pytest.mark.parametrize("sha", ["0123456789abcdef" * 4, "0123456789ab", "nothex-nothex", "abc"])
def test_an_unknown_sha256_is_one_line_and_exit_1(capsys, ledger, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                  sha: str) -> None:
    db, _ = ledger
    export(capsys, db, "csv", tmp_path / "first")
    out = tmp_path / "again"
    code, stdout, err = cli(capsys, "payouts", "export-again", sha, "--out", out, "--db", db)
    assert code == 1 and stdout == ""
    assert err.startswith(f"error: SHA256 {sha!r}: ") and err.count("\n") == 1
    assert not out.exists()


def test_export_again_refuses_an_existing_file_and_a_changed_record(capsys, ledger,  # type: ignore[no-untyped-def]
                                                                    tmp_path: Path) -> None:
    db, engine = ledger
    sha = export(capsys, db, "csv", tmp_path / "first")
    code, _, err = cli(capsys, "payouts", "export-again", sha, "--out", tmp_path / "first",
                       "--db", db)
    assert code == 1 and "--out" in err and "exists" in err
    with write_session(engine) as s, s.begin():  # a profile forged into the export's past
        s.add(M.CreatorProfile(creator_id="bob", payout_method="forged", tax_form="accepted",
                               recorded_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    with pytest.raises(ResidualsError, match=r"render in no format to this sha256"):
        export_again(db, sha)
