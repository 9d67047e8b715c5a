"""Creator payout profiles: where a creator's money goes and whether it may go.

Rule: a profile is append-only history (``creator_profiles``); the newest row of a
creator is their current profile, and a change is a new row holding every field
(unchanged ones copied). A creator's payouts are held while their current profile
lacks a payout method or an accepted tax form (:mod:`ledger.store.payout_states`).
:func:`set_profiles` records many profiles in one bulk write, with the checks,
errors and rows of :func:`set_profile` called on each row in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from contract import schema as S
from contract.errors import ResidualsError
from ledger.store import models as M

_COUNTRY = re.compile(r"[A-Z]{2}")
#: The characters :meth:`str.strip` removes (``str.isspace``), for the same check in polars.
SPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
         "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
#: The fields of a profile, in the order :func:`set_profile` checks them.
FIELDS = ("payout_method", "country", "tax_form")


@dataclass(frozen=True)
class Profile:
    """A creator's payout profile (``None``: not set)."""

    creator_id: str
    payout_method: str | None
    country: str | None
    tax_form: str

    @property
    def missing(self) -> list[str]:
        """What keeps this creator's payouts held, as hold reasons."""
        from ledger.store.payout_states import hold_reasons

        held = hold_reasons(pl.DataFrame(
            {S.CREATOR_ID: [self.creator_id], "payout_method": [self.payout_method],
             "tax_form": [self.tax_form]},
            schema={S.CREATOR_ID: pl.String, "payout_method": pl.String, "tax_form": pl.String}))
        return held["reason"][0].split(",") if held.height else []


def current_profile(session: Session, creator_id: str) -> Profile:
    """The creator's newest profile, or an empty one (nothing set, tax form missing)."""
    cp = M.CreatorProfile
    row = session.execute(select(cp.payout_method, cp.country, cp.tax_form)
                          .where(cp.creator_id == creator_id).order_by(cp.id.desc()).limit(1)
                          ).first()
    if row is None:
        return Profile(creator_id, None, None, "missing")
    return Profile(creator_id, row[0], row[1], row[2])


def _check_text(name: str, value: str) -> None:
    if not value or "\x00" in value or len(value) > S.MAX_ID_CHARS or value != value.strip():
        raise ResidualsError(f"{name}={value!r}: expected 1 to {S.MAX_ID_CHARS} characters, "
                             "no NUL, no leading or trailing space")


def _checked(creator_id: str, payout_method: str | None, country: str | None,
             tax_form: str | None) -> str | None:
    """Check a profile's fields (raising :class:`ResidualsError`); returns the country
    in capitals."""
    _check_text("creator_id", creator_id)
    if payout_method is not None:
        _check_text("payout_method", payout_method)
    if country is not None:
        country = country.upper()
        if not _COUNTRY.fullmatch(country):
            raise ResidualsError(f"country={country!r}: expected a two-letter ISO 3166-1 code")
    if tax_form is not None and tax_form not in M.TAX_FORM_STATES:
        raise ResidualsError(f"tax_form={tax_form!r}: expected one of "
                             f"{', '.join(M.TAX_FORM_STATES)}")
    return country


def set_profile(session: Session, creator_id: str, *, payout_method: str | None = None,
                country: str | None = None, tax_form: str | None = None) -> Profile:
    """Record a new profile for ``creator_id``: the given fields, the others as they were.

    Raises
    ------
    ResidualsError
        An empty or over-long creator id or payout method, a country that is not two
        letters (ISO 3166-1 alpha-2), a tax form other than missing, submitted,
        accepted.
    """
    country = _checked(creator_id, payout_method, country, tax_form)
    old = current_profile(session, creator_id)
    new = Profile(creator_id, payout_method if payout_method is not None else old.payout_method,
                  country if country is not None else old.country,
                  tax_form if tax_form is not None else old.tax_form)
    session.add(M.CreatorProfile(creator_id=creator_id, payout_method=new.payout_method,
                                 country=new.country, tax_form=new.tax_form))
    session.flush()
    return new


