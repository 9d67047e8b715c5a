"""Every page under Streamlit's AppTest, against a ledger posted from the sample data."""

from __future__ import annotations

import re

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from contract import schema as S
from dashboard import config
from dashboard.auth import FAILED_MESSAGE
from ledger.store.posting import MANIFEST_CONTEXT, MANIFEST_DATA_DIR

APP = str(config.APP_PATH)
TIMEOUT = 60


@pytest.fixture
def app(demo_db, monkeypatch):
    monkeypatch.setenv(config.DB_ENV, demo_db.url)
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    return at.run()


def login(at: AppTest, username: str, password: str) -> AppTest:
    at.switch_page("views/login.py").run()
    at.text_input(key="login_username").set_value(username)
    at.text_input(key="login_password").set_value(password)
    at.button[0].click().run()
    return at


def rendered(markdown: str) -> str:
    """The text a Markdown source shows once its backslash escapes are resolved."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


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
    return rendered("\n".join(parts))


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


def test_training_data_shows_the_chain_head_and_no_server_path(app, demo_db):
    from ledger.store import open_store, read_session
    from ledger.store.read import batches

    with read_session(open_store(demo_db.url)) as session:
        newest = batches(session).tail(1).row(0, named=True)
    shown = texts(app)
    assert newest[S.BATCH_HASH] in shown and f"period {newest[S.PERIOD]}" in shown
    for path in (*demo_db.data_dirs.values(), demo_db.root):
        assert str(path) not in shown and str(path.resolve()) not in shown


def test_failed_login_does_not_say_which_part(app, demo_db):
    login(app, demo_db.creator_a, "wrong password")
    assert [e.value for e in app.error] == [FAILED_MESSAGE]
    login(app, "no-such-user", "whatever")
    assert [e.value for e in app.error] == [FAILED_MESSAGE]


HOME = {"creator": "views/my_share.py", "admin": "views/batches.py",
        "economist": "views/policy_lab.py"}


def _as(app, demo_db, username):
    """Log in through the form, then open the user's home page."""
    password, role = demo_db.logins[username]
    login(app, username, password)
    assert not app.error, [e.value for e in app.error]
    app.switch_page(HOME[role]).run()
    assert not app.exception, app.exception
    return app


def test_my_share_shows_my_numbers(app, demo_db):
    from ledger.i18n import Tr
    from ledger.store import open_store, read_session
    from ledger.store.read import creator_statement

    _as(app, demo_db, demo_db.creator_a)
    assert not app.exception
    engine = open_store(demo_db.url)
    with read_session(engine) as session:
        mine = creator_statement(session, demo_db.creator_a)
    last = mine.tail(1).row(0, named=True)
    format_minor = Tr("en").money  # English: Babel's en_US money from minor units
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Paid this period"] == format_minor(last[S.PAID_MINOR], last[S.CURRENCY])
    assert metrics["Earned this period"] == format_minor(last[S.ALLOCATED_MINOR],
                                                         last[S.CURRENCY])
    shown = texts(app)
    assert last[S.BATCH_HASH] in shown
    assert len(app.get("download_button")) >= 1
    # Every period of the statement, picked in the period box.
    for row in mine.iter_rows(named=True):
        app.selectbox(key="my_share_period").set_value(row[S.PERIOD]).run()
        assert not app.exception
        metrics = {m.label: m.value for m in app.metric}
        assert metrics["Earned this period"] == format_minor(row[S.ALLOCATED_MINOR],
                                                             row[S.CURRENCY])
        assert metrics["Carried forward"] == format_minor(row[S.CARRIED_OUT_MINOR],
                                                          row[S.CURRENCY])
        assert row[S.BATCH_HASH] in texts(app)


