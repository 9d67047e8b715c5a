"""Log in: one form; a failure says so without saying which part was wrong."""

from __future__ import annotations

import streamlit as st

from dashboard import language
from dashboard.auth import ADMIN, CREATOR, ECONOMIST
from dashboard.data import session, store
from dashboard.text import plain
from ledger.i18n import N_

HOMES = {CREATOR: [("views/my_share.py", N_("My share"))],
         ECONOMIST: [("views/policy_lab.py", N_("Policy lab"))],
         ADMIN: [("views/batches.py", N_("Batches")), ("views/policy_lab.py", N_("Policy lab"))]}

_ = language.tr()
st.title(_("Log in"))
user = session.current_user()
if user is not None:
    st.success(_("You are logged in as {username} ({role}).").format(
        username=plain(user.username), role=user.role))
    for path, label in HOMES.get(user.role, []):
        st.page_link(path, label=_(label))
    st.stop()
st.write(_("Creators see their own share; the platform sees its batches; economists use the "
           "policy lab. The training-data manifest is public."))
store.stop_on_store_problem()
with st.form("login"):
    username = st.text_input(_("Username"), key="login_username")
    password = st.text_input(_("Password"), type="password", key="login_password")
    submitted = st.form_submit_button(_("Log in"), type="primary")
if submitted:
    try:
        who = session.log_in(username, password)
    except session.ResidualsError as exc:
        st.error(_(str(exc)))
    else:
        if who is None:
            st.error(_(session.FAILED_LOGIN))
        else:
            st.rerun()
