"""``read.frame``: its fast path (``COPY ... TO STDOUT`` parsed by polars on PostgreSQL)
returns exactly what SQLAlchemy's plain row-by-row result gives on the same query."""

from __future__ import annotations

import polars as pl
from sqlalchemy import BigInteger, func, literal, select

from ledger.store import models as M
from ledger.store.engine import open_store, write_session
from ledger.store.read import frame

HOSTILE = ["plain", "", "comma, inside", 'a "quoted" word', "line\nbreak", "crlf\r\nend",
           "\\N", "NULL", "  spaces  ", "percent % and %% and %(x)s", "ünïcødé ✓", "tab\tin",
           "'single'", '"', ",", "=1+1"]


def _setup(url: str) -> object:
    engine = open_store(url)
    with write_session(engine) as s, s.begin():
        for i, name in enumerate(HOSTILE):
            s.add(M.Creator(creator_id=f"c{i:03d}", display_name=name))
            s.add(M.CreatorProfile(creator_id=f"c{i:03d}", tax_form="missing",
                                   payout_method=None if i % 3 == 0 else name))
    return engine


def _plain(session, stmt, schema) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    rows = [tuple(r) for r in session.execute(stmt)]
    return pl.DataFrame(rows or None, schema=schema, orient="row")


def test_frame_equals_the_plain_result_on_hostile_strings(db_url: str) -> None:
    engine = _setup(db_url)
    c, p = M.Creator, M.CreatorProfile
    cases = [
        (select(c.creator_id, c.display_name).order_by(c.creator_id),
         {"creator_id": pl.String(), "display_name": pl.String()}),
        (select(p.creator_id, p.payout_method, p.id).order_by(p.id),
         {"creator_id": pl.String(), "payout_method": pl.String(), "id": pl.Int64()}),
        (select(c.creator_id, func.length(c.display_name)).where(
            c.display_name.like("%,%") | c.display_name.in_(["", "NULL", "\\N"]))
         .order_by(c.creator_id), {"creator_id": pl.String(), "n": pl.Int64()}),
        (select(literal(-2**63 + 1, BigInteger), literal(2**63 - 1, BigInteger),
                literal("%s %(a)s")),
         {"lo": pl.Int64(), "hi": pl.Int64(), "s": pl.String()}),
        (select(c.creator_id, c.display_name).where(c.creator_id == "nobody"),
         {"creator_id": pl.String(), "display_name": pl.String()}),
    ]
    with write_session(engine) as s, s.begin():
        for stmt, schema in cases:
            got, want = frame(s, stmt, schema), _plain(s, stmt, schema)
            assert got.schema == want.schema
            assert got.to_dict(as_series=False) == want.to_dict(as_series=False), stmt
    engine.dispose()  # type: ignore[attr-defined]


def test_null_and_empty_string_stay_apart(db_url: str) -> None:
    engine = _setup(db_url)
    p = M.CreatorProfile
    with write_session(engine) as s, s.begin():
        got = frame(s, select(p.payout_method).order_by(p.id), {"m": pl.String()})["m"]
    assert got.null_count() == len(range(0, len(HOSTILE), 3))
    assert got.to_list()[1] == "" and got.to_list()[0] is None
    engine.dispose()  # type: ignore[attr-defined]
