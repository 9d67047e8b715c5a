"""Every page under Streamlit's AppTest, against a ledger posted from the sample data."""

from __future__ import annotations

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from contract import schema as S
from dashboard import config
from dashboard.auth import FAILED_MESSAGE

APP = str(config.APP_PATH)
TIMEOUT = 60


@pytest.fixture
def app(demo_db, monkeypatch):
    monkeypatch.setenv(config.DB_ENV, demo_db.url)
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    return at.run()


def login(at: AppTest, username: str, password: str) -> AppTest:
    at.switch_page("pages/login.py").run()
    at.text_input(key="login_username").set_value(username)
    at.text_input(key="login_password").set_value(password)
    at.button[0].click().run()
    return at


def texts(at: AppTest) -> str:
    """Everything an AppTest run shows as text (markdown, metrics, captions, tables)."""
    parts = [str(e.value) for e in at.markdown] + [str(e.value) for e in at.caption]
    parts += [str(e.value) for e in at.title] + [str(e.value) for e in at.subheader]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [str(e.value) for e in at.error] + [str(e.value) for e in at.warning]
    parts += [str(e.value) for e in at.info] + [str(e.value) for e in at.success]
    for df in at.dataframe:
        parts.append(df.value.to_csv())
    for sb in at.selectbox:
        parts += [str(o) for o in sb.options]
    return "\n".join(parts)


def test_training_data_is_public(app, demo_db):
    assert not app.exception
    assert "What this model was trained on" in texts(app)
    clips = pl.read_parquet(demo_db.data_dirs["2026-10"] / S.CLIPS.filename)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Clips"] == f"{clips[S.CLIP_ID].n_unique():,}"
    creators = pl.read_parquet(demo_db.data_dirs["2026-10"] / S.CREATORS.filename)
    hidden = creators.filter(pl.col(S.OPTED_OUT))
    named = set(creators.filter(~pl.col(S.OPTED_OUT))[S.DISPLAY_NAME])
    shown = texts(app)
    assert hidden.height
    assert not any(c in shown for c in hidden[S.CREATOR_ID])
    # Names shared with a creator who did not opt out may appear for that creator.
    assert not any(n in shown for n in set(hidden[S.DISPLAY_NAME]) - named)
    assert "opted out" in shown


def test_failed_login_does_not_say_which_part(app, demo_db):
    login(app, demo_db.creator_a, "wrong password")
    assert [e.value for e in app.error] == [FAILED_MESSAGE]
    login(app, "no-such-user", "whatever")
    assert [e.value for e in app.error] == [FAILED_MESSAGE]
