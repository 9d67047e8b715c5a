"""``residuals users reset-password|unlock|remove|revoke``: what each changes, what it must not,
hostile names, unknown users, and the races with logins and live sessions on SQLite and
PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from sqlalchemy import func, select

from dashboard import auth, config
from dashboard import models as dm
from dashboard.data import session as login
from ledger.store import open_store, write_session

PARALLEL = 8
#: Login names an attacker or a careless admin might choose.
HOSTILE = ["o'brien", 'quote"d', "x'; DROP TABLE dashboard_users; --", "ünï ☃ 名前",
           "-dash", "back\\slash", "%_like"]


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "residuals", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def _with(url: str, fn, *args):  # noqa: ANN001, ANN202
    engine = open_store(url)
    try:
        with write_session(engine) as s, s.begin():
            return fn(s, *args)
    finally:
        engine.dispose()


def _add(url: str, *names: str) -> None:
    def add(s):  # noqa: ANN001, ANN202
        for name in names:
            auth.add_user(s, name, f"{name}-pass", auth.ADMIN)
    _with(url, add)


def _open(url: str, name: str) -> str:
    return _with(url, auth.open_login_session, name)


def _who(url: str, token: str) -> auth.LoggedIn | None:
    engine = open_store(url)
    try:
        with auth.login_reader(engine) as s:
            return auth.session_user(s, token)
    finally:
        engine.dispose()


def _login(url: str, name: str, password: str, source: str = "10.0.0.1"):  # noqa: ANN202
    return _with(url, lambda s: auth.authenticate(s, name, password, source=source))


def _count(url: str, stmt) -> int:  # noqa: ANN001
    engine = open_store(url)
    with engine.connect() as conn:
        n = int(conn.execute(stmt).scalar_one())
    engine.dispose()
    return n


def _one_error_line(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert all(w in lines[0] for w in words), r.stderr
    assert "Traceback" not in r.stderr


# ---- the commands, on both backends ------------------------------------------------


def test_reset_password_changes_the_hash_and_ends_sessions(db_url):
    _add(db_url, "ada", "bob")
    ada_token, bob_token = _open(db_url, "ada"), _open(db_url, "bob")
    r = _cli("users", "reset-password", "ada", "--db", db_url, stdin="n3w-secret\n")
    assert r.returncode == 0, r.stderr
    assert "n3w-secret" not in r.stdout and "ended 1 session(s)" in r.stdout
    assert _who(db_url, ada_token) is None
    assert _who(db_url, bob_token) is not None, "another user's session must survive"
    assert _login(db_url, "ada", "ada-pass") is None
    assert _login(db_url, "ada", "n3w-secret", source="10.0.0.2") is not None


def test_unlock_clears_every_source_or_one(db_url, monkeypatch):
    monkeypatch.setattr(auth, "FREE_ATTEMPTS", 1)
    monkeypatch.setattr(auth, "BASE_LOCK_S", auth.MAX_LOCK_S)  # the wait outlasts the test
    _add(db_url, "ada")
    for source in ("10.0.0.1", "10.0.0.2"):
        assert _login(db_url, "ada", "wrong", source) is None
    # both addresses now wait: even the right password fails there
    assert _login(db_url, "ada", "ada-pass", "10.0.0.1") is None
    attempts = _count(db_url, select(func.count()).select_from(dm.LoginAttempt))
    r = _cli("users", "unlock", "ada", "--source", "10.0.0.2", "--db", db_url)
    assert r.returncode == 0 and "1 address(es)" in r.stdout, r.stderr
    assert _login(db_url, "ada", "ada-pass", "10.0.0.1") is None
    assert _login(db_url, "ada", "ada-pass", "10.0.0.2") is not None
    r = _cli("users", "unlock", "ada", "--db", db_url)
    assert r.returncode == 0, r.stderr
    assert _login(db_url, "ada", "ada-pass", "10.0.0.1") is not None
    assert _count(db_url, select(func.count()).select_from(dm.LoginAttempt)) == attempts + 3, \
        "unlocking must not erase the audit of attempts"


def test_remove_deletes_the_user_and_its_sessions_and_keeps_the_audit(db_url):
    _add(db_url, "ada", "bob")
    tokens = [_open(db_url, "ada") for _ in range(3)]
    assert _login(db_url, "ada", "wrong") is None
    r = _cli("users", "remove", "ada", "--db", db_url)
    assert r.returncode == 0 and "3 session(s)" in r.stdout, r.stderr
    assert all(_who(db_url, t) is None for t in tokens)
    assert _login(db_url, "ada", "ada-pass") is None
    names = select(func.count()).select_from(dm.User).where(dm.User.username == "ada")
    assert _count(db_url, names) == 0
    assert _count(db_url, select(func.count()).select_from(dm.LoginThrottle)) == 0
    audit = select(func.count()).select_from(dm.LoginAttempt).where(
        dm.LoginAttempt.username == "ada")
    assert _count(db_url, audit) == 2
    assert _cli("users", "list", "--db", db_url).stdout.split() == ["bob", "admin"]
    # the name can be given again; the old tokens still log nobody in
    _add(db_url, "ada")
    assert all(_who(db_url, t) is None for t in tokens)


@pytest.mark.parametrize("command", ["reset-password", "unlock", "remove", "revoke"])
def test_an_unknown_user_is_one_line_and_changes_nothing(db_url, command):
    _add(db_url, "ada")
    token = _open(db_url, "ada")
    r = _cli("users", command, "nobody\nada", "--db", db_url, stdin="pw\n")
    _one_error_line(r, "USERNAME", "no user", "nobody\\nada")
    assert _who(db_url, token) is not None
    assert _login(db_url, "ada", "ada-pass") is not None


def test_hostile_names_touch_only_themselves(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    _add(url, "plain", *HOSTILE)
    plain = _open(url, "plain")
    for name in HOSTILE:
        token = _open(url, name)
        r = _cli("users", "reset-password", "--db", url, "--", name, stdin="other\n")
        assert r.returncode == 0 and repr(name) in r.stdout, r.stderr
        assert _who(url, token) is None
        assert _login(url, name, "other") is not None
        assert _cli("users", "unlock", "--db", url, "--", name).returncode == 0
        assert _cli("users", "remove", "--db", url, "--", name).returncode == 0
    assert _who(url, plain) is not None
    assert _cli("users", "list", "--db", url).stdout.split() == ["plain", "admin"]
    assert _login(url, "plain", "plain-pass") is not None


def test_reset_password_refuses_an_empty_password(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    _add(url, "ada")
    token = _open(url, "ada")
    _one_error_line(_cli("users", "reset-password", "ada", "--db", url, stdin="\n"), "password")
    _one_error_line(_cli("users", "reset-password", "ada", "--password", "", "--db", url),
                    "password")
    assert _who(url, token) is not None and _login(url, "ada", "ada-pass") is not None


# ---- races --------------------------------------------------------------------------


def _together(jobs: list) -> list[object]:
    """Run every zero-argument job at the same moment; their results or exceptions."""
    results: list[object] = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def one(i: int) -> None:
        start.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # noqa: BLE001 - recorded and asserted on
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_remove_while_logins_run(db_url, monkeypatch):
    """Right-password logins racing a remove: none fails with an error, and afterwards no
    token that any of them got works, and nothing of the user is left but the audit."""
    monkeypatch.setenv(config.DB_ENV, db_url)
    _add(db_url, "ada")
    logins = [lambda: login.check_login("ada", "ada-pass", "10.9.9.9")] * PARALLEL
    results = _together([*logins, lambda: _with(db_url, auth.remove_user, "ada")])
    assert not [r for r in results if isinstance(r, BaseException)], results
    tokens = [r[1] for r in results[:PARALLEL] if r is not None]
    assert all(_who(db_url, t) is None for t in tokens)
    for table in (dm.User, dm.LoginSession, dm.LoginThrottle):
        assert _count(db_url, select(func.count()).select_from(table)) == 0
    assert _count(db_url, select(func.count()).select_from(dm.LoginAttempt)) == PARALLEL


def test_reset_while_logins_run(db_url, monkeypatch):
    """Old-password logins racing a reset: whichever came first, no session opened with the
    old password outlives the reset."""
    monkeypatch.setenv(config.DB_ENV, db_url)
    _add(db_url, "ada")
    logins = [lambda: login.check_login("ada", "ada-pass", "10.9.9.9")] * PARALLEL
    results = _together([*logins, lambda: _with(db_url, auth.reset_password, "ada", "new")])
    assert not [r for r in results if isinstance(r, BaseException)], results
    tokens = [r[1] for r in results[:PARALLEL] if r is not None]
    assert all(_who(db_url, t) is None for t in tokens)
    assert _count(db_url, select(func.count()).select_from(dm.LoginSession).where(
        dm.LoginSession.revoked_at.is_(None))) == 0
    assert login.check_login("ada", "new", "10.9.9.8") is not None


def test_a_session_in_use_stops_at_the_removal(db_url):
    """Readers use a session over and over while it is removed: each read is the user or
    nobody, never an error, and the first read after the removal commits is nobody."""
    _add(db_url, "ada")
    token = _open(db_url, "ada")
    engine = open_store(db_url)
    removed = threading.Event()

    def reader() -> list[object]:
        seen = []
        while not removed.is_set():
            with auth.login_reader(engine) as s:
                seen.append(auth.session_user(s, token))
        with auth.login_reader(engine) as s:
            seen.append(auth.session_user(s, token))
        return seen

    def remover() -> int:
        try:
            with auth.login_session(engine) as s, s.begin():
                return auth.remove_user(s, "ada")
        finally:
            removed.set()

    try:
        results = _together([reader, reader, reader, remover])
    finally:
        engine.dispose()
    assert results[-1] == 1, results[-1]
    for seen in results[:-1]:
        assert isinstance(seen, list), seen
        assert all(u is None or u.username == "ada" for u in seen)
        assert seen[-1] is None
