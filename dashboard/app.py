"""Residuals dashboard entry point: routes only.

Rule: this file decides which pages the visitor may open (from the login held
by the data layer, never from a widget or query parameter) and hands over to
``st.navigation``; every page draws itself, every number comes from
:mod:`dashboard.data`.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.auth import ADMIN, CREATOR, ECONOMIST

st.set_page_config(page_title="Residuals", page_icon=":material/movie:", layout="wide")

training = st.Page("views/training_data.py", title="Training data", url_path="training-data",
                   icon=":material/video_library:")
login = st.Page("views/login.py", title="Log in", url_path="login", icon=":material/login:")
logout = st.Page("views/logout.py", title="Log out", url_path="logout", icon=":material/logout:")
my_share = st.Page("views/my_share.py", title="My share", url_path="my-share",
                   icon=":material/payments:")
batches = st.Page("views/batches.py", title="Batches", url_path="batches",
                  icon=":material/account_balance:")
policy_lab = st.Page("views/policy_lab.py", title="Policy lab", url_path="policy-lab",
                     icon=":material/science:")

user = data.current_user()
if user is None:
    nav = {"Public": [training], "Account": [login]}
else:
    own = {
        CREATOR: [my_share],
        ECONOMIST: [policy_lab],
        ADMIN: [batches, policy_lab],
    }.get(user.role, [])
    nav = {"Your pages": own, "Public": [training], "Account": [logout]} if own else {
        "Public": [training], "Account": [logout]}
    st.sidebar.caption(f"Logged in as **{user.username}** ({user.role})")
st.navigation(nav).run()
