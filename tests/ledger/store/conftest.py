"""Fixtures for the ledger store: the same tests run on SQLite and on PostgreSQL.

``pg_server`` starts a throwaway PostgreSQL cluster for the test session:
``initdb`` into a temporary directory, ``pg_ctl start`` listening on
127.0.0.1 at a free port with its socket in that directory, stopped and
removed at the end. PostgreSQL refuses to run as root, so when the tests run
as root (as ``.ci/run`` does) the server runs as the ``postgres`` user that
the Debian package creates (or ``nobody``). ``db_url`` is parametrised over
``sqlite`` and ``postgresql`` and gives each test a fresh, empty database.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import need


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(cands[-1]).parent if cands else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
            return user
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


@dataclass
class PgServer:
    """A running throwaway cluster; ``url(db)`` is a SQLAlchemy URL for database ``db``."""

    bin: Path
    port: int
    sockdir: Path

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def start_pg(settings: Mapping[str, str] | None = None) -> tuple[PgServer, object]:
    """Start a cluster; returns the server and a zero-argument stop function.

    ``settings`` are server settings (``-c name=value``) beyond the test defaults.
    """
    bindir = _pg_bin()
    assert bindir is not None
    user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="residuals-pg-"))
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    prefix: list[str] = []
    if user is not None:
        pw = pwd.getpwnam(user)
        for p in (root, data):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, env=env)
    opts = (f"-k {root} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off "
            "-c max_connections=100 -c shared_buffers=128MB"
            + "".join(f" -c {k}={v}" for k, v in (settings or {}).items()))
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts,
                    "-l", str(root / "log"), "-w", "-t", "60", "start"],
                   check=True, capture_output=True, env=env)
    server = PgServer(bindir, port, root)

    def stop() -> None:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], capture_output=True, env=env)
        shutil.rmtree(root, ignore_errors=True)

    return server, stop


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    """A session-wide PostgreSQL cluster, or None when the binaries are missing."""
    if _pg_bin() is None:
        yield None
        return
    server, stop = start_pg()
    atexit.register(stop)  # also when the session is interrupted; stopping twice is harmless
    try:
        yield server
    finally:
        stop()  # type: ignore[operator]
        atexit.unregister(stop)


_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a fresh empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    server: PgServer | None = request.getfixturevalue("pg_server")
    need(server is not None, "PostgreSQL server binaries (initdb, pg_ctl) not installed")
    assert server is not None
    name = f"t{os.getpid()}_{next(_counter)}"
    server.admin(f"CREATE DATABASE {name}")
    return server.url(name)
