"""End to end in a real browser: ``residuals dashboard`` driven by Debian's Chromium.

Starts the dashboard on 127.0.0.1 (a free port) against the ledger posted from
``data/samples``, logs in through the form, checks numbers against the ledger,
looks for another creator's data everywhere, moves the policy lab's cap
slider, and saves a screenshot of each page under ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from contract import schema as S
from tests.conftest import ROOT, need

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_db):
    need(CHROMIUM.exists(), "Debian chromium (/usr/bin/chromium) is not installed")
    port = _free_port()
    log = open(ROOT / ".pytest_cache" / f"dashboard-{port}.log", "w") \
        if (ROOT / ".pytest_cache").is_dir() else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "residuals", "dashboard", "--db", demo_db.url, "--port",
         str(port), "--headless"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the dashboard did not start")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: only the dashboard
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if log is not subprocess.DEVNULL:
            log.close()


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


def _settle(page) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=WAIT_MS)
    page.wait_for_timeout(800)


def _login(page, url: str, username: str, password: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text(f"Logged in as {username}").wait_for()
    _settle(page)


def _metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label)).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _all_text(page) -> str:
    """The visible text and the markup of the page (data grids render cells in the DOM)."""
    return page.locator("body").inner_text() + "\n" + page.content()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_creator_sees_own_numbers_and_nothing_of_another(server, browser, demo_db):
    from ledger.money import format_minor
    from ledger.store import open_store, read_session
    from ledger.store.read import creator_clip_earnings, creator_statement

    a, b = demo_db.creator_a, demo_db.creator_b
    engine = open_store(demo_db.url)
    with read_session(engine) as s:
        mine = creator_statement(s, a)
        my_clips = creator_clip_earnings(s, a, mine[S.PERIOD][-1])
    engine.dispose()
    last = mine.tail(1).row(0, named=True)
    creators = pl.read_parquet(demo_db.data_dirs["2026-10"] / S.CREATORS.filename)
    name = dict(creators.select(S.CREATOR_ID, S.DISPLAY_NAME).iter_rows())
    clips = pl.read_parquet(demo_db.data_dirs["2026-10"] / S.CLIPS.filename,
                            columns=[S.CLIP_ID, S.CREATOR_ID])
    b_clips = clips.filter(pl.col(S.CREATOR_ID) == b)[S.CLIP_ID].to_list()

    ctx, page = _page(browser)
    try:
        page.goto(server)
        page.get_by_text("What this model was trained on").wait_for()
        _settle(page)
        _shot(page, "training-data.png")

        _login(page, server, a, demo_db.logins[a][0])
        page.get_by_text(f"My share · {name[a]}").wait_for()
        _settle(page)
        assert _metric(page, "Paid this period") == format_minor(last[S.PAID_MINOR],
                                                                 last[S.CURRENCY])
        assert _metric(page, "Earned this period") == format_minor(last[S.ALLOCATED_MINOR],
                                                                   last[S.CURRENCY])
        assert _metric(page, "Carried forward") == format_minor(last[S.CARRIED_OUT_MINOR],
                                                                last[S.CURRENCY])
        assert last[S.BATCH_HASH] in _all_text(page)
        _shot(page, "my-share.png")

        seen = [("my share", _all_text(page))]
        # Every page a creator can open (through the app's own navigation: a reload
        # is a new session and logs out) ...
        page.get_by_role("link", name="Training data").click()
        page.get_by_text("What this model was trained on").wait_for()
        _settle(page)
        seen.append(("training data", _all_text(page)))
        page.get_by_role("link", name="My share").click()
        page.get_by_text(f"My share · {name[a]}").wait_for()
        _settle(page)
        # ... then B named in the address: query parameters reach the app on a rerun.
        for query in (f"creator_id={b}", f"creator={b}&user={b}&username={b}"):
            page.evaluate(f"history.replaceState(null, '', '/my-share?{query}')")
            page.locator("body").press("r")  # Streamlit's rerun shortcut
            _settle(page)
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


def test_economist_moves_the_cap_and_the_comparison_updates(server, browser, demo_db):
    ctx, page = _page(browser)
    try:
        _login(page, server, "economist", demo_db.logins["economist"][0])
        page.get_by_text("Policy lab").first.wait_for()
        page.get_by_text("current vs edited").wait_for()
        _settle(page)
        before = (_metric(page, "Largest payout (edited)"), _metric(page, "Gini (edited)"))
        assert page.get_by_text("Nobody's allocation changes").count() == 1
        slider = page.locator('[data-testid="stSlider"]').filter(
            has_text="Cap per creator").locator('input[type="range"]')
        assert slider.input_value() == "0"
        slider.focus()
        for _ in range(2):  # 0.0% -> 1.0% of the pool, one step (0.5%) per key
            page.keyboard.press("ArrowRight")
        assert slider.input_value() == "1"
        deadline = time.monotonic() + WAIT_MS / 1000
        while _metric(page, "Largest payout (edited)") == before[0]:
            assert time.monotonic() < deadline, "the comparison did not update"
            page.wait_for_timeout(250)
        _settle(page)
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
        page.get_by_text("Payout batches").wait_for()
        _settle(page)
        text = _all_text(page)
        assert "ledger verify" in text and "OK" in text
        assert _metric(page, "Creators paid") == f"{posted[S.CREATORS_PAID][-1]:,}"
        _shot(page, "batches.png")
    finally:
        ctx.close()
