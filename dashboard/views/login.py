"""Log in: one form; a failure says so without saying which part was wrong."""

from __future__ import annotations

import streamlit as st

from dashboard.auth import ADMIN, CREATOR, ECONOMIST
from dashboard.data import session, store
from dashboard.text import plain

HOMES = {CREATOR: [("views/my_share.py", "My share")],
         ECONOMIST: [("views/policy_lab.py", "Policy lab")],
         ADMIN: [("views/batches.py", "Batches"), ("views/policy_lab.py", "Policy lab")]}

st.title("Log in")
user = session.current_user()
if user is not None:
    st.success(f"You are logged in as {plain(user.username)} ({user.role}).")
    for path, label in HOMES.get(user.role, []):
        st.page_link(path, label=label)
    st.stop()
st.write("Creators see their own share; the platform sees its batches; economists use the "
         "policy lab. The training-data manifest is public.")
store.stop_on_store_problem()
with st.form("login"):
    username = st.text_input("Username", key="login_username")
    password = st.text_input("Password", type="password", key="login_password")
    submitted = st.form_submit_button("Log in", type="primary")
if submitted:
    try:
        who = session.log_in(username, password)
    except session.ResidualsError as exc:
        st.error(str(exc))
    else:
        if who is None:
            st.error(session.FAILED_LOGIN)
        else:
            st.rerun()
