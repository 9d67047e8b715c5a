"""Database URLs, engines and schema upgrades for the ledger store.

Rule: every engine the project uses comes from :func:`open_store`, which turns
an unreachable or malformed URL into a one-line :class:`ResidualsError`, makes
SQLite behave like a ledger database (foreign keys on, WAL, a busy timeout,
``BEGIN IMMEDIATE`` for writers) and brings the schema to the newest Alembic
revision on first use, under a lock so that two processes starting at once
cannot both migrate. Writers open sessions with :func:`write_session`: on
SQLite that takes the database write lock at ``BEGIN``; on PostgreSQL it takes
a transaction-scoped advisory lock. Either way, two batch runs serialise and
the second sees what the first committed.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session

from contract.errors import ResidualsError, first_line

DEFAULT_URL = "sqlite:///data/demo.db"
"""The database used when no ``url`` is given (a SQLite file)."""

ENV_URL = "RESIDUALS_DB"
"""Environment variable that overrides :data:`DEFAULT_URL`."""

_WRITE = "ledger_write"
_LOCK_KEY = 0x5E51D0A1  # advisory lock id of the ledger writers (PostgreSQL)
_MIGRATE_LOCK_KEY = 0x5E51D0A2
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def resolve_url(url: str | None) -> str:
    """``url``, else ``$RESIDUALS_DB``, else :data:`DEFAULT_URL`."""
    return url or os.environ.get(ENV_URL) or DEFAULT_URL


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ResidualsError(f"url={url!r}: not a database URL "
                             "(expected e.g. sqlite:///data/demo.db or "
                             "postgresql://user@host/db)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ResidualsError(f"url={safe_url(url)!r}: unsupported database "
                             f"{parsed.get_backend_name()!r}, expected sqlite or postgresql")
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return str(url)


def _set_wal(cur) -> None:  # type: ignore[no-untyped-def]
    """Switch a SQLite database to WAL, waiting while another process holds a write lock.

    SQLite refuses the switch at once (no busy wait) while another connection
    writes to a database still in rollback-journal mode, which happens when
    two processes open a new ledger file together (one of them migrating).
    """
    import sqlite3

    deadline = time.monotonic() + 120.0
    delay = 0.01
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA busy_timeout = 120000")
        if engine.url.database not in (None, "", ":memory:"):
            _set_wal(cur)
            cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _postgres_setup(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE, False):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")


def keep_private(path: Path) -> None:
    """Make a SQLite ledger file readable and writable by its owner only (``0600``).

    The ledger holds password hashes. A new file is created ``0600`` before
    SQLite first writes to it (SQLite gives its ``-wal``, ``-shm`` and journal
    files the database file's permissions); an existing file of ours, or one of
    those beside it, that others may read is tightened to ``0600``.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ResidualsError(f"url={str(path)!r}: cannot create the database file "
                             f"({exc.strerror})") from None
    else:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.close(fd)
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            st = file.stat()
        except OSError:
            continue
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            with contextlib.suppress(OSError):  # a read-only file system: leave it
                file.chmod(0o600)


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (see :func:`resolve_url`), checked to be reachable.

    Raises
    ------
    ResidualsError
        The URL is malformed, names an unsupported backend, or cannot be
        connected to.
    """
    raw = resolve_url(url)
    parsed = _parse(raw)
    kwargs: dict[str, object] = {}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            parent = Path(db).resolve().parent
            if not parent.is_dir():
                raise ResidualsError(f"url={raw!r}: cannot open database, directory "
                                     f"{parent} does not exist")
            keep_private(Path(db))
    else:
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(parsed, **kwargs)  # type: ignore[arg-type]
    except (NoSuchModuleError, ArgumentError) as exc:
        raise ResidualsError(f"url={safe_url(raw)!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        _sqlite_setup(engine)
    else:
        _postgres_setup(engine)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        engine.dispose()
        raise ResidualsError(f"url={safe_url(raw)!r}: cannot connect to the database "
                             f"({first_line(exc.orig if exc.orig is not None else exc)})"
                             ) from None
    return engine


def _alembic_config(conn: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)  # type: ignore[arg-type]
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration, under a lock; returns (before, after) revisions.

    Safe to call from several processes at once: the first migrates, the
    others wait for it and then find nothing to do.
    """
    from alembic import command

    head = head_revision()
    before = current_revision(engine)
    if before == head:
        return before, head
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATE_LOCK_KEY})")
            conn.commit()
        try:
            locked = conn.execution_options(**{_WRITE: True})
            with locked.begin():
                from alembic.runtime.migration import MigrationContext

                before = MigrationContext.configure(locked).get_current_revision()
                if before != head:
                    command.upgrade(_alembic_config(locked), "head")
        finally:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATE_LOCK_KEY})")
                conn.commit()
    return before, head


def open_store(url: str | None = None, *, migrate: bool = True) -> Engine:
    """Open the ledger database at ``url`` and bring its schema up to date.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://user@host/db``);
        ``None`` means ``$RESIDUALS_DB`` or :data:`DEFAULT_URL`.
    migrate
        Apply pending migrations (the default: the schema is created on first
        use). With ``False`` an out-of-date schema is an error.
    """
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    elif current_revision(engine) != head_revision():
        engine.dispose()
        raise ResidualsError(f"url={safe_url(engine.url)!r}: schema is not up to date; "
                             "run `residuals db upgrade`")
    return engine


def write_session(engine: Engine) -> Session:
    """A session whose transactions hold the ledger write lock from their first statement."""
    return Session(engine.execution_options(**{_WRITE: True}), expire_on_commit=False)


def read_session(engine: Engine) -> Session:
    """A plain session for readers (never blocks writers on PostgreSQL or WAL SQLite)."""
    return Session(engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    """Raise :class:`ResidualsError` unless the database answers."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise ResidualsError(f"url={safe_url(engine.url)!r}: cannot reach the database "
                             f"({first_line(exc.orig if exc.orig is not None else exc)})") from None
