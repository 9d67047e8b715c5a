"""Log in: one form; a failure says so without saying which part was wrong."""

from __future__ import annotations

import streamlit as st

from dashboard import data

st.title("Log in")
st.write("Creators see their own share; the platform sees its batches; economists use the "
         "policy lab. The training-data manifest is public.")
problem = data.store_problem()
if problem is not None:
    st.error(problem)
    st.stop()
with st.form("login"):
    username = st.text_input("Username", key="login_username")
    password = st.text_input("Password", type="password", key="login_password")
    submitted = st.form_submit_button("Log in", type="primary")
if submitted:
    if data.log_in(username, password) is None:
        st.error(data.FAILED_LOGIN)
    else:
        st.rerun()
