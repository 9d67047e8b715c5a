"""A database that is missing, empty, unreachable, older or not a database: a clear page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import config

TIMEOUT = 60


def _run(url: str, monkeypatch, page: str | None = None, login: tuple[str, str] | None = None):
    monkeypatch.setenv(config.DB_ENV, url)
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    at = AppTest.from_file(str(config.APP_PATH), default_timeout=TIMEOUT).run()
    if login is not None:
        at.switch_page("views/login.py").run()
        at.text_input(key="login_username").set_value(login[0])
        at.text_input(key="login_password").set_value(login[1])
        at.button[0].click().run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _messages(at) -> str:
    """Every message of the page as it reads (Markdown escapes resolved)."""
    from tests.dashboard.test_pages import rendered

    return rendered(" ".join(str(e.value) for e in [*at.error, *at.warning, *at.info]))


def test_missing_sqlite_file_is_explained_and_not_created(tmp_path, monkeypatch):
    db = tmp_path / "nothing.db"
    for page in ("views/training_data.py", "views/login.py"):
        at = _run(f"sqlite:///{db}", monkeypatch, page)
        assert "no ledger database at" in _messages(at).lower()
    assert not db.exists()


def test_unreachable_server(monkeypatch):
    at = _run("postgresql+psycopg://nobody@127.0.0.1:9/ledger", monkeypatch, "views/login.py")
    assert "cannot be reached" in _messages(at)


def test_not_a_database(tmp_path, monkeypatch):
    db = tmp_path / "junk.db"
    db.write_bytes(b"this is not a database file" * 100)
    at = _run(f"sqlite:///{db}", monkeypatch, "views/training_data.py")
    assert "cannot be read" in _messages(at) or "cannot be reached" in _messages(at)


def test_file_without_ledger_schema(tmp_path, monkeypatch):
    import sqlite3

    db = tmp_path / "other.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x int)").connection.commit()
    at = _run(f"sqlite:///{db}", monkeypatch, "views/login.py")
    assert "holds no ledger yet" in _messages(at)


def test_empty_ledger_no_batch_yet(tmp_path, monkeypatch):
    from sqlalchemy.orm import Session

    from dashboard.auth import add_user
    from ledger.store import open_store

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = open_store(url)
    with Session(engine) as s, s.begin():
        add_user(s, "root", "pw", "admin")
    engine.dispose()
    at = _run(url, monkeypatch, "views/training_data.py")
    assert "no payout batch has been posted yet" in _messages(at).lower()
    at = _run(url, monkeypatch, "views/batches.py", login=("root", "pw"))
    assert "no payout batch has been posted yet" in _messages(at).lower()
    at = _run(url, monkeypatch, "views/policy_lab.py", login=("root", "pw"))
    assert "no payout batch has been posted yet" in _messages(at).lower()


def test_older_schema(demo_db, tmp_path, monkeypatch):
    import sqlite3

    src = Path(demo_db.url.removeprefix("sqlite:///"))
    db = tmp_path / "old.db"
    shutil.copy(src, db)
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num = '0000_before'")
    con.commit()
    con.close()
    at = _run(f"sqlite:///{db}", monkeypatch, "views/login.py")
    msg = _messages(at)
    assert "another schema version" in msg and "residuals db upgrade" in msg


def test_missing_data_directory(demo_db, monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "gone"))
    monkeypatch.setenv(config.DB_ENV, demo_db.url)
    at = AppTest.from_file(str(config.APP_PATH), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "not a directory" in _messages(at)


@pytest.mark.parametrize("missing", ["attributions.parquet"])
def test_policy_lab_without_inputs_says_so(demo_db, monkeypatch, tmp_path, missing):
    """A data directory without the period's attributions: the lab says what is missing."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo_db.data_dirs["2026-10"], data_dir)
    (data_dir / missing).unlink()
    monkeypatch.setenv(config.DATA_ENV, str(data_dir))
    password, _ = demo_db.logins["economist"]
    at = _run(demo_db.url, monkeypatch, None, login=("economist", password))
    monkeypatch.setenv(config.DATA_ENV, str(data_dir))
    at.switch_page("views/policy_lab.py").run()
    assert not at.exception
    assert missing in _messages(at)


def test_malformed_url_in_the_environment(monkeypatch):
    at = _run("definitely not a url", monkeypatch, "views/login.py")
    assert "database URL is not valid" in _messages(at)


def test_dashboard_and_store_read_the_same_variable():
    from ledger.store.engine import DEFAULT_URL, ENV_URL

    assert (config.DB_ENV, config.DEFAULT_DB) == (ENV_URL, DEFAULT_URL)
