"""English and Spanish: every marked string is translated; formats follow the locale."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from contract.errors import ResidualsError
from ledger.i18n import CATALOG_DIR, LANGUAGES, Tr
from tests.conftest import ROOT

PACKAGES = ("dashboard", "ledger", "residuals")
"""Where creator-facing strings are marked (``_("...")``, ``N_("...")``)."""
_FIELD = re.compile(r"\{(\w*)\}")


def marked() -> dict[str, str]:
    """Every marked msgid in the sources, with where it was first found."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for lineno, msg, _comments, _context in extract_from_file("python", str(path)):
                text = msg[0] if isinstance(msg, tuple) else msg
                if text:
                    found.setdefault(text, f"{path.relative_to(ROOT)}:{lineno}")
    return found


def catalog(language: str):  # type: ignore[no-untyped-def]
    with (CATALOG_DIR / f"{language}.po").open("rb") as f:
        return read_po(f, locale=language)


def test_sources_mark_the_creator_pages() -> None:
    found = marked()
    assert len(found) > 80  # My share, login, statements: a positive control for the scan
    assert "Download statement (PDF)" in found and "resembles strongly" in found


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_marked_string_has_a_translation(language: str) -> None:
    cat = catalog(language)
    missing = [f"{where}: {msgid!r}" for msgid, where in marked().items()
               if msgid not in cat or not cat[msgid].string or cat[msgid].fuzzy]
    assert not missing, f"{language}.po lacks {len(missing)} translation(s):\n" + "\n".join(
        missing)


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_translations_keep_every_placeholder_and_nothing_is_stale(language: str) -> None:
    used = marked()
    for message in catalog(language):
        if not message.id:
            continue
        assert message.id in used, f"{language}.po: {message.id!r} is no longer used"
        assert sorted(_FIELD.findall(message.id)) == sorted(_FIELD.findall(message.string)), (
            f"{language}.po: {message.id!r} -> {message.string!r}")


def test_spanish_lookup_and_english_identity() -> None:
    assert Tr("es")("Paid this period") == "Pagado en este periodo"
    assert Tr("en")("Paid this period") == "Paid this period"
    assert Tr("es")("a string nobody marked") == "a string nobody marked"


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ResidualsError, match=r"^language='fr': expected one of en, es$"):
        Tr("fr")


@pytest.mark.parametrize(("language", "cases"), [
    ("en", {(309, "USD"): "$3.09", (123456789, "BHD"): "BHD123,456.789", (5, "JPY"): "¥5",
            (-150, "EUR"): "-€1.50"}),
    ("es", {(309, "USD"): "3,09\xa0US$", (123456789, "BHD"): "123.456,789\xa0BHD",
            (5, "JPY"): "5\xa0JPY", (100000, "EUR"): "1.000,00\xa0€"}),
])
def test_money_from_minor_units_with_the_currency_exponent(language: str, cases) -> None:  # type: ignore[no-untyped-def]
    tr = Tr(language)
    for (minor, currency), text in cases.items():
        assert tr.money(minor, currency) == text


def test_money_is_exact_beyond_float_precision() -> None:
    big = 2**62 + 1  # not representable in a float64
    assert Tr("en").money(big, "USD").replace(",", "").endswith("46116860184273879.05")


def test_numbers_dates_percentages_per_locale() -> None:
    en, es = Tr("en"), Tr("es")
    assert (en.amount(100000, "USD"), es.amount(1000000, "USD")) == ("1,000.00", "10.000,00")
    assert (en.percent(0.1234, 2), es.percent(0.1234, 2)) == ("12.34%", "12,34\xa0%")
    assert (en.number(0.8, 1), es.number(0.8, 1)) == ("0.8", "0,8")
    day = dt.date(2026, 12, 15)
    assert (en.date(day), es.date(day)) == ("December 15, 2026", "15 de diciembre de 2026")


def test_catalog_ships_as_package_data() -> None:
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.po" in data["tool"]["setuptools"]["package-data"]["*"]
    assert Path(CATALOG_DIR / "es.po").is_file()


def test_marked_resemblance_words_are_the_confidence_labels() -> None:
    from contract.resemblance import LABEL_NONE, LABEL_STRONG, LABEL_WEAK
    from ledger.store.statements import RESEMBLANCE_WORDS

    assert RESEMBLANCE_WORDS == (LABEL_STRONG, LABEL_WEAK, LABEL_NONE)
