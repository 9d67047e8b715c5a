"""Payouts in a real browser (headless Chromium driving ``residuals dashboard`` on a private
copy of the posted ledger, one server for the module): the creator's next payout date,
held payout, PDF statement and claim; the admin's export, status report reconciliation and
claim decision; My share in Spanish, chosen by the address."""

from __future__ import annotations

import re
import shutil

import polars as pl
import pytest

from contract import schema as S
from tests.conftest import ROOT, need
from tests.dashboard.serve import dashboard
from tests.dashboard.test_browser import (  # noqa: F401
    CHROMIUM,
    _all_text,
    _idle,
    _login,
    _metric,
    _open,
    _page,
    browser,
)

pytestmark = pytest.mark.browser
REPORT_HEADER = "payout_id,status,provider_reference,failure_code,amount_minor,currency,occurred_at"


@pytest.fixture(scope="module")
def payouts_server(demo_db, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The server and its ledger, where creator B's payout profile is complete (B's
    payouts pending) and creator A's is empty (A's held)."""
    from residuals.workflows.disbursement import set_creator_profile

    need(CHROMIUM.exists(), "Debian chromium (/usr/bin/chromium) is not installed")
    root = tmp_path_factory.mktemp("payouts-browser")
    shutil.copy(demo_db.url.removeprefix("sqlite:///"), root / "ledger.db")
    url = f"sqlite:///{root / 'ledger.db'}"
    set_creator_profile(url, demo_db.creator_b, payout_method="acct_b", country="ES",
                        tax_form="accepted")
    log = ROOT / ".pytest_cache" / "dashboard-payouts-browser.log"
    with dashboard(url, "--headless", log=log if log.parent.is_dir() else None) as served:
        yield served, url


def test_creator_sees_when_and_why_downloads_the_pdf_and_opens_a_claim(  # type: ignore[no-untyped-def]
        payouts_server, browser, demo_db) -> None:
    from residuals.workflows.claims import list_claims

    server, url = payouts_server
    a = demo_db.creator_a
    ctx, page = _page(browser)
    try:
        _login(page, server, a, demo_db.logins[a][0])
        _open(page, server + "/my-share", "Your payouts")
        for words in ("Next payout date", "is held:", "Add a payout method", "What is wrong?"):
            page.get_by_text(words).first.wait_for()  # drawn once the script has run
        _idle(page)
        text = _all_text(page)
        assert re.search(r"Next payout date: \w+ \d{1,2}, \d{4}\.", page.locator("body")
                         .inner_text()), "no next payout date"
        assert re.search(r"Your payout of \$[\d,.]+ for 2026-10 is held: no payout method, "
                         r"tax form missing\.", text)
        assert "Payout profile" in text and "Add a payout method" in text
        with page.expect_download() as download:
            page.get_by_role("button", name="Download statement (PDF)").click()
        pdf = download.value.path().read_bytes()
        assert pdf.startswith(b"%PDF-") and download.value.suggested_filename.endswith(".pdf")
        page.get_by_text("This amount is wrong").click()
        _idle(page)
        page.get_by_label("Tell us more (required)").fill("The held payout is too low.")
        page.get_by_role("button", name="Open a claim about").click()
        page.get_by_text(re.compile(r"Claim \d+ is open")).wait_for()
        _idle(page)
    finally:
        ctx.close()
    mine = list_claims(url, creator_id=a)
    assert mine.height == 1 and mine["text"][0] == "The held payout is too low."


def test_admin_exports_imports_a_report_and_resolves_a_claim(  # type: ignore[no-untyped-def]
        payouts_server, browser, demo_db, tmp_path) -> None:
    from residuals.workflows.claims import NewClaim, list_claims, open_claim
    from residuals.workflows.disbursement import list_payouts

    server, url = payouts_server
    b = demo_db.creator_b
    claim = open_claim(url, NewClaim(b, "wrong_amount", "2026-10", "test", None, None,
                                     "Please check October."))
    ctx, page = _page(browser)
    try:
        _login(page, server, "admin", demo_db.logins["admin"][0])
        _open(page, server + "/payouts", "Export to a payment provider")
        page.get_by_role("button", name="Export pending payouts (marks them submitted)").click()
        page.get_by_text("they are now submitted").wait_for()
        _idle(page)
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile(r"^Download payouts-")).click()
        exported = pl.read_csv(download.value.path())
        submitted = list_payouts(url, state="submitted")
        assert sorted(exported["payout_id"]) == sorted(submitted["payout_id"])
        assert b in submitted[S.CREATOR_ID].to_list()
        first = submitted.row(0, named=True)
        report = tmp_path / "provider-report.csv"
        report.write_text("\n".join([
            REPORT_HEADER,
            f"{first['payout_id']},paid,tr_1,,{first[S.AMOUNT_MINOR]},USD,2026-11-16T09:00:00Z",
            f"{first['payout_id']},paid,tr_1,,{first[S.AMOUNT_MINOR]},USD,2026-11-16T09:00:00Z",
            "po_000000000000000000000000,paid,tr_2,,100,USD,2026-11-16",
            f"{first['payout_id']},failed,tr_1,late,{first[S.AMOUNT_MINOR]},USD,2026-11-17",
        ]) + "\n")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
            str(report))
        page.get_by_text("provider-report.csv").first.wait_for()
        page.get_by_role("button", name="Import report").click()
        page.get_by_text("Reconciliation of provider-report.csv").wait_for()
        _idle(page)
        assert _metric(page, "Matched (applied)") == "1"
        assert _metric(page, "Duplicate") == "1"
        assert _metric(page, "Unknown payout id") == "1"
        assert _metric(page, "Out of order") == "1"
        assert page.locator('[data-testid="stException"]').count() == 0

        _open(page, server + "/claims", "Claims")
        page.get_by_label("Claim", exact=True).click()
        page.get_by_role("option", name=str(claim), exact=True).click()
        page.get_by_text(f"Claim {claim} · wrong_amount · open").wait_for()
        _idle(page)
        page.get_by_text("Reject", exact=True).click()
        _idle(page)
        page.get_by_label("Reason").fill("The statement is right.")
        page.get_by_role("button", name=f"Reject claim {claim}").click()
        page.get_by_text(f"Claim {claim} rejected.").wait_for()
    finally:
        ctx.close()
    assert list_payouts(url).filter(pl.col("payout_id") == first["payout_id"])["state"][0] \
        == "paid"
    decided = list_claims(url).filter(pl.col("claim_id") == claim).row(0, named=True)
    assert decided["state"] == "rejected" and decided["decided_by"] == "admin"


def test_my_share_in_spanish_by_the_address(payouts_server, browser, demo_db) -> None:  # type: ignore[no-untyped-def]
    from ledger.i18n import Tr
    from ledger.store import open_store, read_session
    from ledger.store.read import creator_statement

    server, url = payouts_server
    a = demo_db.creator_a
    engine = open_store(url)
    with read_session(engine) as s:
        last = creator_statement(s, a).tail(1).row(0, named=True)
    engine.dispose()
    es = Tr("es")
    ctx, page = _page(browser)
    try:
        _login(page, server, a, demo_db.logins[a][0])
        _open(page, server + "/my-share?lang=es", "Tus pagos")
        for words in ("Próxima fecha de pago", "Perfil de pago", "¿Qué está mal?"):
            page.get_by_text(words).first.wait_for()  # drawn once the script has run
        _idle(page)
        text = page.locator("body").inner_text()
        assert _metric(page, "Ganado en este periodo") == es.money(last[S.ALLOCATED_MINOR],
                                                                   last[S.CURRENCY])
        held = re.search(r"Tu pago de ([\d.]+,\d{2}\xa0US\$) del periodo 2026-10 está "
                         r"retenido: sin método de pago, falta el formulario fiscal\.", text)
        assert held, text[:2000]
        assert "Perfil de pago" in text and "Reclamaciones" in text
        assert "Próxima fecha de pago" in text and "¿Qué está mal?" in text
        assert "Your payouts" not in text and "Payout profile" not in text
    finally:
        ctx.close()
