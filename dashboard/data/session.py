"""Who is asking: logins, lasting sessions and the role checks every data function makes.

Rules:

- A successful login opens a server-side session (:mod:`dashboard.auth`): a
  random token whose sha256 is stored in the ledger database with an expiry.
  The token is kept in this browser session's state and in a cookie
  (:data:`COOKIE`, ``SameSite=Strict``), so a refresh or a server restart
  finds the login again; log-out revokes it on the server.
- The user is looked up from the token on every run: a widget, a query
  parameter or a made-up token in the session state logs nobody in, and a
  revoked or expired token stops working at once.
- Anything that goes wrong while logging in shows one sentence; the detail
  goes to the server log.
"""

from __future__ import annotations

import logging

import streamlit as st

from contract.errors import ResidualsError
from dashboard import auth
from dashboard.auth import ADMIN, CREATOR, ECONOMIST, LoggedIn
from dashboard.data.store import engine, store_problem
from ledger.i18n import N_

LOG = logging.getLogger("residuals.dashboard")
FAILED_LOGIN = auth.FAILED_MESSAGE
UNAVAILABLE = N_("Logging in is not possible right now; please try again in a moment.")
TOKEN_KEY = "residuals_login_token"
COOKIE = "residuals_session"
_COOKIE_PENDING = "residuals_cookie_pending"


class NotAllowed(ResidualsError):
    """The login does not allow this page or these rows."""


def _token() -> str | None:
    token = st.session_state.get(TOKEN_KEY)
    if isinstance(token, str):
        return token
    try:
        cookie = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no browser context (bare mode, tests)
        return None
    return cookie if isinstance(cookie, str) and cookie else None


def current_user() -> LoggedIn | None:
    """The logged-in user of this browser session, or ``None``."""
    token = _token()
    if token is None or store_problem() is not None:  # never open (or create) a bad store
        return None
    try:
        with auth.login_reader(engine()) as session:
            return auth.session_user(session, token)
    except Exception:  # noqa: BLE001 - the page says what is wrong with the store
        LOG.exception("reading the login session failed")
        return None


def client_address() -> str | None:
    """The visitor's address as the server sees it (``None`` when unknown)."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - no browser context
        return None
    return address if isinstance(address, str) and address else None


def check_login(username: str, password: str, source: str | None
                ) -> tuple[LoggedIn, str] | None:
    """The user and a new session token when the login is right, else ``None``.

    One database transaction that holds the login's lock from its start
    (:func:`dashboard.auth.login_session`), so concurrent logins wait for each
    other instead of failing, and every failure counts.

    Raises
    ------
    ResidualsError
        With :data:`UNAVAILABLE` when the database fails (the detail is logged).
    """
    try:
        with auth.login_session(engine()) as session, session.begin():
            user = auth.authenticate(session, username, password, source=source)
            token = auth.open_login_session(session, user.username) if user else None
    except Exception:
        LOG.exception("login failed with an error")
        raise ResidualsError(UNAVAILABLE) from None
    return (user, token) if user is not None and token is not None else None


def log_in(username: str, password: str) -> LoggedIn | None:
    """Check a login (:func:`check_login`); on success open a lasting session for this
    browser."""
    found = check_login(username, password, client_address())
    if found is None:
        return None
    user, token = found
    st.session_state[TOKEN_KEY] = token
    st.session_state[_COOKIE_PENDING] = ("set", token)
    if user.language is not None:
        from dashboard import language

        language.adopt(user.language)
    return user


def remember_language(choice: str) -> None:
    """Keep ``choice`` as the logged-in user's language for their next login (nothing
    when nobody is logged in; a failure is logged, the page keeps working)."""
    token = _token()
    if token is None:
        return
    try:
        with auth.login_session(engine()) as session, session.begin():
            user = auth.session_user(session, token)
            if user is not None and user.language != choice:
                auth.set_language(session, user.username, choice)
    except Exception:  # noqa: BLE001 - the choice still holds for this session
        LOG.exception("remembering the language failed")


def log_out() -> None:
    """End this browser's login: revoked on the server, forgotten in the session and cookie."""
    token = _token()
    st.session_state.pop(TOKEN_KEY, None)
    st.session_state[_COOKIE_PENDING] = ("clear", "")
    if token is None:
        return
    try:
        with auth.login_session(engine()) as session, session.begin():
            auth.revoke_session(session, token)
    except Exception:  # noqa: BLE001 - logged; the session state no longer holds the token
        LOG.exception("revoking a login session failed")


def sync_cookie() -> None:
    """Write or clear the session cookie after a log-in or log-out (once, on the next run).

    Streamlit cannot send ``Set-Cookie`` from a script, so the browser sets the
    cookie itself: ``SameSite=Strict``, path ``/``, expiring with the session.
    """
    pending = st.session_state.pop(_COOKIE_PENDING, None)
    if pending is None:
        return
    action, token = pending
    age = int(auth.SESSION_S) if action == "set" else 0
    secure = "; Secure" if _https() else ""
    st.html(f"<script>document.cookie = '{COOKIE}={token}; Path=/; Max-Age={age}; "
            f"SameSite=Strict{secure}';</script>", unsafe_allow_javascript=True)


def _https() -> bool:
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no browser context
        return False
    return isinstance(url, str) and url.startswith("https:")


def require(*roles: str) -> LoggedIn:
    """The logged-in user if their role is one of ``roles``; else say so and stop the page."""
    user = current_user()
    if user is None:
        st.info("Please log in to see this page.")
        st.page_link("views/login.py", label="Log in", icon=":material/login:")
        st.stop()
    if user.role not in roles:
        st.error("This page needs a login with the role " + " or ".join(roles) + ".")
        st.stop()
    return user


def creator_id() -> str:
    """The logged-in creator's id; refuses (:class:`NotAllowed`) any other login."""
    user = current_user()
    if user is None or user.role != CREATOR or not user.creator_id:
        raise NotAllowed("only a logged-in creator can see creator rows")
    return user.creator_id


def staff() -> LoggedIn:
    """The logged-in admin or economist; refuses (:class:`NotAllowed`) anyone else."""
    user = current_user()
    if user is None or user.role not in (ADMIN, ECONOMIST):
        raise NotAllowed("this needs an admin or economist login")
    return user
