"""Bulk profiles (:func:`ledger.store.profiles.set_profiles`) against the single setter
called on each row in order: the same rows, the same checks and one-line errors."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from contract import schema as S
from contract.errors import ResidualsError
from ledger.store import models as M
from ledger.store import open_store, write_session
from ledger.store.profiles import FIELDS, SPACE, _profile_frame, set_profile, set_profiles

#: Creators already holding a profile, then a frame that changes some of them, adds
#: others, names one creator twice and leaves fields unset (null: as it was).
BEFORE = [("alice", "alice@example.com", "US", "accepted"), ("bob", None, "fr", "submitted")]
CHANGES = pl.DataFrame(
    {S.CREATOR_ID: ["bob", "carol", "alice", "dave", "carol", "erin"],
     "payout_method": ["bob@example.com", None, None, "acct_1", "carol@example.com", None],
     "country": [None, "de", "gb", None, None, None],
     "tax_form": ["accepted", "submitted", None, None, "accepted", None]},
    schema={S.CREATOR_ID: pl.String, **{f: pl.String for f in FIELDS}})


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = open_store(db_url)
    with write_session(eng) as s, s.begin():
        for cid, method, country, tax in BEFORE:
            set_profile(s, cid, payout_method=method, country=country, tax_form=tax)
    return eng


def _stored(session) -> list[tuple]:  # noqa: ANN001
    cp = M.CreatorProfile
    return [tuple(r) for r in session.execute(
        select(cp.creator_id, cp.payout_method, cp.country, cp.tax_form).order_by(cp.id))]


def test_bulk_writes_the_rows_of_the_single_setter_in_a_loop(engine: Engine) -> None:
    with write_session(engine) as s:
        tx = s.begin()
        for row in CHANGES.iter_rows(named=True):  # the slow, obviously correct path
            set_profile(s, row[S.CREATOR_ID], **{f: row[f] for f in FIELDS})
        looped = _stored(s)
        tx.rollback()
    with write_session(engine) as s, s.begin():
        written = set_profiles(s, CHANGES)
        bulk = _stored(s)
    assert bulk == looped
    assert len(bulk) == len(BEFORE) + CHANGES.height
    assert written.rows() == bulk[len(BEFORE):]
    assert ("carol", "carol@example.com", "DE", "accepted") in bulk  # second row of carol
    assert ("erin", None, None, "missing") in bulk  # nothing set: an empty profile


def test_a_bad_row_is_one_line_and_nothing_is_written(engine: Engine) -> None:
    bad = CHANGES.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("USA")).otherwise(pl.col("country"))
        .alias("country"))
    with write_session(engine) as s, s.begin():
        with pytest.raises(ResidualsError) as err:
            set_profiles(s, bad)
        assert _stored(s) == [(c, m, k.upper(), t) for c, m, k, t in BEFORE]
    assert str(err.value) == ("profiles row 3: country='USA': expected a two-letter "
                              "ISO 3166-1 code")
    with write_session(engine) as s, s.begin(), pytest.raises(ResidualsError) as single:
        set_profile(s, "dave", country="USA")
    assert str(err.value).endswith(str(single.value))


def test_a_frame_with_other_columns_is_refused() -> None:
    with pytest.raises(ResidualsError, match=r"^profiles: columns \['creator', 'country'\]"):
        _profile_frame(pl.DataFrame({"creator": ["a"], "country": ["US"]}))
    with pytest.raises(ResidualsError, match="^profiles: column country is Int64"):
        _profile_frame(pl.DataFrame({S.CREATOR_ID: ["a"], "country": [1]}))


def test_space_is_what_str_strip_removes() -> None:
    assert SPACE == "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


#: Text that exercises every check: spaces of every kind, NUL, case, length, Unicode.
_TEXT = st.one_of(st.none(), st.lists(st.sampled_from(
    ["a", "Z", "u", "s", "ß", "ﬀ", "ı", "é", " ", "\x00", "\t", "\x1c", "\x85", "\u3000",
     "\u2028", "accepted", "missing"]), max_size=4).map("".join),
    st.just("x" * (S.MAX_ID_CHARS + 1)))


@given(cid=_TEXT, method=_TEXT, country=_TEXT, tax=_TEXT)
def test_bulk_checks_are_the_single_checks(cid: str | None, method: str | None,
                                           country: str | None, tax: str | None) -> None:
    from ledger.store.profiles import _checked

    frame = pl.DataFrame([[cid], [method], [country], [tax]],
                         schema={S.CREATOR_ID: pl.String, **{f: pl.String for f in FIELDS}},
                         orient="col")
    try:
        expected = _checked(cid, method, country, tax)  # type: ignore[arg-type]
    except ResidualsError as exc:
        with pytest.raises(ResidualsError) as err:
            _profile_frame(frame)
        assert str(err.value) == f"profiles row 0: {exc}"
    else:
        assert _profile_frame(frame)["country"].to_list() == [expected]
