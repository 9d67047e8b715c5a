"""Claims in a real browser: a creator opens one on My share, an admin upholds it on the
Claims page (amount and funding), and the creator sees the outcome. Headless Chromium
drives ``residuals dashboard`` on a private copy of the posted ledger."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT, need
from tests.dashboard.serve import dashboard
from tests.dashboard.test_browser import CHROMIUM, _idle, _login, _open, _page, browser  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def claims_server(demo_db, tmp_path_factory):  # type: ignore[no-untyped-def]
    need(CHROMIUM.exists(), "Debian chromium (/usr/bin/chromium) is not installed")
    root = tmp_path_factory.mktemp("claims-browser")
    shutil.copy(demo_db.url.removeprefix("sqlite:///"), root / "ledger.db")
    url = f"sqlite:///{root / 'ledger.db'}"
    log = ROOT / ".pytest_cache" / "dashboard-claims-browser.log"
    with dashboard(url, "--headless", log=log if log.parent.is_dir() else None) as served:
        yield served, url


def test_creator_opens_a_claim_and_admin_upholds_it(claims_server, browser, demo_db) -> None:  # type: ignore[no-untyped-def]
    from residuals.workflows.claims import list_claims

    server, url = claims_server
    a = demo_db.creator_a
    ctx, page = _page(browser)
    try:
        _login(page, server, a, demo_db.logins[a][0])
        _open(page, server + "/my-share", "What is wrong?")
        page.get_by_text("This amount is wrong").click()
        _idle(page)
        page.get_by_label("Tell us more (required)").fill("The October amount is too low.")
        page.get_by_role("button", name="Open a claim about").click()
        page.get_by_text("Claim 1 is open").wait_for()
        _idle(page)
    finally:
        ctx.close()
    ctx, page = _page(browser)
    try:
        _login(page, server, "admin", demo_db.logins["admin"][0])
        _open(page, server + "/claims", "Claim 1 · wrong_amount · open")
        page.get_by_text("The October amount is too low.").first.wait_for()
        page.get_by_label("Adjustment amount (e.g. 12.34)").fill("3.50")
        page.get_by_text("platform", exact=True).click()
        page.get_by_role("button", name="Uphold claim 1").click()
        page.get_by_text("Claim 1 upheld.").wait_for()
        _idle(page)
    finally:
        ctx.close()
    rows = list_claims(url).row(0, named=True)
    assert (rows["state"], rows["amount_minor"], rows["funding"], rows["decided_by"]) == \
        ("upheld", 350, "platform", "admin")
    ctx, page = _page(browser)
    try:
        _login(page, server, a, demo_db.logins[a][0])
        _open(page, server + "/my-share", "Claims")
        # the grid renders its cells into the DOM (hidden): wait for the outcome there
        page.wait_for_function("(t) => document.body.innerHTML.includes(t)",
                               arg="upheld: $3.50, to be paid with the next batch")
    finally:
        ctx.close()
