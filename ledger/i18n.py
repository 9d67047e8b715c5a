"""Creator-facing text in English and Spanish: gettext catalogs and Babel formats.

Rule: every string a creator reads (My share, the login page, statements in
CSV, HTML and PDF) is written in English inside ``_("...")`` (or ``N_("...")``
where it is defined before a language is known) and looked up through a
:class:`Tr`; English is the source language. The Spanish catalog is the
gettext file ``es.po`` beside this module (package data), compiled in memory
on first use, so a fresh ``pip install -e .`` needs no build step. A test
extracts every marked string from the sources with Babel and fails when one
lacks a Spanish translation. Numbers, dates and money are formatted by Babel
for the language's locale; money always from integer minor units with the
currency's exponent from :mod:`ledger.money` (never a float).
"""

from __future__ import annotations

import datetime as dt
import gettext
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from contract.errors import ResidualsError
from ledger.money import exponent

#: The languages a creator can choose, with their names in themselves.
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español"}
DEFAULT = "en"
#: The catalogs: one ``<language>.po`` per non-source language, beside this module.
CATALOG_DIR = Path(__file__).parent
#: The Babel locale each language formats with.
_LOCALES = {"en": "en_US", "es": "es_ES"}


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is defined; :class:`Tr` translates it later."""
    return message


def check_language(language: str) -> str:
    """``language`` if it is one of :data:`LANGUAGES`, else raise naming the choices."""
    if language not in LANGUAGES:
        raise ResidualsError(f"language={language!r}: expected one of "
                             f"{', '.join(LANGUAGES)}")
    return language


@lru_cache(maxsize=None)
def _translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (English: the identity)."""
    if language == DEFAULT:
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with (CATALOG_DIR / f"{language}.po").open("rb") as f:
        catalog = read_po(f, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@dataclass(frozen=True)
class Tr:
    """Translate and format for one language: ``tr("Paid")``, ``tr.money(309, "USD")``."""

    language: str = DEFAULT

    def __post_init__(self) -> None:
        check_language(self.language)

    @property
    def locale(self) -> str:
        return _LOCALES[self.language]

    def __call__(self, message: str) -> str:
        """``message`` (an English msgid) in this language."""
        return _translations(self.language).gettext(message)

    def plural(self, singular: str, plural: str, n: int) -> str:
        """The singular or plural form for ``n``, in this language."""
        return _translations(self.language).ngettext(singular, plural, n)

    def money(self, minor: int, currency: str) -> str:
        """Integer minor units as money of ``currency`` for the locale (``3,09 US$``), with
        exactly the currency's minor digits from :mod:`ledger.money`."""
        from babel import Locale
        from babel.numbers import format_currency

        exp = exponent(currency)
        pattern = Locale.parse(self.locale).currency_formats["standard"].pattern.split(";")[0]
        fmt = pattern.replace(".00", "." + "0" * exp if exp else "")  # both locales: "0.00"
        return format_currency(Decimal(int(minor)).scaleb(-exp), currency, format=fmt,
                               locale=self.locale, currency_digits=False)

    def amount(self, minor: int, currency: str) -> str:
        """Integer minor units as a plain number for the locale (``3,09``), no currency."""
        from babel.numbers import format_decimal

        exp = exponent(currency)
        fmt = "#,##0" + ("." + "0" * exp if exp else "")
        return format_decimal(Decimal(int(minor)).scaleb(-exp), format=fmt, locale=self.locale)

    def number(self, value: float, digits: int = 2) -> str:
        """A number rounded to ``digits`` decimals for the locale."""
        from babel.numbers import format_decimal

        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(Decimal(repr(float(value))), format=fmt, locale=self.locale)

    def percent(self, fraction: float, digits: int = 2) -> str:
        """A fraction as a percentage with ``digits`` decimals for the locale (``12,35 %``)."""
        from babel import Locale
        from babel.numbers import format_percent

        pattern = Locale.parse(self.locale).percent_formats[None].pattern.split(";")[0]
        last = pattern.rindex("0")  # "#,##0%" (en), "#,##0 %" (es): decimals after it
        fmt = pattern[:last + 1] + ("." + "0" * digits if digits else "") + pattern[last + 1:]
        return format_percent(Decimal(repr(float(fraction))), format=fmt, locale=self.locale)

    def date(self, day: dt.date | dt.datetime) -> str:
        """A date for the locale, long form (``December 15, 2026``, ``15 de diciembre de 2026``)."""
        from babel.dates import format_date

        return format_date(day, format="long", locale=self.locale)
