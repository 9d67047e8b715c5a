"""Residuals dashboard entry point: routes only.

Rule: this file decides which pages the visitor sees in the menu (from the
login held by the data layer, never from a widget or query parameter) and
hands over to ``st.navigation``. Every page is registered for everyone, so
every page's URL opens directly; a page the login does not allow is hidden
from the menu and refuses by itself (it asks to log in, or names the role it
needs). Every page draws itself, every number comes from :mod:`dashboard.data`.
An error that escapes a page shows one sentence; the detail goes to the log.
"""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import language
from dashboard.auth import ADMIN, CREATOR, ECONOMIST
from dashboard.data import session
from dashboard.text import PAGE_FAILED, plain

st.set_option("client.showErrorDetails", "none")
st.set_page_config(page_title="Residuals", page_icon=":material/movie:", layout="wide")
LOG = logging.getLogger("residuals.dashboard")

user = session.current_user()
role = user.role if user is not None else None
language.restore(user.language if user is not None else None)
_ = language.selector()


def _page(path: str, title: str, url_path: str, icon: str, visible: bool) -> st.Page:
    return st.Page(path, title=title, url_path=url_path, icon=icon,
                   visibility="visible" if visible else "hidden")


training = _page("views/training_data.py", _("Training data"), "training-data",
                 ":material/video_library:", True)
login = _page("views/login.py", _("Log in"), "login", ":material/login:", user is None)
logout = _page("views/logout.py", _("Log out"), "logout", ":material/logout:", user is not None)
my_share = _page("views/my_share.py", _("My share"), "my-share", ":material/payments:",
                 role == CREATOR)
batches = _page("views/batches.py", "Batches", "batches", ":material/account_balance:",
                role == ADMIN)
policy_lab = _page("views/policy_lab.py", "Policy lab", "policy-lab", ":material/science:",
                   role in (ADMIN, ECONOMIST))
claims = _page("views/claims.py", "Claims", "claims", ":material/gavel:", role == ADMIN)
payouts = _page("views/payouts.py", "Payouts", "payouts", ":material/send_money:",
                role == ADMIN)
own = [p for p, shown in ((my_share, role == CREATOR), (batches, role == ADMIN),
                          (payouts, role == ADMIN), (claims, role == ADMIN),
                          (policy_lab, role in (ADMIN, ECONOMIST))) if shown]


def home() -> None:
    """The app's root URL: the login's first page, else the public training data."""
    st.switch_page(own[0] if own else training)


root = st.Page(home, title="Residuals", url_path="home", default=True, visibility="hidden")
hidden = [p for p in (my_share, batches, payouts, claims, policy_lab) if p not in own]
account = [logout if user is not None else login, login if user is not None else logout]
nav = {_("Your pages"): own} if own else {}
nav |= {_("Public"): [training], _("Account"): [*account, *hidden, root]}
if user is not None:
    st.sidebar.caption(_("Logged in as **{username}** ({role})").format(
        username=plain(user.username), role=user.role))
session.sync_cookie()
try:
    st.navigation(nav).run()
except Exception:  # noqa: BLE001 - Streamlit's stop and rerun are not Exceptions
    LOG.exception("a dashboard page failed")
    st.error(_(PAGE_FAILED))
