"""The files the CLI writes: names that never collide, outputs that never replace an
input, nothing created before the inputs are valid, and permissions that follow the
umask (ordinary outputs) or stay private (a ledger holding password hashes)."""

from __future__ import annotations

import html
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, strategies as st

from contract import schema as S
from ledger.store.engine import open_store, write_session
from ledger.store.posting import post_batch
from ledger.store.statements import statement_file_names
from residuals.cli import main
from tests.conftest import ROOT
from tests.ledger.store import kit

POLICY = ROOT / "policies" / "attribution.toml"
_SCRIPT = Path(sys.executable).parent / "residuals"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "residuals.cli"]


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def one_error(code: int, err: str, *fragments: str) -> None:
    assert code == 1, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    kit.write_dataset(tmp_path / "data", 12)
    return tmp_path / "data"


def batch_run(capsys: pytest.CaptureFixture[str], data: Path, db: str, out: Path,
              *extra: object) -> tuple[int, str, str]:
    return cli(capsys, "batch", "run", "--period", "2026-10", "--policy", POLICY,
               "--data", data, "--db", db, "--out", out, "--pool", "100.00", *extra)


# ---- statement file names --------------------------------------------------------------

_ID = st.text(alphabet="a_-/.%~é\x00 ", min_size=1, max_size=4)
_PERIOD = st.none() | st.sampled_from(["clips", "b-clips", "clips-b", "a-b", "b", "", "a_b"])
_PAIRS = st.lists(st.tuples(_ID, _PERIOD), min_size=2, max_size=40, unique=True)
COLLIDING = [("a_b", None), ("a/b", None), ("a-b", None), ("a%2Fb", None), ("a b", None),
             ("x", None), ("x", "clips"), ("x-clips", None), ("x", "b-clips"), ("x-b", "clips"),
             ("a", "b-c"), ("a-b", "c"), ("A", None), ("é", None), (".", None), ("..", None)]


def _check_distinct(pairs: list[tuple[str, str | None]]) -> None:
    seen: dict[str, tuple[str, str | None]] = {}
    for pair in pairs:
        names = statement_file_names(*pair)
        assert len(set(names)) == 3
        for name in names:  # one plain file name inside --out, whatever the id
            assert "/" not in name and "\x00" not in name and not name.startswith(".")
            assert len(name.encode()) <= 255
            assert name not in seen, (name, seen.get(name), pair)
            seen[name] = pair


@given(_PAIRS)
def test_statement_names_never_collide(pairs: list[tuple[str, str | None]]) -> None:
    _check_distinct(pairs)


def test_statement_names_of_known_lookalikes_differ() -> None:
    _check_distinct(COLLIDING)


def test_plain_ids_keep_readable_names() -> None:
    assert statement_file_names("creator_0002", None) == (
        "statement-creator_0002.csv", "statement-creator_0002-clips.csv",
        "statement-creator_0002.html")
    assert statement_file_names("c0000003", "2026-10")[0] == "statement-c0000003-2026-10.csv"


def test_long_ids_get_a_short_name() -> None:
    long_a, long_b = "x" * 400, "x" * 399 + "y"
    a, b = statement_file_names(long_a, None), statement_file_names(long_b, None)
    assert all(len(n.encode()) <= 255 for n in a + b) and not set(a) & set(b)


def _post(db: str, period: str, creators: list[str]) -> None:
    engine = open_store(db)
    req = kit.request(creators, period=period, pool=len(creators) * 100)
    with write_session(engine) as s, s.begin():
        post_batch(s, req, kit.allocator(kit.split(creators, req.pool_minor)))
    engine.dispose()


