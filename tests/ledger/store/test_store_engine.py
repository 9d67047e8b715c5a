"""Opening the store: URLs, first use, and two processes opening a new file at once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from contract.errors import ResidualsError
from ledger.store.engine import (
    DEFAULT_URL,
    ENV_URL,
    current_revision,
    head_revision,
    open_store,
    resolve_url,
)


def test_resolve_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    assert resolve_url(None) == DEFAULT_URL
    monkeypatch.setenv(ENV_URL, "sqlite:///x.db")
    assert resolve_url(None) == "sqlite:///x.db"
    assert resolve_url("sqlite:///y.db") == "sqlite:///y.db"


def test_first_use_creates_schema(db_url: str) -> None:
    engine = open_store(db_url)
    assert current_revision(engine) == head_revision()


def test_migrate_false_refuses_an_old_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    sqlite3.connect(tmp_path / "x.db").close()
    with pytest.raises(ResidualsError, match="run `residuals db upgrade`"):
        open_store(url, migrate=False)


def test_opening_waits_for_another_writer_of_a_new_file(tmp_path: Path) -> None:
    """A new database is still in rollback-journal mode; while another process writes to
    it, SQLite refuses the switch to WAL at once (no busy wait). Opening must wait."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE scratch (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO scratch VALUES (1)")
    timer = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        engine = open_store(f"sqlite:///{path}")
    finally:
        timer.join()
        other.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert current_revision(engine) == head_revision()
