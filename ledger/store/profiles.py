"""Creator payout profiles: where a creator's money goes and whether it may go.

Rule: a profile is append-only history (``creator_profiles``); the newest row of a
creator is their current profile, and a change is a new row holding every field
(unchanged ones copied). A creator's payouts are held while their current profile
lacks a payout method or an accepted tax form (:mod:`ledger.store.payout_states`).
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
    old = current_profile(session, creator_id)
    new = Profile(creator_id, payout_method if payout_method is not None else old.payout_method,
                  country if country is not None else old.country,
                  tax_form if tax_form is not None else old.tax_form)
    session.add(M.CreatorProfile(creator_id=creator_id, payout_method=new.payout_method,
                                 country=new.country, tax_form=new.tax_form))
    session.flush()
    return new