def test_statements_of_colliding_ids_stay_apart(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    ids = ["a_b", "a/b", "a-b", "a%2Fb", "a b", "x", "x-clips"]
    _post(db, "2026-10", ids)
    _post(db, "clips", ["x"])
    out = tmp_path / "out"
    out.mkdir()
    written: dict[Path, tuple[str, str | None]] = {}
    for creator, period in [(c, None) for c in ids] + [("x", "clips"), ("x", "2026-10")]:
        code, stdout, err = cli(capsys, "statement", "--creator", creator, "--db", db,
                                "--out", out, *(["--period", period] if period else []))
        assert code == 0, err
        for line in stdout.splitlines():
            path = Path(line.removeprefix("wrote "))
            assert path.parent == out
            assert path not in written, (path, written.get(path), (creator, period))
            written[path] = (creator, period)
    assert sorted(written) == sorted(out.iterdir())
    for path, (creator, period) in written.items():
        if path.suffix == ".html":
            assert html.escape(creator) in path.read_text()
        elif not path.name.endswith("-clips.csv"):
            periods = pl.read_csv(path, infer_schema_length=0)[S.PERIOD].to_list()
            every = ["2026-10", "clips"] if creator == "x" else ["2026-10"]
            assert periods == ([period] if period else every), (path, creator, period)


# ---- an output is never an input -------------------------------------------------------

@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    proc = subprocess.run([*CLI, "samples", "make", "--out", str(out), "--creators", "4",
                           "--clips", "20", "--generations", "8", "--dim", "4", "--seed", "3"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return out


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("how", ["same path", "another spelling", "symlink", "hard link"])
@pytest.mark.parametrize("flag", ["--clips", "--generations"])
def test_attribute_refuses_to_overwrite_an_input(capsys: pytest.CaptureFixture[str],
                                                 sample: Path, tmp_path: Path, how: str,
                                                 flag: str) -> None:
    work = Path(shutil.copytree(sample, tmp_path / "x"))
    clips, gens = work / "clips.parquet", work / "generations.parquet"
    target = clips if flag == "--clips" else gens
    out = {"same path": target, "another spelling": work / "." / ".." / "x" / target.name,
           "symlink": work / "link.parquet", "hard link": work / "hard.parquet"}[how]
    if how == "symlink":
        out.symlink_to(target)
    if how == "hard link":
        os.link(target, out)
    before = _snapshot(work)
    code, _, err = cli(capsys, "attribute", "--clips", clips, "--generations", gens,
                       "--out", out, "--quiet")
    one_error(code, err, "--out", flag)
    assert _snapshot(work) == before


def test_batch_run_refuses_a_payout_file_that_is_the_ledger(capsys: pytest.CaptureFixture[str],
                                                            data: Path, tmp_path: Path) -> None:
    db_file = tmp_path / "payouts-2026-10.csv"
    code, _, err = batch_run(capsys, data, f"sqlite:///{db_file}", tmp_path)
    one_error(code, err, "--out", "--db")
    assert not db_file.exists()


def test_batch_run_refuses_a_payout_file_that_is_an_input(capsys: pytest.CaptureFixture[str],
                                                          data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    policy = out / "payouts-2026-10.csv"
    shutil.copyfile(POLICY, policy)
    db_file = tmp_path / "ledger.db"
    code, _, err = cli(capsys, "batch", "run", "--period", "2026-10", "--policy", policy,
                       "--data", data, "--db", f"sqlite:///{db_file}", "--out", out,
                       "--pool", "100.00")
    one_error(code, err, "--out", "--policy")
    assert policy.read_bytes() == POLICY.read_bytes() and not db_file.exists()


def test_batch_run_refuses_a_payout_file_linked_to_a_data_table(
        capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "payouts-2026-10.csv").symlink_to(data / "accounts.parquet")
    before = _snapshot(data)
    code, _, err = batch_run(capsys, data, f"sqlite:///{tmp_path / 'l.db'}", out)
    one_error(code, err, "--out", "--data")
    assert _snapshot(data) == before and not (tmp_path / "l.db").exists()


def test_statement_refuses_to_overwrite_the_ledger(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    db_file = tmp_path / "statement-x.csv"
    db = f"sqlite:///{db_file}"
    _post(db, "2026-10", ["x", "y"])
    before = db_file.read_bytes()
    code, _, err = cli(capsys, "statement", "--creator", "x", "--db", db, "--out", tmp_path)
    one_error(code, err, "--out", "--db")
    assert db_file.read_bytes() == before


# ---- nothing is created before the inputs are valid --------------------------------------

def test_an_attribution_error_creates_no_ledger(capsys: pytest.CaptureFixture[str],
                                                data: Path, tmp_path: Path) -> None:
    (data / "attributions.parquet").unlink()
    db_file = tmp_path / "new.db"
    code, _, err = batch_run(capsys, data, f"sqlite:///{db_file}", tmp_path,
                             "--method", "no-such-method")
    one_error(code, err, "no-such-method")
    assert not db_file.exists() and not list(tmp_path.glob("new.db*"))


def test_an_allocation_error_creates_no_ledger(capsys: pytest.CaptureFixture[str],
                                               data: Path, tmp_path: Path) -> None:
    db_file = tmp_path / "new.db"
    code, _, err = cli(capsys, "batch", "run", "--period", "2026-10", "--policy",
                       ROOT / "policies" / "user-centric.toml", "--data", data,
                       "--db", f"sqlite:///{db_file}", "--out", tmp_path)
    one_error(code, err, "generations.parquet")  # no account ids for user_centric
    assert not db_file.exists() and not list(tmp_path.glob("new.db*"))


@pytest.mark.parametrize("argv", [("statement", "--creator", "x"), ("ledger", "verify")])
def test_readers_do_not_create_a_ledger(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        argv: tuple[str, ...]) -> None:
    db_file = tmp_path / "typo.db"
    code, _, err = cli(capsys, *argv, "--db", f"sqlite:///{db_file}",
                       *(["--out", tmp_path] if argv[0] == "statement" else []))
    one_error(code, err, "--db", str(db_file), "no ledger")
    assert not db_file.exists()


def test_a_valid_batch_still_creates_its_ledger(capsys: pytest.CaptureFixture[str],
                                                data: Path, tmp_path: Path) -> None:
    db_file = tmp_path / "new.db"
    code, out, err = batch_run(capsys, data, f"sqlite:///{db_file}", tmp_path)
    assert code == 0 and "posted batch" in out, err
    assert db_file.exists()


# ---- permissions ----------------------------------------------------------------------------

@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_outputs_follow_the_umask(capsys: pytest.CaptureFixture[str], data: Path,
                                  tmp_path: Path, mask: int, umask: None) -> None:
    os.umask(mask)
    out = tmp_path / "out"
    out.mkdir()
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert batch_run(capsys, data, db, out)[0] == 0
    assert cli(capsys, "statement", "--creator", "c0000001", "--db", db, "--out", out)[0] == 0
    proc = subprocess.run([*CLI, "attribute", "--clips", str(data / "clips.parquet"),
                           "--generations", str(data / "generations.parquet"),
                           "--out", str(out / "attributions.parquet"), "--quiet", "--k", "5"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, umask=mask)
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.iterdir())
    assert len(files) == 5  # payouts, statement csv, clips csv, html, attributions
    for f in files:
        assert mode(f) == 0o666 & ~mask, (f.name, oct(mode(f)))


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_a_new_ledger_is_private(capsys: pytest.CaptureFixture[str], data: Path,
                                 tmp_path: Path, mask: int, umask: None) -> None:
    os.umask(mask)
    db_file = tmp_path / "ledger.db"
    db = f"sqlite:///{db_file}"
    assert batch_run(capsys, data, db, tmp_path)[0] == 0
    assert mode(db_file) == 0o600
    engine = open_store(db)  # while it is open, the WAL and shared-memory files exist
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM batches").scalar()
        for suffix in ("-wal", "-shm"):
            side = Path(f"{db_file}{suffix}")
            assert side.exists() and mode(side) == 0o600, (suffix, oct(mode(side)))
    engine.dispose()


def test_an_existing_ledger_readable_by_others_is_made_private(
        capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path, umask: None) -> None:
    db_file = tmp_path / "ledger.db"
    sqlite3.connect(db_file).close()
    os.chmod(db_file, 0o644)
    assert batch_run(capsys, data, f"sqlite:///{db_file}", tmp_path)[0] == 0
    assert mode(db_file) == 0o600


def test_demo_refuses_a_work_directory_that_is_its_data(capsys: pytest.CaptureFixture[str],
                                                        data: Path, tmp_path: Path) -> None:
    period_dir = tmp_path / "work" / "2026-10"
    shutil.move(data, period_dir.parent.mkdir() or period_dir)
    before = _snapshot(period_dir)
    db_file = tmp_path / "demo.db"
    code, _, err = cli(capsys, "demo", "--data", period_dir, "--work", tmp_path / "work",
                       "--period", "2026-10", "--db", f"sqlite:///{db_file}", "--headless")
    one_error(code, err, "--work", "--data")
    assert _snapshot(period_dir) == before and not db_file.exists()


def test_demo_checks_its_period_before_making_directories(capsys: pytest.CaptureFixture[str],
                                                          data: Path, tmp_path: Path) -> None:
    code, _, err = cli(capsys, "demo", "--data", data, "--work", tmp_path / "work",
                       "--period", "../escape", "--db", f"sqlite:///{tmp_path / 'd.db'}",
                       "--headless")
    one_error(code, err, "--period")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "work").exists()
