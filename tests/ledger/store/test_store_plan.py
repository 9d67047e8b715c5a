"""The steps of posting a batch, each on its own: plan, carried-in, manifest, money."""

from __future__ import annotations

import polars as pl
import pytest

from contract import schema as S
from contract.errors import ResidualsError
from ledger.store.engine import open_store, read_session, write_session
from ledger.store.posting import (
    build_manifest,
    carried_in,
    check_lines,
    manifest_hash,
    plan,
    post_batch,
    post_money,
    write_batch_row,
)
from tests.ledger.store.kit import allocator, request

CREATORS = ["alice", "bob", "carol"]
FIRST = {"alice": 6000, "bob": 3000, "carol": 1000}


def post(engine, req, alloc, **kw):  # type: ignore[no-untyped-def]
    with write_session(engine) as s, s.begin():
        return post_batch(s, req, alloc, **kw)


def test_plan_of_first_batch_starts_the_chain(db_url: str) -> None:
    engine = open_store(db_url)
    req = request(CREATORS)
    with read_session(engine) as s:
        p = plan(s, req, supersede=False)
    assert (p.batch_id, p.seq, p.revision, p.prev_hash, p.supersedes) == (
        req.batch_id, 1, 1, None, None)


def test_plan_of_supersede_follows_the_tip(db_url: str) -> None:
    engine = open_store(db_url)
    first = post(engine, request(CREATORS), allocator(FIRST))
    req = request(CREATORS, tag="other")
    with read_session(engine) as s:
        with pytest.raises(ResidualsError, match="already has batch"):
            plan(s, req, supersede=False)
        p = plan(s, req, supersede=True)
    assert (p.seq, p.revision, p.prev_hash, p.supersedes) == (
        2, 2, first.batch_hash, first.batch_id)


@pytest.mark.parametrize("pool", [0, -1])
def test_plan_refuses_a_pool_that_is_not_positive(db_url: str, pool: int) -> None:
    with read_session(open_store(db_url)) as s, pytest.raises(ResidualsError, match="> 0"):
        plan(s, request(CREATORS, pool=pool), supersede=False)


def test_carried_in_undoes_the_batch_being_replaced(db_url: str) -> None:
    engine = open_store(db_url)
    post(engine, request(CREATORS), allocator({"alice": 9000, "bob": 500, "carol": 500},
                                              min_payout=1000))
    post(engine, request(CREATORS, period="2026-02"),
         allocator({"alice": 9000, "bob": 600, "carol": 400}, min_payout=1000))
    with read_session(engine) as s:
        now = plan(s, request(CREATORS, period="2026-03"), supersede=False)
        again = plan(s, request(CREATORS, period="2026-02", tag="x"), supersede=True)
        assert carried_in(s, now).rows() == [("carol", 900)]
        assert carried_in(s, again).rows() == [("bob", 500), ("carol", 500)]


def test_manifest_hash_is_the_posted_batch_hash(db_url: str) -> None:
    engine = open_store(db_url)
    req = request(CREATORS)
    lines = allocator(FIRST)(pl.DataFrame(schema={S.CREATOR_ID: pl.String,
                                                  S.CARRIED_MINOR: pl.Int64})).lines
    with read_session(engine) as s:
        manifest = build_manifest(plan(s, req, supersede=False), req, lines, 0, "v1")
    out = post(engine, req, allocator(FIRST), code_version="v1")
    assert manifest["paid_minor"] == 10_000 and manifest["creators_paid"] == 3
    assert manifest_hash(manifest) == out.batch_hash


def test_post_money_deltas_have_one_shape_and_sum_to_zero(db_url: str) -> None:
    engine = open_store(db_url)
    post(engine, request(CREATORS), allocator(FIRST, min_payout=2000))
    req = request(CREATORS, tag="other", pool=12_000)
    with write_session(engine) as s:  # never committed: rolled back on close
        p = plan(s, req, supersede=True)
        lines = allocator({"alice": 7000, "bob": 4000}, withheld=1000, min_payout=2000)(
            carried_in(s, p)).lines
        lines = check_lines(lines, pool_minor=12_000, withheld_minor=1000,
                            carried_in=carried_in(s, p), creators=req.creators)
        write_batch_row(s, req, build_manifest(p, req, lines, 1000, ""))
        n, deltas = post_money(s, p, req, lines, 1000)
    assert deltas.columns == ["account_id", S.CURRENCY, "delta"]
    assert deltas.schema["account_id"] == pl.Int64 and deltas.schema["delta"] == pl.Int64
    assert int(deltas["delta"].sum()) == 0 and n > 0
    assert set(deltas[S.CURRENCY].to_list()) == {"USD"}
