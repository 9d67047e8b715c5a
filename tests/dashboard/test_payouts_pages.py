"""The Payouts page (AppTest) and the payouts on My share: who may open the page, an export
and a status report through the page, bad files, and hostile strings shown as text."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from contract import schema as S
from dashboard import config
from tests.dashboard.test_pages import APP, TIMEOUT, asks_to_log_in, login, texts

SCRIPT = "<script>alert(1)</script>"
HOSTILE_CODE = f"{SCRIPT} ![x](http://e.test/x.png) **bold**"
HOSTILE_CREATOR = "c<script>alert(2)</script>"
REPORT_HEADER = "payout_id,status,provider_reference,failure_code,amount_minor,currency,occurred_at"


@pytest.fixture
def payouts_db(demo_db, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A private copy of the posted ledger where creator B's profile is complete (B's
    payouts pending, A's held)."""
    from residuals.workflows.disbursement import set_creator_profile

    shutil.copy(demo_db.url.removeprefix("sqlite:///"), tmp_path / "ledger.db")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    set_creator_profile(url, demo_db.creator_b, payout_method="acct_b", country="ES",
                        tax_form="accepted")
    monkeypatch.setenv(config.DB_ENV, url)
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    return url


def as_user(demo_db, username: str, password: str | None = None) -> AppTest:  # type: ignore[no-untyped-def]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    return login(at, username, password or demo_db.logins[username][0])


def payouts_of(url: str, creator: str) -> pl.DataFrame:
    from residuals.workflows.disbursement import list_payouts

    return list_payouts(url).filter(pl.col(S.CREATOR_ID) == creator)


def test_only_an_admin_opens_the_payouts_page(payouts_db, demo_db) -> None:  # type: ignore[no-untyped-def]
    anonymous = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    anonymous.switch_page("views/payouts.py").run()
    assert asks_to_log_in(anonymous) and "Export" not in texts(anonymous)
    for user in ("economist", demo_db.creator_a):
        at = as_user(demo_db, user)
        at.switch_page("views/payouts.py").run()
        assert not at.exception
        assert "This page needs a login with the role admin." in texts(at)
        assert [s.key for s in at.selectbox] == ["residuals_language"] and not at.file_uploader
    admin = as_user(demo_db, "admin")
    admin.switch_page("views/payouts.py").run()
    assert not admin.exception
    shown = texts(admin)
    assert "Payouts" in shown and "Export to a payment provider" in shown
    assert "Import a status report" in shown


@pytest.mark.parametrize("role_user", ["economist", "creator"])
def test_the_payout_data_layer_refuses_anyone_but_an_admin(payouts_db, demo_db,  # type: ignore[no-untyped-def]
                                                           role_user) -> None:
    import streamlit as st

    from dashboard.data import payouts, session

    username = demo_db.creator_a if role_user == "creator" else role_user
    at = as_user(demo_db, username)
    st.session_state[session.TOKEN_KEY] = at.session_state[session.TOKEN_KEY]
    try:
        for call in (payouts.summary, lambda: payouts.batch_payouts("x"),
                     lambda: payouts.export("2026-10", "csv"),
                     lambda: payouts.import_report("r.csv", b"")):
            with pytest.raises(session.NotAllowed):
                call()
    finally:
        del st.session_state[session.TOKEN_KEY]
    assert payouts_of(payouts_db, demo_db.creator_b)["state"].to_list() == ["pending"] * 2


def _export(admin: AppTest, fmt: str) -> None:
    admin.switch_page("views/payouts.py").run()
    admin.radio(key="payouts_export_format").set_value(fmt)
    admin.button[0].click().run()  # the export form's submit button
    assert not admin.exception