def _bad_text(name: str) -> pl.Expr:
    """Where :func:`_check_text` refuses column ``name`` (nulls: false)."""
    c = pl.col(name)
    n = c.str.len_chars()
    return ((n == 0) | (n > S.MAX_ID_CHARS) | c.str.contains("\x00", literal=True)
            | (c != c.str.strip_chars(SPACE))).fill_null(False)


def _profile_frame(profiles: pl.DataFrame) -> pl.DataFrame:
    """``profiles`` with every field column (absent ones null), checked as
    :func:`set_profile` checks its arguments, row by row in order; the country in capitals."""
    unknown = sorted(set(profiles.columns) - {S.CREATOR_ID, *FIELDS})
    if S.CREATOR_ID not in profiles.columns or unknown:
        raise ResidualsError(f"profiles: columns {profiles.columns}, expected {S.CREATOR_ID} "
                             f"and any of {', '.join(FIELDS)}")
    for name in (S.CREATOR_ID, *FIELDS):
        if name in profiles.columns and profiles.schema[name] not in (pl.String, pl.Null):
            raise ResidualsError(f"profiles: column {name} is {profiles.schema[name]}, "
                                 "expected strings")
    df = profiles.select(pl.col(S.CREATOR_ID).cast(pl.String), *[
        (pl.col(f) if f in profiles.columns else pl.lit(None)).cast(pl.String).alias(f)
        for f in FIELDS])
    up = pl.col("country").str.to_uppercase()
    bad = df.select(pl.col(S.CREATOR_ID).is_null() | _bad_text(S.CREATOR_ID)
                    | _bad_text("payout_method")
                    | (up.is_not_null() & ~up.str.contains(r"^[A-Z]{2}$"))
                    | (pl.col("tax_form").is_not_null()
                       & ~pl.col("tax_form").is_in(M.TAX_FORM_STATES))).to_series()
    if bad.any():
        row = int(bad.arg_max())  # type: ignore[arg-type]
        try:
            _checked(*df.row(row))
        except ResidualsError as exc:
            raise ResidualsError(f"profiles row {row}: {exc}") from None
        raise AssertionError(f"profiles row {row}: refused in bulk, accepted alone")
    return df.with_columns(up)


def set_profiles(session: Session, profiles: pl.DataFrame) -> pl.DataFrame:
    """Record a new profile for each row of ``profiles`` (``creator_id`` and any of
    ``payout_method``, ``country``, ``tax_form``; null: as it was), in one bulk write.

    The same as :func:`set_profile` on each row in order, a creator named twice
    included: the same checks and one-line errors (prefixed ``profiles row i:``,
    nothing written), the same rows. Returns the rows written.
    """
    from sqlalchemy import func

    from ledger.store.bulk import insert_frame
    from ledger.store.read import frame

    new = _profile_frame(profiles)
    cp = M.CreatorProfile
    newest = select(func.max(cp.id)).group_by(cp.creator_id)
    old = frame(session, select(cp.creator_id, cp.payout_method, cp.country, cp.tax_form)
                .where(cp.id.in_(newest)), {S.CREATOR_ID: pl.String(),
                                            **{f: pl.String() for f in FIELDS}})
    old = old.filter(pl.col(S.CREATOR_ID).is_in(new[S.CREATOR_ID].implode()))
    rows = (pl.concat([old.with_columns(pl.lit(False).alias("_new")),
                       new.with_columns(pl.lit(True).alias("_new"))])
            .with_columns(pl.col(*FIELDS).forward_fill().over(S.CREATOR_ID))
            .filter("_new").drop("_new")
            .with_columns(pl.col("tax_form").fill_null("missing")))
    session.flush()
    insert_frame(session, cp.__tablename__, rows)
    return rows
