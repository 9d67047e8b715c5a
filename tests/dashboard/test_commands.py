"""``residuals users add|list`` and ``residuals dashboard``: flags, errors, nothing half-written."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import auth, config
from dashboard.models import User
from ledger.store import models, open_store
from residuals.commands.dashboard import streamlit_command


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "residuals", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def ledger(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    engine = open_store(url)
    with Session(engine) as s, s.begin():
        s.add(models.Creator(creator_id="cA", display_name="Ada"))
    engine.dispose()
    return url


def _users(url):
    engine = open_store(url)
    with Session(engine) as s:
        rows = s.execute(select(User.username, User.role, User.creator_id,
                                User.password_hash)).all()
    engine.dispose()
    return rows


def test_users_add_with_password_from_stdin(ledger):
    r = _cli("users", "add", "ada", "--role", "creator", "--creator", "cA", "--db", ledger,
             stdin="s3cret\n")
    assert r.returncode == 0, r.stderr
    [(name, role, cid, h)] = _users(ledger)
    assert (name, role, cid) == ("ada", "creator", "cA")
    assert auth.verify_password(h, "s3cret") and "s3cret" not in r.stdout
    listed = _cli("users", "list", "--db", ledger)
    assert listed.returncode == 0 and listed.stdout.split() == ["ada", "creator", "cA"]


def test_users_add_with_password_flag(ledger):
    r = _cli("users", "add", "boss", "--role", "admin", "--password", "pw", "--db", ledger)
    assert r.returncode == 0, r.stderr
    assert [u[:3] for u in _users(ledger)] == [("boss", "admin", None)]


@pytest.mark.parametrize(
    ("args", "stdin", "names"),
    [
        (["x", "--role", "owner", "--password", "p"], None, "--role"),
        (["x", "--role", "creator", "--password", "p"], None, "--creator"),
        (["x", "--role", "creator", "--creator", "nobody", "--password", "p"], None,
         "not in the ledger"),
        (["x", "--role", "admin", "--creator", "cA", "--password", "p"], None, "--creator"),
        (["x", "--role", "admin"], "", "password"),
        (["", "--role", "admin", "--password", "p"], None, "USERNAME"),
    ],
)
def test_users_add_errors(ledger, args, stdin, names):
    r = _cli("users", "add", *args, "--db", ledger, stdin=stdin)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert _users(ledger) == []


def test_users_add_twice_is_refused(ledger):
    assert _cli("users", "add", "a", "--role", "admin", "--password", "p", "--db",
                ledger).returncode == 0
    r = _cli("users", "add", "a", "--role", "economist", "--password", "q", "--db", ledger)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert [u[1] for u in _users(ledger)] == ["admin"]


def test_dashboard_rejects_a_bad_url_and_a_busy_port(tmp_path):
    r = _cli("dashboard", "--db", "not a url")
    assert r.returncode == 1 and r.stderr.startswith("error: --db") and "Traceback" not in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _cli("dashboard", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert r.returncode == 1 and r.stderr.startswith(f"error: --port {port}")
    r = _cli("dashboard", "--port", "70000")
    assert r.returncode == 1 and "--port 70000" in r.stderr
    r = _cli("dashboard", "--data", str(tmp_path / "missing"))
    assert r.returncode == 1 and "--data" in r.stderr


def test_streamlit_command_serves_the_app():
    cmd = streamlit_command(8765, "127.0.0.1")
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(config.APP_PATH)
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    assert cmd[cmd.index("--client.showErrorDetails") + 1] == "none"


def test_dashboard_serves_without_a_terminal(demo_db, tmp_path):
    """Started as a service would be: standard input closed, a home without Streamlit
    credentials (where Streamlit would ask for an e-mail address), no ``--headless``."""
    from tests.dashboard.serve import dashboard

    home = tmp_path / "home"
    home.mkdir()
    with dashboard(demo_db.url, env={"HOME": str(home)}) as url:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=30) as r:
            assert r.read().strip() == b"ok"
    assert not (home / ".streamlit" / "credentials.toml").exists()


def test_relative_sqlite_url_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config.check_url("sqlite:///data/demo.db") == f"sqlite:///{tmp_path}/data/demo.db"
