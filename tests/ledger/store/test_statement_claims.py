"""Claim adjustments on a creator's statement: CSV, HTML and PDF, in English and Spanish.

A claim upheld after period 1 is applied by period 2's batch; ``residuals statement``
shows it on period 2 with its claim id, amount and funding (pool or platform), and
nowhere else; a creator without an applied claim gets no claims section.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from contract import schema as S
from ledger.i18n import Tr
from ledger.store import models as M
from residuals.workflows import claims as W
from tests.ledger.store.kit import write_dataset
from tests.ledger.store.test_statement_pdf import pdf_text
from tests.ledger.store.test_store_cli import POLICY, cli, run

CREATOR, OTHER = "c0000001", "c0000002"


@pytest.fixture
def db(capsys, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """Period 1; two claims of CREATOR upheld (12.00 from the pool, 7.77 by the platform) and
    one rejected; period 2 applies the upheld ones."""
    data = tmp_path / "data"
    write_dataset(data, 6)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run(capsys, data, url, tmp_path, "--pool", "1000.00", period="2026-10",
               policy=POLICY)[0] == 0
    for amount, funding in (("12.00", M.FUNDING_POOL), ("7.77", M.FUNDING_PLATFORM), (None, "")):
        cid = W.open_claim(url, W.NewClaim(creator_id=CREATOR, kind=M.WRONG_AMOUNT,
                                           period="2026-10", opened_by=CREATOR,
                                           text="my share looks wrong"))
        W.resolve_claim(url, cid, uphold=amount is not None, amount=amount,
                        funding=funding or M.FUNDING_POOL, reason="no error found",
                        actor="staff")
    assert run(capsys, data, url, tmp_path, "--pool", "1000.00", period="2026-11",
               policy=POLICY)[0] == 0
    return url


def _statement(capsys, db: str, out: Path, creator: str,  # type: ignore[no-untyped-def]
               *args: str) -> None:
    out.mkdir(exist_ok=True)
    code, _out, err = cli(capsys, "statement", "--creator", creator, "--db", db, "--out", out,
                          *args)
    assert code == 0, err


def test_csv_names_the_claims_on_the_period_that_applied_them(  # type: ignore[no-untyped-def]
        capsys, db: str, tmp_path: Path) -> None:
    _statement(capsys, db, tmp_path / "en", CREATOR)
    lines = pl.read_csv(tmp_path / "en" / f"statement-{CREATOR}.csv",
                        schema_overrides={"adjusted": pl.String,
                                          "adjustment_claims": pl.String})
    by_period = {r[S.PERIOD]: r for r in lines.iter_rows(named=True)}
    assert by_period["2026-11"]["adjusted_minor"] == 1977
    assert by_period["2026-11"]["adjusted"] == "19.77"
    assert by_period["2026-11"]["adjustment_claims"] == "#1 pool 12.00; #2 platform 7.77"
    assert by_period["2026-10"]["adjusted_minor"] == 0
    assert by_period["2026-10"]["adjustment_claims"] in (None, "")
    # the adjustments are inside what the creator carried into period 2
    assert by_period["2026-11"][S.CARRIED_IN_MINOR] >= 1977


@pytest.mark.parametrize("language, words", [
    ("en", ("Claim adjustments", "from that period's pool", "paid by the platform")),
    ("es", ("Ajustes por reclamaciones", "del fondo de ese periodo",
            "pagado por la plataforma")),
])
def test_html_and_pdf_list_each_applied_claim_with_its_funding(  # type: ignore[no-untyped-def]
        capsys, db: str, tmp_path: Path, language: str, words: tuple[str, ...]) -> None:
    tr = Tr(language)
    out = tmp_path / language
    _statement(capsys, db, out, CREATOR, "--lang", language)
    _statement(capsys, db, out, CREATOR, "--lang", language, "--format", "pdf")
    page = (out / f"statement-{CREATOR}.html").read_text(encoding="utf-8")
    text = pdf_text((out / f"statement-{CREATOR}.pdf").read_bytes())
    flat = lambda t: " ".join(t.split())  # noqa: E731  # PDF text: no-break spaces as spaces
    for shown in (flat(page), flat(text)):
        for w in (*words, "#1", "#2", tr.money(1200, "USD"), tr.money(777, "USD")):
            assert flat(w) in shown, (w, language)
        assert "#3" not in shown  # the rejected claim moved no money


def test_a_creator_without_applied_claims_gets_no_claims_section(  # type: ignore[no-untyped-def]
        capsys, db: str, tmp_path: Path) -> None:
    _statement(capsys, db, tmp_path / "o", OTHER)
    _statement(capsys, db, tmp_path / "o", OTHER, "--format", "pdf")
    page = (tmp_path / "o" / f"statement-{OTHER}.html").read_text(encoding="utf-8")
    assert "Claim adjustments" not in page
    assert "Claim adjustments" not in pdf_text((tmp_path / "o" / f"statement-{OTHER}.pdf")
                                               .read_bytes())
    lines = pl.read_csv(tmp_path / "o" / f"statement-{OTHER}.csv")
    assert lines["adjusted_minor"].to_list() == [0, 0]


def test_one_period_shows_only_its_own_adjustments(  # type: ignore[no-untyped-def]
        capsys, db: str, tmp_path: Path) -> None:
    _statement(capsys, db, tmp_path / "p", CREATOR, "--period", "2026-10")
    page = (tmp_path / "p" / f"statement-{CREATOR}-2026-10.html").read_text(encoding="utf-8")
    assert "Claim adjustments" not in page


def test_dashboard_statements_carry_the_claims_the_cli_prints(  # type: ignore[no-untyped-def]
        capsys, db: str, tmp_path: Path) -> None:
    """My share's downloads (HTML, PDF) come from the same readers as the CLI's, with
    the applied claims; a creator without one gets no claims section."""
    from dashboard.data.creator import statement_html_of, statement_pdf_of
    from ledger.store import open_store, read_session

    engine = open_store(db)
    with read_session(engine) as s:
        html = statement_html_of(s, CREATOR, "en")
        pdf = pdf_text(statement_pdf_of(s, CREATOR, "en"))
        other = statement_html_of(s, OTHER, "en")
    engine.dispose()
    for text in (html, pdf):
        assert "Claim adjustments" in text and "paid by the platform" in text
    assert "Claim adjustments" not in other