def test_my_share_in_spanish_explains_when_and_why(app, demo_db):
    """The language chosen in the sidebar: every section in Spanish, money and dates by
    the Spanish locale, the policy in words, the minimum payout and the next payout date."""
    import datetime as dt

    from dashboard.language import KEY
    from ledger.i18n import Tr
    from ledger.policy import load_policy
    from ledger.store import open_store, read_session
    from ledger.store.read import creator_profile, creator_statement

    _as(app, demo_db, demo_db.creator_a)
    app.selectbox(key=KEY).set_value("es").run()
    assert not app.exception, app.exception
    engine = open_store(demo_db.url)
    with read_session(engine) as session:
        last = creator_statement(session, demo_db.creator_a).tail(1).row(0, named=True)
        _name, balance, _cur = creator_profile(session, demo_db.creator_a)
    engine.dispose()
    es, cur = Tr("es"), last[S.CURRENCY]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Ganado en este periodo"] == es.money(last[S.ALLOCATED_MINOR], cur)
    assert metrics["Pagado en este periodo"] == es.money(last[S.PAID_MINOR], cur)
    shown = texts(app)
    assert "Mi parte · " in shown and "Cómo se calculó tu parte" in shown
    assert "Los clips que lo ganaron" in shown
    words = ("se parece mucho", "se parece poco", "sin parecido claro")
    assert any(w in shown for w in words), shown  # the resemblance column, in Spanish
    policy = load_policy(config.APP_PATH.parents[1] / "policies" / "default.toml")
    day = policy.schedule.next_payout(dt.datetime.now(dt.UTC).date())
    assert f"Próxima fecha de pago: {es.date(day)}" in shown.replace("*", "")
    minimum = policy.min_payout_in(cur)
    bars = [p.text for p in app.get("progress")]  # the way to the minimum payout
    assert any(f"{es.amount(balance, cur)} de {es.amount(minimum, cur)} {cur}" in str(b)
               for b in bars), bars
    assert "70 % atribución" in shown and "30 % corpus" in shown
    assert "Paid this period" not in shown and "When you are paid" not in shown
    labels = [b.proto.label for b in app.get("download_button")]
    assert "Descargar extracto (PDF)" in labels


def test_creator_sees_nothing_of_another_creator(app, demo_db):
    """Log in as A, visit every page A can reach, and look for B everywhere."""
    import polars as pl

    _as(app, demo_db, demo_db.creator_a)
    b = demo_db.creator_b
    creators = pl.read_parquet(demo_db.data_dirs["2026-10"] / S.CREATORS.filename)
    b_name = creators.filter(pl.col(S.CREATOR_ID) == b)[S.DISPLAY_NAME][0]
    clips = pl.read_parquet(demo_db.data_dirs["2026-10"] / S.CLIPS.filename,
                            columns=[S.CLIP_ID, S.CREATOR_ID])
    b_clips = set(clips.filter(pl.col(S.CREATOR_ID) == b)[S.CLIP_ID])
    # Trying: a query parameter and a tampered session value naming B.
    app.query_params["creator_id"] = b
    app.session_state["creator_id"] = b
    for page in ("views/my_share.py",):
        app.switch_page(page).run()
        assert not app.exception
        shown = texts(app)
        assert demo_db.creator_a in shown
        assert b not in shown and b_name not in shown
        assert not any(c in shown for c in b_clips)


def asks_to_log_in(at: AppTest) -> bool:
    """The page refused and asked for a login, showing no number."""
    return (any("Please log in" in i.value for i in at.info) and not at.metric
            and not at.dataframe)


def test_forged_login_token_is_not_a_login(app, demo_db):
    from dashboard.data.session import TOKEN_KEY

    app.session_state[TOKEN_KEY] = "forged-token"
    app.switch_page("views/training_data.py").run()
    assert not app.exception
    assert app.session_state[TOKEN_KEY] == "forged-token"
    # Every page opens by its URL, but a forged token logs nobody in: the page asks to log in.
    app.switch_page("views/my_share.py").run()
    assert not app.exception and asks_to_log_in(app)
    assert demo_db.creator_a not in texts(app)


def session_token(demo_db, username: str) -> str:
    """A live login session of ``username``, opened on the server as a login would."""
    from dashboard import auth
    from ledger.store import open_store

    engine = open_store(demo_db.url)
    with auth.login_session(engine) as s, s.begin():
        token = auth.open_login_session(s, username)
    engine.dispose()
    return token


def test_creator_pages_refuse_other_roles(app, demo_db):
    """Hidden from an economist's menu, and the page itself refuses when opened anyway."""
    from dashboard.data import session

    _as(app, demo_db, "economist")
    app.switch_page("views/my_share.py").run()
    assert not app.exception
    assert any("needs a login with the role creator" in e.value for e in app.error)
    assert not app.metric
    page = AppTest.from_file(str(config.APP_PATH.parent / "views" / "my_share.py"),
                             default_timeout=TIMEOUT)
    page.session_state[session.TOKEN_KEY] = session_token(demo_db, "economist")
    page.run()
    assert not page.exception
    assert any("needs a login with the role creator" in e.value for e in page.error)
    assert not page.metric


