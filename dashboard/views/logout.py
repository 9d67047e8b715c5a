"""Log out: forget the login and go back to the public pages."""

from __future__ import annotations

import streamlit as st

from dashboard import data

data.log_out()
st.rerun()
