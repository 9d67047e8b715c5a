"""Opening the ledger of record for a workflow: an existing one, never an empty one.

Rule: a ledger is only created once the batch to post is known to be valid:
:func:`existing_ledger` opens a ledger without creating one, and readers
(``statement``, ``ledger verify``, exports, claims) :func:`require_ledger`,
which refuses a database that does not exist rather than create an empty one.
Errors name the parameter ``url``; the CLI spells it ``--db``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contract.errors import ResidualsError


def sqlite_file(url: str | None) -> Path | None:
    """The file of a SQLite ledger URL (``url`` or its default), else None."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    from ledger.store.engine import resolve_url

    try:
        parsed = make_url(resolve_url(url))
    except ArgumentError:
        return None  # opening it says what is wrong
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:" \
            or db.startswith("file:"):
        return None
    return Path(db)


def existing_ledger(url: str | None) -> Any:
    """An engine on the ledger at ``url`` when it exists (brought to the newest schema),
    or None when there is none yet: no SQLite file, or a PostgreSQL database without
    the ledger's tables. Creates nothing."""
    from ledger.store.engine import current_revision, make_engine, open_store

    path = sqlite_file(url)
    if path is not None:
        return open_store(url) if path.exists() else None
    engine = make_engine(url)
    try:
        if current_revision(engine) is None:
            return None
    finally:
        engine.dispose()
    return open_store(url)


def require_ledger(url: str | None) -> Any:
    """:func:`existing_ledger`, or a one-line error when there is no ledger at ``url``."""
    from ledger.store.engine import resolve_url, safe_url

    engine = existing_ledger(url)
    if engine is None:
        raise ResidualsError(f"url={safe_url(resolve_url(url))!r}: no ledger database there "
                             "(`residuals batch run` creates one)")
    return engine