def test_batches_page(app, demo_db):
    from ledger.store import open_store, read_session
    from ledger.store.read import batches

    _as(app, demo_db, "admin")
    assert not app.exception
    with read_session(open_store(demo_db.url)) as session:
        posted = batches(session)
    shown = texts(app)
    assert all(h in shown for h in posted[S.BATCH_HASH])
    assert any("ledger verify`: OK" in s.value for s in app.success)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Creators paid"] == f"{posted[S.CREATORS_PAID][-1]:,}"
    assert "Gini of allocations" in metrics
    assert app.get("download_button")


def test_policy_lab_current_policy_reproduces_the_posted_batch(app, demo_db):
    """Re-allocating a period under its own policy gives the posted statement, line for line."""
    from sqlalchemy import select

    from dashboard.data import policy_lab
    from ledger.store import models, open_store, read_session
    from ledger.store.read import batches

    _as(app, demo_db, "economist")
    assert not app.exception
    assert app.metric, texts(app)
    with read_session(open_store(demo_db.url)) as session:
        last = batches(session).tail(1).row(0, named=True)
        posted = dict(session.execute(
            select(models.Statement.creator_id, models.Statement.allocated_minor)
            .where(models.Statement.batch_id == last[S.BATCH_ID])).all())
        text = session.get(models.Batch, last[S.BATCH_ID]).manifest["policy"]["text"]
    period = policy_lab._lab_period.at(demo_db.url, last[S.BATCH_ID],
                                       str(demo_db.data_dirs[last[S.PERIOD]].resolve()))
    again = policy_lab.reallocate(period, text)
    assert dict(again.frame.select(S.CREATOR_ID, S.ALLOCATED_MINOR).iter_rows()) == posted
    # Unchanged knobs: nobody moves.
    assert any("Nobody's allocation changes" in i.value for i in app.info)


def test_policy_lab_cap_changes_the_comparison(app, demo_db):
    _as(app, demo_db, "economist")
    before = {m.label: m.value for m in app.metric}
    cap = next(s for s in app.slider if s.key.startswith("lab_cap_"))
    cap.set_value(1.0).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    after = {m.label: m.value for m in app.metric}
    assert after["Largest payout (edited)"] != before["Largest payout (edited)"]
    assert after["Gini (edited)"] != before["Gini (edited)"]
    assert app.dataframe  # winners and losers
    toml = next(t for t in app.text_area if t.key.startswith("lab_raw_"))
    assert "cap_share = 0.01" in toml.value


def test_policy_lab_bad_toml_is_one_clear_error(app, demo_db):
    _as(app, demo_db, "economist")
    raw = next(t for t in app.text_area if t.key.startswith("lab_raw_"))
    raw.set_value(raw.value.replace("[components]", "[components]\nbogus = 0.1")).run()
    assert not app.exception
    errors = [rendered(e.value) for e in app.error]
    assert len(errors) == 1 and "components.bogus" in errors[0]


def test_statement_downloads_hold_only_my_rows(demo_db):
    from dashboard.data import creator

    html = creator._statement_html.at(demo_db.url, demo_db.creator_a)
    assert demo_db.creator_a in html and demo_db.creator_b not in html
    b_clips = creator._clip_earnings.at(demo_db.url, demo_db.creator_b, "2026-10")[S.CLIP_ID]
    assert b_clips.len() and not any(c in html for c in b_clips)


def _script_without_login():
    import streamlit as st

    from dashboard.data import creator, session, staff

    for name, call in (("statement", creator.my_statement), ("profile", creator.my_profile),
                       ("batches", staff.batch_overview)):
        try:
            call()
        except session.NotAllowed as exc:
            st.text(f"{name}: refused ({exc})")
        else:
            st.text(f"{name}: ALLOWED")


