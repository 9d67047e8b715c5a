"""Log out: end the login on the server and in this browser."""

from __future__ import annotations

import streamlit as st

from dashboard.data import session

if session.current_user() is not None:
    session.log_out()
    st.rerun()
st.title("Logged out")
st.page_link("views/training_data.py", label="Training data")
st.page_link("views/login.py", label="Log in again")
