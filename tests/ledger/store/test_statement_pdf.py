"""Statements as PDF (English and Spanish) and the statement CSV's creator, shares and dates."""

from __future__ import annotations

import io
import re
from pathlib import Path

import polars as pl
import pytest
from pypdf import PdfReader

from contract import schema as S
from ledger.store import open_store, read_session
from ledger.store.read import batches, creator_clip_earnings, creator_statement
from ledger.store.statement_pdf import font_file, statement_pdf
from ledger.store.statements import POSTED_ON, SHARE_DECIMALS, statement_csv_table
from tests.ledger.store.kit import write_dataset
from tests.ledger.store.test_store_cli import POLICY, cli, run

CREATOR = "c0000001"
HOSTILE = "Zoë <b>&amp; ') ; DROP TABLE — Ωμέγα Привет שלום \u202e"


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def db(capsys, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """Two periods posted from a catalogue whose attributions carry a confidence."""
    data = tmp_path / "data"
    write_dataset(data, 6, confidence=True)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    for period in ("2026-10", "2026-11"):
        code, _out, err = run(capsys, data, url, tmp_path, "--pool", "1000.00", period=period,
                              policy=POLICY)
        assert code == 0, err
    return url


def _rows(db: str):  # type: ignore[no-untyped-def]
    engine = open_store(db)
    with read_session(engine) as s:
        lines = creator_statement(s, CREATOR)
        clips = creator_clip_earnings(s, CREATOR)
        hashes = batches(s)[S.BATCH_HASH].to_list()
    engine.dispose()
    return lines, clips, hashes


def test_pdf_has_every_batch_hash_clip_and_resemblance(db: str) -> None:
    lines, clips, hashes = _rows(db)
    assert len(hashes) == 2 and clips.height == 2
    english = pdf_text(statement_pdf(CREATOR, "Creator one", lines, clips, "en"))
    spanish = pdf_text(statement_pdf(CREATOR, "Creator one", lines, clips, "es"))
    for text in (english, spanish):
        for h in hashes:
            assert h in text
        assert "k0000001" in text and CREATOR in text
    assert "Residuals statement for Creator one" in english
    assert "resembles strongly" in english and "Carried forward" in english
    assert "Extracto de Residuals de Creator one" in spanish
    assert "se parece mucho" in spanish and "Trasladado" in spanish
    assert "resembles" not in spanish and "Carried forward" not in spanish
    allocated = int(lines[S.ALLOCATED_MINOR].sum())
    euros = f"{allocated // 100},{allocated % 100:02d}"
    assert re.search(rf"Ganado {re.escape(euros)}\s*US\$ en total", spanish), spanish[:400]


def test_pdf_renders_hostile_names_as_text(db: str) -> None:
    lines, clips, _hashes = _rows(db)
    data_bytes = statement_pdf(CREATOR, HOSTILE, lines, clips, "en")
    text = " ".join(pdf_text(data_bytes).split())  # the long title wraps
    assert "Residuals statement for Zoë <b>&amp; ') ; DROP TABLE" in text
    assert "Ωμέγα" in text and "Привет" in text
    assert statement_pdf(CREATOR, HOSTILE, lines, clips, "en") == data_bytes  # same bytes
    assert font_file().name == "DejaVuSans.ttf" and font_file().is_file()


def test_cli_writes_pdf_and_csv_with_creator_shares_and_iso_dates(capsys, db: str,  # type: ignore[no-untyped-def]
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "st"
    out.mkdir()
    code, printed, err = cli(capsys, "statement", "--creator", CREATOR, "--db", db, "--out", out,
                             "--format", "pdf", "--lang", "es")
    assert code == 0, err
    assert printed.strip() == f"wrote {out / ('statement-' + CREATOR + '.pdf')}"
    text = pdf_text((out / f"statement-{CREATOR}.pdf").read_bytes())
    assert "Extracto de Residuals" in text and "k0000001" in text
    code, _printed, err = cli(capsys, "statement", "--creator", CREATOR, "--db", db, "--out",
                              out, "--lang", "es")
    assert code == 0, err
    page = (out / f"statement-{CREATOR}.html").read_text(encoding="utf-8")
    assert '<html lang="es">' in page and "Los clips que lo ganaron" in page
    assert "<th>Hash del lote</th>" in page and "se parece mucho" in page
    csv = pl.read_csv(out / f"statement-{CREATOR}.csv", infer_schema_length=0)
    assert csv.columns[:2] == [S.CREATOR_ID, S.DISPLAY_NAME]
    assert set(csv[S.CREATOR_ID]) == {CREATOR} and set(csv[S.DISPLAY_NAME]) == {
        f"Creator {CREATOR}"}
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in csv[POSTED_ON])
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", d)
               for d in csv[S.POSTED_AT])
    assert all(len(s.partition(".")[2]) <= SHARE_DECIMALS for s in csv[S.SHARE])


@pytest.mark.parametrize(("args", "message"), [
    (("--format", "docx"), "--format 'docx': expected one of csv, pdf"),
    (("--format", "pdf", "--lang", "fr"), "--lang 'fr': expected one of en, es"),
])
def test_cli_bad_format_or_language(capsys, tmp_path: Path, args, message) -> None:  # type: ignore[no-untyped-def]
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    code, _out, err = cli(capsys, "statement", "--creator", CREATOR, "--db", db, "--out",
                          tmp_path, *args)
    assert code != 0 and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("statement-*"))


def test_csv_table_rounds_shares() -> None:
    import datetime as dt

    lines = pl.DataFrame({
        S.PERIOD: ["P1"], S.CURRENCY: ["USD"], S.ALLOCATED_MINOR: [309],
        S.CARRIED_IN_MINOR: [0], S.PAID_MINOR: [0], S.CARRIED_OUT_MINOR: [309],
        S.SHARE: [0.123456789], S.ELIGIBLE: [True], S.REASON: [None], S.BATCH_ID: ["b"],
        S.BATCH_HASH: ["h"], S.REVISION: [1], S.POSTED_AT: [dt.datetime(2026, 12, 3, 10, 41, 5)],
    })
    got = statement_csv_table("c1", "Ada", lines).row(0, named=True)
    assert got[S.SHARE] == 0.123457 and got[POSTED_ON] == "2026-12-03"
    assert got[S.POSTED_AT] == "2026-12-03T10:41:05Z" and got["earned"] == "3.09"