@pytest.mark.parametrize("role_user", [None, "economist", "creator"])
def test_data_layer_refuses_without_the_right_login(demo_db, monkeypatch, role_user):
    """Creator rows need a creator login; whole batches need staff, whatever a page does."""
    monkeypatch.setenv(config.DB_ENV, demo_db.url)
    at = AppTest.from_function(_script_without_login, default_timeout=TIMEOUT)
    if role_user is not None:
        from dashboard.data import session

        username = demo_db.creator_a if role_user == "creator" else role_user
        at.session_state[session.TOKEN_KEY] = session_token(demo_db, username)
    at.run()
    out = {t.value.split(":")[0]: t.value for t in at.text}
    expect_allowed = {None: set(), "economist": {"batches"}, "creator": {"statement", "profile"}}
    for name, line in out.items():
        assert ("ALLOWED" in line) == (name in expect_allowed[role_user]), line


def _script_payout_csv(batch_id: str, expected_file: str) -> None:
    from pathlib import Path

    import streamlit as st

    from dashboard.data import staff

    same = staff.payout_csv(batch_id) == Path(expected_file).read_bytes()
    st.text("same" if same else "different")


def test_payout_download_is_the_file_batch_run_wrote(demo_db, monkeypatch):
    from dashboard.data import session
    from ledger.store import open_store, read_session
    from ledger.store.read import batches

    monkeypatch.setenv(config.DB_ENV, demo_db.url)
    with read_session(open_store(demo_db.url)) as s:
        posted = batches(s)
    token = session_token(demo_db, "admin")
    for row in posted.iter_rows(named=True):
        written = demo_db.root / f"payouts-{row[S.PERIOD]}.csv"
        assert written.is_file()
        at = AppTest.from_function(_script_payout_csv, args=(row[S.BATCH_ID], str(written)),
                                   default_timeout=TIMEOUT)
        at.session_state[session.TOKEN_KEY] = token
        at.run()
        assert not at.exception
        assert [t.value for t in at.text] == ["same"]


def test_verify_recomputes_batches_from_their_inputs(demo_db, tmp_path):
    """Recomputation reproduces each posted batch; changed inputs are a note, not a pass."""
    import shutil

    from sqlalchemy import select

    from dashboard.data.staff import recompute_batch
    from ledger.store import models, open_store, read_session
    from ledger.store.verify import verify

    engine = open_store(demo_db.url)
    with read_session(engine) as session:
        report = verify(session, recompute=recompute_batch)
        assert report.ok and report.counts["batches recomputed"] == 2, report
        batch = session.execute(select(models.Batch).order_by(models.Batch.seq)).scalars().first()
        man = dict(batch.manifest)
    changed = tmp_path / "changed"
    shutil.copytree(demo_db.data_dirs[man[S.PERIOD]], changed)
    accounts = pl.read_parquet(changed / S.ACCOUNTS.filename)
    accounts.with_columns(pl.col(S.REVENUE_MINOR) + 1).write_parquet(changed / S.ACCOUNTS.filename)
    man[MANIFEST_CONTEXT] = {MANIFEST_DATA_DIR: str(changed)}
    empty = pl.DataFrame(schema={S.CREATOR_ID: pl.String, S.CARRIED_MINOR: pl.Int64})
    assert "differ" in recompute_batch(man, empty)
    man[MANIFEST_CONTEXT] = {MANIFEST_DATA_DIR: str(tmp_path / "gone")}
    assert "not present" in recompute_batch(man, empty)


def test_batches_page_reports_recomputation(app, demo_db):
    _as(app, demo_db, "admin")
    ok = [s.value for s in app.success]
    assert ok and "2 batches recomputed" in ok[0]
    app.toggle(key="batches_recompute").set_value(False).run()
    assert not app.exception
    assert "batches recomputed" not in app.success[0].value


def _live(demo_db, token: str) -> bool:
    from dashboard import auth
    from ledger.store import open_store

    engine = open_store(demo_db.url)
    with auth.login_reader(engine) as s:
        alive = auth.session_user(s, token) is not None
    engine.dispose()
    return alive


def test_logout_revokes_the_login_on_the_server(app, demo_db):
    from dashboard.data import session

    _as(app, demo_db, demo_db.creator_a)
    token = app.session_state[session.TOKEN_KEY]
    assert _live(demo_db, token)
    app.switch_page("views/logout.py").run()
    assert not app.exception
    assert not _live(demo_db, token)
    assert session.TOKEN_KEY not in app.session_state
    app.switch_page("views/my_share.py").run()
    assert asks_to_log_in(app)
    # Reusing the old token does not bring the login back.
    app.session_state[session.TOKEN_KEY] = token
    app.switch_page("views/my_share.py").run()
    assert asks_to_log_in(app)
