"""Claims on the dashboard (AppTest): a creator opens one on My share, an admin decides it
on the Claims page, the creator sees the outcome; another creator sees none of it."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import config
from tests.dashboard.test_pages import APP, TIMEOUT, login, texts

HOSTILE = "wrong ![x](http://e.test/x.png) <b>bold</b>"


@pytest.fixture
def claims_db(demo_db, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A private copy of the posted ledger (claims written here stay here)."""
    src = demo_db.url.removeprefix("sqlite:///")
    shutil.copy(src, tmp_path / "ledger.db")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv(config.DB_ENV, url)
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    return url


def as_user(demo_db, username: str) -> AppTest:  # type: ignore[no-untyped-def]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    return login(at, username, demo_db.logins[username][0])


def test_creator_opens_admin_decides_creator_sees_outcome(claims_db, demo_db) -> None:  # type: ignore[no-untyped-def]
    a, b = demo_db.creator_a, demo_db.creator_b
    at = as_user(demo_db, a)
    at.switch_page("views/my_share.py").run()
    assert not at.exception
    at.radio(key="claim_kind").set_value("wrong_amount").run()
    at.text_area(key="claim_text").set_value(HOSTILE)
    at.button[0].click().run()  # the form's submit button (the only button on the page)
    assert not at.exception
    assert "Claim 1 is open" in texts(at)
    assert HOSTILE in texts(at)  # the claims table shows the text as it is

    other = as_user(demo_db, b)
    other.switch_page("views/my_share.py").run()
    assert HOSTILE not in texts(other) and "You have not opened a claim." in texts(other)
    other.switch_page("views/claims.py").run()
    assert "needs a login with the role admin" in texts(other) and HOSTILE not in texts(other)

    admin = as_user(demo_db, "admin")
    admin.switch_page("views/claims.py").run()
    assert not admin.exception
    assert "Claim 1 · wrong_amount · open" in texts(admin)
    admin.radio(key="claims_decision").set_value("Reject").run()
    admin.text_area(key="claims_reason").set_value("the statement is right")
    admin.button[0].click().run()
    assert "Claim 1 rejected." in texts(admin)

    at.switch_page("views/my_share.py").run()
    assert "rejected: the statement is right" in texts(at)


def test_a_creator_cannot_use_the_staff_functions(claims_db, demo_db) -> None:  # type: ignore[no-untyped-def]
    """Called from a creator's session, the queue, the evidence and resolve refuse."""
    from dashboard.data import claims, session

    at = as_user(demo_db, demo_db.creator_a)
    token = at.session_state[session.TOKEN_KEY]
    import streamlit as st

    st.session_state[session.TOKEN_KEY] = token  # the data layer reads the login from here
    try:
        assert claims.my_claims().height == 0  # the login is read: a creator's own rows work
        for call in (lambda: claims.queue(None), lambda: claims.evidence(1),
                     lambda: claims.resolve(1, uphold=True, amount="1.00")):
            with pytest.raises(session.NotAllowed):
                call()
    finally:
        del st.session_state[session.TOKEN_KEY]