def test_admin_exports_then_imports_a_report_and_the_creator_sees_the_failure(  # type: ignore[no-untyped-def]
        payouts_db, demo_db, tmp_path) -> None:
    b = demo_db.creator_b
    admin = as_user(demo_db, "admin")
    _export(admin, "csv")
    shown = texts(admin)
    assert "they are now submitted" in shown
    made = admin.session_state["payouts_export_file"]
    exported = pl.read_csv(made.data)
    mine = payouts_of(payouts_db, b)
    last = mine.filter(pl.col("state") == "submitted")
    assert last.height == 1 and last["payout_id"][0] in exported["payout_id"].to_list()
    pid, amount = last["payout_id"][0], int(last[S.AMOUNT_MINOR][0])
    report = "\n".join([
        REPORT_HEADER,
        f"{pid},failed,ref-1,\"{HOSTILE_CODE}\",{amount},USD,2026-11-16T10:00:00Z",
        f"{pid},failed,ref-1,\"{HOSTILE_CODE}\",{amount},USD,2026-11-16T10:00:00Z",
        f"po_{SCRIPT},paid,ref-2,,{amount},USD,2026-11-16",
        f"{pid},paid,ref-3,,{amount + 1},USD,2026-11-16",
    ]).encode()
    admin.file_uploader(key="payouts_report").set_value(("report.csv", report, "text/csv"))
    admin.button[1].click().run()  # the import form's submit button
    assert not admin.exception
    metrics = {m.label: m.value for m in admin.metric}
    assert metrics["Matched (applied)"] == "1" and metrics["Duplicate"] == "1"
    assert metrics["Unknown payout id"] == "1"
    assert metrics["Amount or currency mismatch"] == "1"
    assert f"po_{SCRIPT}" in texts(admin)  # the hostile id, shown as text in the table
    assert payouts_of(payouts_db, b).filter(pl.col("payout_id") == pid)["state"][0] == "failed"

    creator = as_user(demo_db, b)
    creator.switch_page("views/my_share.py").run()
    assert not creator.exception
    warning = next(w.value for w in creator.warning if "did not reach you" in w.value)
    assert "\\<script\\>" in warning and "\\!\\[x\\]" in warning  # escaped: text, not markup
    assert HOSTILE_CODE in texts(creator)
    assert all(SCRIPT not in str(m.value) for m in creator.markdown)


def test_past_exports_are_listed_and_their_files_come_again(payouts_db, demo_db,  # type: ignore[no-untyped-def]
                                                             tmp_path) -> None:
    """An export made on the page and one made by the command line are both listed; each
    one's button renders its file again, byte for byte; an unknown one is one line."""
    import hashlib

    from residuals.workflows.disbursement import export_payouts, set_creator_profile

    admin = as_user(demo_db, "admin")
    admin.switch_page("views/payouts.py").run()
    assert "Nothing has been exported yet." in texts(admin)
    _export(admin, "stripe")
    files = {"page": admin.session_state["payouts_export_file"].data}
    set_creator_profile(payouts_db, demo_db.creator_a, payout_method="acct_a",
                        tax_form="accepted")  # A's payouts become pending: a second export
    export_payouts(payouts_db, "2026-10", "paypal", tmp_path / "cli.csv")
    files["cli"] = (tmp_path / "cli.csv").read_bytes()
    admin.switch_page("views/payouts.py").run()
    assert not admin.exception
    lines = [t.value for t in admin.text]
    names = {"page": "payouts-2026-10-stripe.jsonl", "cli": "payouts-2026-10-paypal.csv"}
    for how, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        assert sum(f"sha256 {sha[:16]}" in line for line in lines) == 1
        admin.button(key=f"payouts_again_{sha}").click().run()
        assert not admin.exception and "payouts_again_error" not in admin.session_state
        again = admin.session_state["payouts_again_files"][sha]
        assert again.data == data and again.file_name == names[how]
    assert "Past exports" in texts(admin)


@pytest.mark.parametrize(("data", "error"), [
    (b"\x00\xff\xfe binary \x00", "report.csv"),
    (b"payout_id,status\npo_1,paid\n", "report.csv, line 1, column provider_reference"),
    ((REPORT_HEADER + "\npo_1,lost,,,100,USD,2026-11-16\n").encode(),
     "report.csv, line 2, column status"),
])
def test_a_bad_report_is_one_line_and_applies_nothing(payouts_db, demo_db, data, error) -> None:  # type: ignore[no-untyped-def]
    admin = as_user(demo_db, "admin")
    admin.switch_page("views/payouts.py").run()
    admin.file_uploader(key="payouts_report").set_value(("report.csv", data, "text/csv"))
    admin.button[1].click().run()
    assert not admin.exception
    errors = [e.value for e in admin.error]
    assert len(errors) == 1 and "\n" not in errors[0] and "Traceback" not in errors[0]
    assert texts(admin).count(error) == 1, errors
    assert "residuals-report-" not in errors[0]  # the server's temporary path stays hidden
    assert "Matched (applied)" not in texts(admin)


