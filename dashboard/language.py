"""The language a visitor reads the creator pages in: chosen in the sidebar, kept per session
and per user.

Rule: the choice lives in this browser session's state and in the ``lang``
query parameter (so a refresh or a bookmarked link keeps it); a logged-in
user's choice is also stored with their login (``dashboard_users.language``)
and adopted when they log in and when a browser session starts with their
login already held (a reload, a new tab), unless the address names a language. Any
other value than a language of :data:`ledger.i18n.LANGUAGES` is ignored
(English). It changes words and formats only, never who sees what.
"""

from __future__ import annotations

import streamlit as st

from ledger.i18n import DEFAULT, LANGUAGES, Tr

KEY = "residuals_language"
PARAM = "lang"
_ADOPT = "residuals_language_adopt"


def _from_url() -> str | None:
    try:
        value = st.query_params.get(PARAM)
    except Exception:  # noqa: BLE001 - no browser context (bare mode, tests)
        return None
    return value if value in LANGUAGES else None


def current() -> str:
    """The language of this session: the sidebar's choice, else ``?lang=``, else English."""
    chosen = st.session_state.get(KEY)
    if chosen in LANGUAGES:
        return chosen
    return _from_url() or DEFAULT


def tr() -> Tr:
    """Translate and format in this session's language."""
    return Tr(current())


def adopt(language: str) -> None:
    """Use ``language`` (a user's stored choice) from the next run on, unless the address
    names a language; the sidebar box cannot change during the run that drew it."""
    if language in LANGUAGES and _from_url() is None:
        st.session_state[_ADOPT] = language


def restore(stored: str | None) -> None:
    """At the first run of a browser session that already holds a login (its cookie):
    adopt the user's ``stored`` language (:func:`adopt`); later runs keep the session's."""
    if KEY not in st.session_state and stored is not None:
        adopt(stored)


def _remember() -> None:
    from dashboard.data import session

    session.remember_language(st.session_state[KEY])


def selector() -> Tr:
    """Draw the language choice in the sidebar; returns the chosen language's :class:`Tr`.
    Picking a language stores it as the logged-in user's choice."""
    adopted = st.session_state.pop(_ADOPT, None)
    if adopted in LANGUAGES:
        st.session_state[KEY] = adopted
    if st.session_state.get(KEY) not in LANGUAGES:
        st.session_state[KEY] = current()
    choice = st.sidebar.selectbox("Language · Idioma", list(LANGUAGES), key=KEY,
                                  format_func=LANGUAGES.__getitem__, on_change=_remember)
    if _from_url() != choice and (choice != DEFAULT or _from_url() is not None):
        st.query_params[PARAM] = choice
    return Tr(choice)
