"""The ledger database as the pages see it: one cached engine, cached readers, one guard.

Rules:

- The engine is cached per database URL with ``st.cache_resource``; every
  reader is made by :func:`cached_reader`, so frames are cached with
  ``st.cache_data`` keyed by the URL and the reader's arguments (for anything
  about one creator, that creator's id).
- A database that is missing, unreachable, from an older schema or without
  any batch yields one clear sentence (:func:`store_problem`); a page calls
  :func:`stop_on_store_problem` and shows it instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl
import streamlit as st

from contract import errors
from contract.errors import ResidualsError
from dashboard import config

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

CACHE_TTL_S = 60
T = TypeVar("T")


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    from ledger.store.engine import make_engine

    return make_engine(url)


def engine(url: str | None = None) -> Engine:
    """The cached engine of the ledger database (never migrates: the dashboard only reads)."""
    return _engine(url or config.db_url())


class Reader:
    """A cached reader of the app's database: ``reader(*args)`` runs
    ``read(session, *args)`` in a read session, cached per (URL, args);
    ``reader.at(url, *args)`` names the database explicitly (tests)."""

    def __init__(self, at: Callable[..., Any]) -> None:
        self.at = at

    def __call__(self, *args: Any) -> Any:
        return self.at(config.db_url(), *args)

    def clear(self) -> None:
        self.at.clear()


def cached_reader(read: Callable[..., T], *, resource: bool = False,
                  max_entries: int | None = None, spinner: str | bool = False) -> Reader:
    """Wrap ``read(session, *args)`` into a :class:`Reader` cached by Streamlit.

    ``resource`` caches the result object itself (``st.cache_resource``: for
    large inputs that must not be copied per run); otherwise results are
    copied per run and expire after :data:`CACHE_TTL_S` seconds.
    """
    from ledger.store import read_session

    def run(url: str, *args: Any) -> T:
        with read_session(engine(url)) as session:
            return read(session, *args)

    # Streamlit keys a cache by module and qualified name: one key per wrapped reader.
    run.__module__ = read.__module__
    run.__qualname__ = f"cached_reader[{read.__qualname__}]"
    if resource:
        cached = st.cache_resource(max_entries=max_entries, show_spinner=spinner)(run)
    else:
        cached = st.cache_data(ttl=CACHE_TTL_S, max_entries=max_entries,
                               show_spinner=spinner)(run)
    return Reader(cached)


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


first_line = partial(errors.first_line, limit=200)
"""What a page may show of a driver error: its first line, at most 200 characters."""


def _count_batches(eng: Engine) -> int:
    from sqlalchemy import func, select

    from ledger.store import models

    with eng.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(models.Batch)).scalar_one())


def store_problem(*, need_batch: bool = False) -> str | None:
    """Why the ledger database cannot be used right now, in one sentence, or ``None``.

    Covers a missing SQLite file (never created by looking at it), an
    unreachable server, an empty or older schema, and (with ``need_batch``) a
    ledger where no batch has been posted yet.
    """
    from ledger.store.engine import current_revision, head_revision, safe_url

    try:
        url = config.db_url()
    except ResidualsError as exc:
        return f"The database URL is not valid ({exc}); start the dashboard with --db URL."
    shown = safe_url(url)
    path = _sqlite_file(url)
    if path is not None and not path.is_file():
        return (f"There is no ledger database at {path}. Run `make demo`, or "
                "`residuals batch run ... --db URL` and start the dashboard with `--db URL`.")
    try:
        eng = engine(url)
        revision = current_revision(eng)
    except ResidualsError as exc:
        return f"The ledger database cannot be reached: {exc}"
    except Exception as exc:  # a driver error after connecting (e.g. not a database file)
        return f"The ledger database at {shown} cannot be read: {first_line(exc)}"
    head = head_revision()
    if revision is None:
        return (f"The database at {shown} holds no ledger yet (no schema). "
                "Post a batch with `residuals batch run` first.")
    if revision != head:
        return (f"The ledger database at {shown} uses another schema version ({revision}; "
                f"this dashboard reads {head}). Run `residuals db upgrade --db URL` and reload.")
    if need_batch:
        try:
            n = _count_batches(eng)
        except Exception as exc:  # noqa: BLE001 - any read failure is reported on the page
            return f"The ledger database at {shown} cannot be read: {first_line(exc)}"
        if n == 0:
            return ("No payout batch has been posted yet. Run `residuals batch run --period P "
                    "--policy F --data DIR` (or `make demo`) and reload.")
    return None


def stop_on_store_problem(*, need_batch: bool = False) -> None:
    """The guard every page runs first: show :func:`store_problem` and stop the page."""
    problem = store_problem(need_batch=need_batch)
    if problem is not None:
        st.error(problem)
        st.stop()


# ---- money -------------------------------------------------------------------

def money_expr(column: str, currency: str) -> pl.Expr:
    """``column`` (integer minor units) formatted like :func:`ledger.money.format_minor`.

    Vectorised, for tables that can be long (payout files); equal to
    ``format_minor`` value for value (tested).
    """
    exp = exponent(currency)
    amount = pl.col(column).cast(pl.Int64)
    absolute = amount.abs()
    whole = (absolute // (10**exp)).cast(pl.String)
    grouped = (whole.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.reverse()
               .str.strip_chars_start(","))
    text = grouped
    if exp:
        frac = (absolute % (10**exp)).cast(pl.String).str.zfill(exp)
        text = pl.concat_str([grouped, pl.lit("."), frac])
    sign = pl.when(amount < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str([sign, text, pl.lit(" " + currency.upper())]).alias(column)


def money(amount_minor: int, currency: str) -> str:
    """One amount, formatted by the ledger (``1,234.56 USD``)."""
    from ledger.money import format_minor

    return format_minor(int(amount_minor), currency)


def exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency`` (the ledger's ISO 4217 table)."""
    from ledger.money import exponent as _exponent

    return _exponent(currency)

