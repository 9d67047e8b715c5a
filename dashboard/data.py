"""The dashboard's data layer: every number a page shows comes from here.

Rules:

- The engine is cached per database URL with ``st.cache_resource``; frames are
  cached with ``st.cache_data``, keyed by the URL and, for anything about one
  creator, by that creator's id.
- A creator-scoped function takes **no** creator argument: it reads the
  creator_id of the login recorded by :func:`log_in` in a server-side table,
  found through an unguessable token in the session. A widget, a query
  parameter or a value written into the session state cannot name another
  creator.
- A database that is missing, unreachable, from an older schema or without
  any batch yields one clear sentence (:func:`store_problem`) that pages show
  instead of a traceback.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from dashboard import config, manifest
from dashboard.auth import ADMIN, CREATOR, ECONOMIST, FAILED_MESSAGE, LoggedIn

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

FAILED_LOGIN = FAILED_MESSAGE
TOKEN_KEY = "residuals_login_token"
CACHE_TTL_S = 60


class NotAllowed(ResidualsError):
    """The login does not allow this page or these rows."""


# ---- logins ---------------------------------------------------------------

@st.cache_resource
def _logins() -> dict[str, LoggedIn]:
    """Server-side table of live logins, keyed by the random token in a session."""
    return {}


def current_user() -> LoggedIn | None:
    """The logged-in user of this browser session, or ``None``."""
    token = st.session_state.get(TOKEN_KEY)
    return _logins().get(token) if isinstance(token, str) else None


def log_in(username: str, password: str) -> LoggedIn | None:
    """Check a login against the ledger's users; on success remember it for this session."""
    from sqlalchemy.orm import Session

    from dashboard.auth import authenticate

    with Session(engine(config.db_url())) as session, session.begin():
        user = authenticate(session, username, password)
    if user is None:
        return None
    token = secrets.token_urlsafe(32)
    _logins()[token] = user
    st.session_state[TOKEN_KEY] = token
    return user


def log_out() -> None:
    """Forget this session's login, on the server and in the session."""
    token = st.session_state.pop(TOKEN_KEY, None)
    if isinstance(token, str):
        _logins().pop(token, None)


def require(*roles: str) -> LoggedIn:
    """The logged-in user if their role is one of ``roles``; else stop the page."""
    user = current_user()
    if user is None or user.role not in roles:
        st.error("This page needs a login with the role " + " or ".join(roles) + ".")
        st.stop()
    return user


def _creator_id() -> str:
    user = current_user()
    if user is None or user.role != CREATOR or not user.creator_id:
        raise NotAllowed("only a logged-in creator can see creator rows")
    return user.creator_id


def _staff() -> LoggedIn:
    user = current_user()
    if user is None or user.role not in (ADMIN, ECONOMIST):
        raise NotAllowed("this needs an admin or economist login")
    return user


# ---- the data directory (catalogue) ---------------------------------------

def read_without_embeddings(path: Path, table: S.Table) -> pl.DataFrame:
    """Read a contract table minus its embedding column, validated like every reader.

    The dashboard never needs embeddings; skipping them keeps a large
    catalogue cheap to load.
    """
    from contract.io import validate_frame

    if not path.is_file():
        raise ResidualsError(f"{path}: file not found (expected the {table.name} table)")
    try:
        columns = [c for c in pl.read_parquet_schema(path) if c != S.EMBEDDING]
        df = pl.read_parquet(path, columns=columns)
    except Exception as exc:  # polars raises several types for unreadable files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ResidualsError(f"{path}: is not a readable Parquet file ({first[:160]})") from None
    meta = S.Table(
        table.name,
        required={k: v for k, v in table.required.items() if k != S.EMBEDDING},
        optional=table.optional,
        key=table.key,
    )
    return validate_frame(df, meta, path)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _manifest(data_dir: str) -> manifest.Manifest:
    from contract.io import check_creators_known, read_table

    root = Path(data_dir)
    creators = read_table(root / S.CREATORS.filename, S.CREATORS)
    clips_path = root / S.CLIPS.filename
    clips = read_without_embeddings(clips_path, S.CLIPS)
    check_creators_known(clips, creators, str(clips_path))
    return manifest.build_manifest(creators, clips)


def training_manifest(data_dir: Path) -> manifest.Manifest:
    """The public manifest of the catalogue in ``data_dir`` (cached)."""
    return _manifest(str(data_dir.resolve()))
