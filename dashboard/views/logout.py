"""Log out: end the login on the server and in this browser."""

from __future__ import annotations

import streamlit as st

from dashboard import language
from dashboard.data import session

if session.current_user() is not None:
    session.log_out()
    st.rerun()
_ = language.tr()
st.title(_("Logged out"))
st.page_link("views/training_data.py", label=_("Training data"))
st.page_link("views/login.py", label=_("Log in again"))