def test_a_hostile_creator_id_is_text_on_my_share_and_the_payouts_page(payouts_db,  # type: ignore[no-untyped-def]
                                                                       demo_db) -> None:
    """A creator whose id carries markup and a script, with a held payout: their page and
    the admin's batch table show the id as the characters it is."""
    from sqlalchemy import text

    from dashboard.auth import add_user
    from ledger.store import models, open_store, write_session
    from ledger.store.payout_states import payout_id
    from ledger.store.read import batches

    engine = open_store(payouts_db)
    with write_session(engine) as s, s.begin():
        batch = batches(s).tail(1).row(0, named=True)
        s.add(models.Creator(creator_id=HOSTILE_CREATOR, display_name=HOSTILE_CREATOR))
        s.flush()
        add_user(s, "hostile", "hostile-pass", "creator", HOSTILE_CREATOR)
        pid = payout_id(batch[S.BATCH_ID], HOSTILE_CREATOR)
        s.execute(text("INSERT INTO payouts (payout_id, batch_id, creator_id, amount_minor, "
                       "currency) VALUES (:p, :b, :c, 1234, 'USD')"),
                  {"p": pid, "b": batch[S.BATCH_ID], "c": HOSTILE_CREATOR})
        s.execute(text("INSERT INTO payout_events (payout_id, seq, state, reason, source) "
                       "VALUES (:p, 1, 'held', 'no_payout_method', 'batch')"), {"p": pid})
    engine.dispose()
    creator = as_user(demo_db, "hostile", "hostile-pass")
    creator.switch_page("views/my_share.py").run()
    assert not creator.exception
    assert HOSTILE_CREATOR in texts(creator)  # the caption names the id, as text
    assert all(SCRIPT not in str(m.value) for m in [*creator.markdown, *creator.caption])
    admin = as_user(demo_db, "admin")
    admin.switch_page("views/payouts.py").run()
    assert not admin.exception
    assert HOSTILE_CREATOR in admin.dataframe[-1].value[S.CREATOR_ID].to_list()
    assert all(SCRIPT not in str(m.value) for m in admin.markdown)


def test_the_language_a_creator_picks_is_used_at_the_next_login(payouts_db, demo_db) -> None:  # type: ignore[no-untyped-def]
    """Picked in the sidebar, stored with the login (and only that login), adopted by a
    new browser session's login."""
    from dashboard.language import KEY

    a = demo_db.creator_a
    at = as_user(demo_db, a)
    at.switch_page("views/my_share.py").run()
    assert "Your payouts" in texts(at)
    at.selectbox(key=KEY).set_value("es").run()
    assert not at.exception and "Tus pagos" in texts(at)

    again = as_user(demo_db, a)  # a new session: nothing in its state, no address
    again.switch_page("views/my_share.py").run()
    assert not again.exception
    shown = texts(again)
    assert "Tus pagos" in shown and "retenido: sin método de pago" in shown
    assert "Your payouts" not in shown

    from dashboard.models import User
    from ledger.store import open_store, read_session

    engine = open_store(payouts_db)
    with read_session(engine) as s:
        stored = dict(s.query(User.username, User.language).all())
    engine.dispose()
    assert stored[a] == "es" and stored[demo_db.creator_b] is None and stored["admin"] is None
    other = as_user(demo_db, demo_db.creator_b)  # another creator's choice is their own
    other.switch_page("views/my_share.py").run()
    assert "Your payouts" in texts(other)


def test_state_summary_equals_a_plain_count(payouts_db, demo_db) -> None:  # type: ignore[no-untyped-def]
    """The page's counts and sums per batch and state, against a loop over the payouts."""
    from collections import Counter

    from dashboard.data.payouts import COUNT, state_summary
    from ledger.store import open_store, read_session
    from ledger.store.payout_states import current_states
    from ledger.store.read import batches

    engine = open_store(payouts_db)
    with read_session(engine) as s:
        states, chain = current_states(s), batches(s)
    engine.dispose()
    got = state_summary(states, chain)
    counts: Counter = Counter()
    sums: Counter = Counter()
    for r in states.iter_rows(named=True):  # the slow, obviously correct count
        counts[(r[S.BATCH_ID], r["state"])] += 1
        sums[(r[S.BATCH_ID], r["state"])] += r[S.AMOUNT_MINOR]
    assert {(r[S.BATCH_ID], r["state"]): (r[COUNT], r[S.AMOUNT_MINOR])
            for r in got.iter_rows(named=True)} == {k: (counts[k], sums[k]) for k in counts}
    assert set(got["state"]) == {"held", "pending"} and got[S.SEQ].is_sorted()
