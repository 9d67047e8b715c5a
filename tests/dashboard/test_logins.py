"""Logins under a crowd and under failure: concurrent attempts on SQLite and PostgreSQL,
errors that never reach the visitor as SQL or a traceback."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from dashboard import auth, config
from dashboard import models as dm
from dashboard.data import session as login
from ledger.store import open_store, write_session

TIMEOUT = 60
PARALLEL = 16


def _users(url: str, *names: str) -> None:
    engine = open_store(url)
    with write_session(engine) as s, s.begin():
        for name in names:
            auth.add_user(s, name, f"{name}-pass", auth.ADMIN)
    engine.dispose()


def _crowd(attempts: list[tuple[str, str]]) -> list[object]:
    """Run every (username, password) through :func:`check_login` at the same moment."""
    results: list[object] = [None] * len(attempts)
    start = threading.Barrier(len(attempts))

    def one(i: int, username: str, password: str) -> None:
        start.wait()
        try:
            results[i] = login.check_login(username, password, "10.1.2.3")
        except BaseException as exc:  # noqa: BLE001 - recorded and asserted on
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i, *a)) for i, a in enumerate(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _count(url: str, stmt) -> int:
    engine = open_store(url)
    with engine.connect() as conn:
        n = int(conn.execute(stmt).scalar_one())
    engine.dispose()
    return n


def test_concurrent_logins_all_succeed_or_fail_and_every_failure_counts(
        db_url, monkeypatch):
    """16 logins at once, half right (ada), half wrong (bob): no error, each answer right,
    and all 8 of bob's failures counted (the wait is switched off to count them all)."""
    monkeypatch.setenv(config.DB_ENV, db_url)
    monkeypatch.setattr(auth, "FREE_ATTEMPTS", 10 * PARALLEL)
    _users(db_url, "ada", "bob")
    half = PARALLEL // 2
    results = _crowd([("ada", "ada-pass")] * half + [("bob", "wrong")] * half)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert all(r is not None and r[0].username == "ada" for r in results[:half])
    assert all(r is None for r in results[half:])
    failed = select(dm.LoginThrottle.failed).join(dm.User).where(dm.User.username == "bob")
    assert _count(db_url, failed) == half
    assert _count(db_url, select(func.count()).select_from(dm.LoginAttempt)) == PARALLEL
    assert _count(db_url, select(func.count()).select_from(dm.LoginSession)) == half


def test_parallel_wrong_guesses_all_count(db_url, monkeypatch):
    """24 wrong guesses for one user at once: the count is 24, not what the last writer saw."""
    monkeypatch.setenv(config.DB_ENV, db_url)
    monkeypatch.setattr(auth, "FREE_ATTEMPTS", 100)
    _users(db_url, "economist")
    results = _crowd([("economist", f"guess-{i}") for i in range(24)])
    assert results == [None] * 24
    failed = select(dm.LoginThrottle.failed)
    assert _count(db_url, failed) == 24


def _login_page_script() -> None:
    import streamlit as st

    from dashboard.data import session

    try:
        session.log_in("economist", "economist-demo-pass")
    except session.ResidualsError as exc:
        st.error(str(exc))


def test_a_database_error_while_logging_in_is_one_sentence(demo_db, monkeypatch):
    """The driver's message (with its SQL and parameters) stays in the server log."""
    from sqlalchemy.exc import OperationalError

    def broken(*_args, **_kwargs):
        raise OperationalError("INSERT INTO dashboard_login_attempts (username) VALUES (?)",
                               ("economist",), Exception("database is locked"))

    monkeypatch.setenv(config.DB_ENV, demo_db.url)
    monkeypatch.setattr(auth, "authenticate", broken)
    at = AppTest.from_file(str(config.APP_PATH), default_timeout=TIMEOUT).run()
    at.switch_page("views/login.py").run()
    at.text_input(key="login_username").set_value("economist")
    at.text_input(key="login_password").set_value("economist-demo-pass")
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [login.UNAVAILABLE]
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.error])
    assert "SQL" not in shown and "INSERT" not in shown and "economist-demo" not in shown


def test_an_error_on_any_page_is_one_sentence(demo_db, monkeypatch):
    """An unexpected exception in a page: one sentence, no traceback element."""
    from dashboard.data import public
    from dashboard.text import PAGE_FAILED

    def broken():
        raise RuntimeError("[SQL: SELECT secret FROM somewhere] [parameters: ('x',)]")

    monkeypatch.setenv(config.DB_ENV, demo_db.url)
    monkeypatch.setattr(public, "latest_paid", broken)
    at = AppTest.from_file(str(config.APP_PATH), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [e.value for e in at.error] == [PAGE_FAILED]
    assert "SQL" not in " ".join(str(m.value) for m in at.markdown)
