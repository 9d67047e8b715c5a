"""End to end in a real browser: ``residuals dashboard`` driven by Debian's Chromium.

Starts the dashboard on 127.0.0.1 (a free port) against the ledger posted from
``data/samples``, logs in through the form, checks numbers against the ledger,
looks for another creator's data everywhere, moves the policy lab's cap
slider, and takes a screenshot of each page: under ``docs/screenshots/`` when
``RESIDUALS_SCREENSHOTS=1`` (to refresh the docs), else in a temporary
directory, so a test run leaves the checkout clean.
"""

from __future__ import annotations

import http.server
import os
import re
import tempfile
import threading
from pathlib import Path

import polars as pl
import pytest

from contract import schema as S
from tests.conftest import ROOT, need
from tests.dashboard.serve import dashboard

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("RESIDUALS_SCREENSHOTS") == "1"
         else Path(tempfile.gettempdir()) / "residuals-screenshots")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000
COOKIE = "residuals_session"


@pytest.fixture(scope="module")
def server(demo_db):
    need(CHROMIUM.exists(), "Debian chromium (/usr/bin/chromium) is not installed")
    log = ROOT / ".pytest_cache" / "dashboard-browser.log"
    with dashboard(demo_db.url, "--headless",
                   log=log if log.parent.is_dir() else None) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    need(CHROMIUM.exists(), "Debian chromium (/usr/bin/chromium) is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _page(browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 2200})
    page = ctx.new_page()
    page.set_default_timeout(WAIT_MS)
    return ctx, page


def _idle(page) -> None:
    """Wait until the app says its script has finished running (its own state)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def _open(page, url: str, text: str) -> None:
    """Load ``url`` and wait for ``text`` and for the script to finish."""
    page.goto(url)
    page.get_by_text(text).first.wait_for()
    _idle(page)


def _login(page, url: str, username: str, password: str) -> None:
    """Log in through the form and wait until the browser holds the session cookie."""
    _open(page, url + "/login", "Log in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("You are logged in as").wait_for()
    page.wait_for_function(f"() => document.cookie.includes('{COOKIE}=')")
    _idle(page)


def _metric_value(page, label: str):  # type: ignore[no-untyped-def]
    """The value element of the metric labelled ``label``."""
    box = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label)).first
    return box.locator('[data-testid="stMetricValue"]')


def _metric(page, label: str) -> str:
    return _metric_value(page, label).inner_text().strip()


def _all_text(page) -> str:
    """The visible text and the markup of the page (data grids render cells in the DOM)."""
    return page.locator("body").inner_text() + "\n" + page.content()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_creator_sees_own_numbers_and_nothing_of_another(server, browser, demo_db):
    from ledger.i18n import Tr
    from ledger.store import open_store, read_session
    from ledger.store.read import creator_clip_earnings, creator_statement

    a, b = demo_db.creator_a, demo_db.creator_b
    engine = open_store(demo_db.url)
    with read_session(engine) as s:
        mine = creator_statement(s, a)
        my_clips = creator_clip_earnings(s, a, mine[S.PERIOD][-1])
    engine.dispose()
    last = mine.tail(1).row(0, named=True)
    format_minor = Tr("en").money
    creators = pl.read_parquet(demo_db.data_dirs["2026-10"] / S.CREATORS.filename)
    name = dict(creators.select(S.CREATOR_ID, S.DISPLAY_NAME).iter_rows())
    clips = pl.read_parquet(demo_db.data_dirs["2026-10"] / S.CLIPS.filename,
                            columns=[S.CLIP_ID, S.CREATOR_ID])
    b_clips = clips.filter(pl.col(S.CREATOR_ID) == b)[S.CLIP_ID].to_list()

    ctx, page = _page(browser)
    try:
        _open(page, server, "What this model was trained on")
        _shot(page, "training-data.png")

        _login(page, server, a, demo_db.logins[a][0])
        _open(page, server + "/my-share", f"My share · {name[a]}")
        assert _metric(page, "Paid this period") == format_minor(last[S.PAID_MINOR],
                                                                 last[S.CURRENCY])
        assert _metric(page, "Earned this period") == format_minor(last[S.ALLOCATED_MINOR],
                                                                   last[S.CURRENCY])
        assert _metric(page, "Carried forward") == format_minor(last[S.CARRIED_OUT_MINOR],
                                                                last[S.CURRENCY])
        assert last[S.BATCH_HASH] in _all_text(page)
        _shot(page, "my-share.png")

        # The clip table is drawn after the script ends: wait for A's first clip in it.
        page.wait_for_function("(c) => document.body.innerHTML.includes(c)",
                               arg=my_clips[S.CLIP_ID][0])
        seen = [("my share", _all_text(page))]
        # Every page a creator can open, by its address (the login survives a reload) ...
        _open(page, server + "/training-data", "What this model was trained on")
        seen.append(("training data", _all_text(page)))
        # ... then B named in the address.
        for query in (f"creator_id={b}", f"creator={b}&user={b}&username={b}"):
            _open(page, f"{server}/my-share?{query}", f"My share · {name[a]}")
            seen.append((query, _all_text(page)))
        my_share = seen[0][1]
        assert my_clips[S.CLIP_ID][0] in my_share  # positive control: A's clips are shown
        for path, text in seen:
            assert b not in text, path
            assert not [c for c in b_clips if re.search(rf"\b{re.escape(c)}\b", text)], path
            if path != "training data":  # the public manifest names creators by design
                assert name[b] not in text, path
                assert a in text, path
    finally:
        ctx.close()


def test_creator_reads_my_share_in_spanish_and_downloads_the_pdf(server, browser, demo_db,
                                                                 tmp_path):
    """The Spanish page (chosen in the sidebar, kept by the address on reload), its
    money in the Spanish locale, and the PDF statement it offers, read back."""
    import io

    from pypdf import PdfReader

    from ledger.i18n import Tr
    from ledger.store import open_store, read_session
    from ledger.store.read import creator_clip_earnings, creator_statement

    a = demo_db.creator_a
    engine = open_store(demo_db.url)
    with read_session(engine) as s:
        mine = creator_statement(s, a)
        my_clips = creator_clip_earnings(s, a)
    engine.dispose()
    last = mine.tail(1).row(0, named=True)
    es = Tr("es")
    ctx, page = _page(browser)
    try:
        _login(page, server, a, demo_db.logins[a][0])
        _open(page, server + "/my-share", "My share · ")
        page.get_by_label("Language · Idioma").click()  # the sidebar's language box
        page.get_by_role("option", name="Español").click()
        page.get_by_text("Mi parte · ").first.wait_for()
        _idle(page)
        page.wait_for_url(re.compile(r"[?&]lang=es"))
        page.reload()  # the address keeps the choice
        page.get_by_text("Cómo se calculó tu parte").first.wait_for()
        _idle(page)
        assert _metric(page, "Ganado en este periodo") == es.money(
            last[S.ALLOCATED_MINOR], last[S.CURRENCY])
        text = _all_text(page)
        assert "Próxima fecha de pago" in text and "Los clips que lo ganaron" in text
        assert "Paid this period" not in text
        _shot(page, "my-share-es.png")
        with page.expect_download() as download:
            page.get_by_role("button", name="Descargar extracto (PDF)").click()
        saved = tmp_path / "statement.pdf"
        download.value.save_as(saved)
        assert download.value.suggested_filename.endswith("-es.pdf")
        reader = PdfReader(io.BytesIO(saved.read_bytes()))
        pdf = "\n".join(p.extract_text() for p in reader.pages)
        assert "Extracto de Residuals" in pdf and "Hashes de los lotes" in pdf
        for h in mine[S.BATCH_HASH].to_list():
            assert h in pdf
        assert my_clips[S.CLIP_ID][0] in pdf
    finally:
        ctx.close()


def test_stored_language_is_adopted_at_login_unless_the_address_names_one(
        server, browser, demo_db):
    """A creator whose stored choice is Spanish reads My share in Spanish once logged in,
    also on a page opened afresh (a new browser session holding the login's cookie);
    an address that says ``?lang=en`` keeps English."""
    from dashboard.auth import set_language
    from ledger.store import open_store, write_session

    a = demo_db.creator_a
    engine = open_store(demo_db.url)
    with write_session(engine) as s, s.begin():
        set_language(s, a, "es")
    engine.dispose()
    for query, heading in (("", "Mi parte · "), ("?lang=en", "My share · ")):
        ctx, page = _page(browser)
        try:
            _open(page, server + "/login", "Log in")  # (the login page speaks English)
            page.get_by_label("Username").fill(a)
            page.get_by_label("Password", exact=True).fill(demo_db.logins[a][0])
            page.get_by_role("button", name="Log in").click()
            page.wait_for_function(f"() => document.cookie.includes('{COOKIE}=')")
            _idle(page)
            _open(page, server + "/my-share" + query, heading)
            text = _all_text(page)
            other = "My share · " if heading.startswith("Mi") else "Mi parte · "
            assert other not in text, (login_query, heading)
        finally:
            ctx.close()


def test_economist_moves_the_cap_and_the_comparison_updates(server, browser, demo_db):
    ctx, page = _page(browser)
    try:
        _login(page, server, "economist", demo_db.logins["economist"][0])
        _open(page, server + "/policy-lab", "current vs edited")
        before = (_metric(page, "Largest payout (edited)"), _metric(page, "Gini (edited)"))
        assert page.get_by_text("Nobody's allocation changes").count() == 1
        slider = page.locator('[data-testid="stSlider"]').filter(
            has_text="Cap per creator").locator('input[type="range"]')
        assert slider.input_value() == "0"
        # Drag the thumb to the right, as a person does (pointer up commits the value).
        thumb = slider.locator("..")  # the visible thumb holds the range input
        track = page.locator('[data-testid="stSlider"]').filter(
            has_text="Cap per creator").locator('[data-testid="stSliderTickBar"]')
        t, w = thumb.bounding_box(), track.bounding_box()
        page.mouse.move(t["x"] + t["width"] / 2, t["y"] + t["height"] / 2)
        page.mouse.down()
        page.mouse.move(t["x"] + t["width"] / 2 + w["width"] * 0.1, t["y"] + t["height"] / 2,
                        steps=5)
        page.mouse.up()
        page.wait_for_function("(el) => Number(el.value) > 0", arg=slider.element_handle())
        # The app's own state: the edited metric changes once the rerun has drawn it.
        from playwright.sync_api import expect

        expect(_metric_value(page, "Largest payout (edited)")).not_to_have_text(
            before[0], timeout=WAIT_MS)
        page.get_by_text("Biggest winners and losers").wait_for()
        _idle(page)
        after = (_metric(page, "Largest payout (edited)"), _metric(page, "Gini (edited)"))
        assert after[0] != before[0] and after[1] != before[1]
        assert page.get_by_text("Nobody's allocation changes").count() == 0
        assert page.get_by_text("Biggest winners and losers").count() == 1
        _shot(page, "policy-lab.png")
    finally:
        ctx.close()


def test_admin_sees_batches(server, browser, demo_db):
    from ledger.store import open_store, read_session
    from ledger.store.read import batches

    engine = open_store(demo_db.url)
    with read_session(engine) as s:
        posted = batches(s)
    engine.dispose()
    ctx, page = _page(browser)
    try:
        _login(page, server, "admin", demo_db.logins["admin"][0])
        _open(page, server + "/batches", "Payout batches")
        page.get_by_text("ledger verify").first.wait_for()
        _idle(page)
        text = _all_text(page)
        assert "ledger verify" in text and "OK" in text
        assert _metric(page, "Creators paid") == f"{posted[S.CREATORS_PAID][-1]:,}"
        _shot(page, "batches.png")
    finally:
        ctx.close()


def test_pages_open_by_address_and_the_login_survives_refresh_and_restart(
        server, browser, demo_db):
    a = demo_db.creator_a
    creators = pl.read_parquet(demo_db.data_dirs["2026-10"] / S.CREATORS.filename)
    title = "My share · " + creators.filter(pl.col(S.CREATOR_ID) == a)[S.DISPLAY_NAME][0]
    ctx, page = _page(browser)
    try:
        _open(page, server + "/training-data", "What this model was trained on")
        _open(page, server + "/my-share", "Please log in to see this page")
        assert a not in _all_text(page)
        _login(page, server, a, demo_db.logins[a][0])
        _open(page, server + "/my-share", title)
        page.reload()
        page.get_by_text(title).wait_for()
        page.get_by_text(f"Logged in as {a}").wait_for()
        token = next(c["value"] for c in ctx.cookies() if c["name"] == COOKIE)
        # A restarted server (a new process on the same database) knows the login.
        with dashboard(demo_db.url, "--headless") as again:
            _open(page, again + "/my-share", title)
        # Log-out revokes the session on the server; the old token opens nothing.
        _open(page, server + "/logout", "Logged out")
        page.wait_for_function(f"() => !document.cookie.includes('{COOKIE}=')")
        _open(page, server + "/my-share", "Please log in to see this page")
        ctx.add_cookies([{"name": COOKIE, "value": token, "url": server}])
        _open(page, server + "/my-share", "Please log in to see this page")
        assert a not in _all_text(page)
    finally:
        ctx.close()


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        _Counter.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args) -> None:  # quiet
        pass


def test_user_supplied_names_are_plain_text(server, browser, demo_db):
    """A display name and a username written as Markdown image and link: shown as the
    characters they are, and the browser fetches nothing from the named address."""
    from dashboard.auth import add_user
    from dashboard.text import WORD_JOINER
    from ledger.store import models, open_store, write_session

    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{trap.server_address[1]}"
    name = f"![x]({host}/name.png) [click]({host}/link) <img src='{host}/html.png'>"
    username = f"![u]({host}/user.png)"
    engine = open_store(demo_db.url)
    with write_session(engine) as s, s.begin():
        s.add(models.Creator(creator_id="creator_markup", display_name=name))
        s.flush()
        add_user(s, username, "markup-pass", "creator", "creator_markup")
    engine.dispose()
    ctx, page = _page(browser)
    try:
        _login(page, server, username, "markup-pass")
        _open(page, server + "/my-share", "My share · ![x]")
        text = page.locator("body").inner_text().replace(WORD_JOINER, "")
        assert f"My share · {name}" in text  # the positive control: shown as text
        assert f"Logged in as {username}" in text
        assert page.locator(f"a[href^='{host}'], img[src^='{host}']").count() == 0
        assert _Counter.hits == []
    finally:
        ctx.close()
        trap.shutdown()


def test_economist_compares_several_policies_and_exports_a_named_one(
        server, browser, demo_db, tmp_path):
    """The shipped policies and an uploaded TOML side by side; the download is named."""
    shipped = sorted(p.stem for p in (ROOT / "policies").glob("*.toml"))
    upload = tmp_path / "upload.toml"
    upload.write_text((ROOT / "policies" / "default.toml").read_text()
                      .replace('name = "default"', 'name = "upload-test"')
                      .replace('min_payout = "10.00"', 'min_payout = "500.00"'))
    ctx, page = _page(browser)
    try:
        _login(page, server, "economist", demo_db.logins["economist"][0])
        _open(page, server + "/policy-lab", "Compare several policies")
        grid = page.locator('[data-testid="stDataFrame"]').last
        for name in shipped:
            page.get_by_text(f"shipped: {name}").first.wait_for(state="attached")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
            str(upload))
        page.get_by_text("uploaded: upload-test").first.wait_for(state="attached")
        _idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        text = _all_text(page)
        assert "Withheld" in text and "Carried in" in text
        assert grid.count() == 1
        name = page.get_by_label("Name of the edited policy")
        name.fill("my lab policy")
        name.press("Enter")
        page.get_by_text("edited: my lab policy").first.wait_for(state="attached")
        _idle(page)
        with page.expect_download() as info:
            page.get_by_role("button", name="Download edited policy (TOML)").click()
        download = info.value
        assert download.suggested_filename == "my-lab-policy.toml"
        saved = tmp_path / "saved.toml"
        download.save_as(saved)
        assert 'name = "my lab policy"' in saved.read_text()
    finally:
        ctx.close()
