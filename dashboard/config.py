"""Where the dashboard finds its database and data: one place, read from the environment.

Rule: ``residuals dashboard`` passes the database URL in :data:`DB_ENV` and an
optional data directory in :data:`DATA_ENV`; nothing else configures the app,
so a test (``AppTest`` or a browser) configures it the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from contract.errors import ResidualsError

DB_ENV = "RESIDUALS_DB"
DATA_ENV = "RESIDUALS_DATA"
DEFAULT_DB = "sqlite:///data/demo.db"
APP_PATH = Path(__file__).resolve().parent / "app.py"


def check_url(url: str) -> str:
    """A parseable SQLAlchemy URL, with a relative SQLite path made absolute.

    Raises
    ------
    ResidualsError
        When ``url`` is not a database URL.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ResidualsError(
            f"--db {url!r}: not a database URL, expected e.g. sqlite:///data/demo.db "
            "or postgresql+psycopg://user@host/db") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    """``url`` with any password hidden, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL has no password to hide
        return url


def db_url() -> str:
    """The database URL the app was started with: ``$RESIDUALS_DB`` (the variable the
    ledger store also reads), else the demo's SQLite file."""
    return check_url(os.environ.get(DB_ENV) or DEFAULT_DB)


def data_override() -> Path | None:
    """The data directory given with ``--data``, if any."""
    value = os.environ.get(DATA_ENV)
    return Path(value) if value else None
