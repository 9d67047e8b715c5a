"""Posting batches: balances, idempotency, supersede, carry-forward, bad input."""

from __future__ import annotations

import polars as pl
import pytest

from contract import schema as S
from contract.errors import ResidualsError
from ledger.store import balances, batches, creator_clip_earnings, creator_statement, payouts
from ledger.store.engine import open_store, read_session, write_session
from ledger.store.posting import post_batch
from ledger.store.verify import verify
from tests.ledger.store.kit import allocator, request, split

CREATORS = ["alice", "bob", "carol"]


def post(engine, req, alloc, **kw):  # type: ignore[no-untyped-def]
    with write_session(engine) as s, s.begin():
        return post_batch(s, req, alloc, **kw)


def balance_of(engine, code: str) -> int:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        b = balances(s).filter(pl.col(S.ACCOUNT_CODE) == code)
    return int(b[S.BALANCE_MINOR].sum())


def assert_verified(engine) -> None:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        report = verify(s)
    assert report.ok, [str(v) for v in report.violations]


def test_post_moves_pool_and_pays(db_url: str) -> None:
    engine = open_store(db_url)
    amounts = {"alice": 6000, "bob": 3000, "carol": 1000}
    out = post(engine, request(CREATORS), allocator(amounts, min_payout=2000))
    assert out.status == "posted" and out.creators_paid == 2 and out.paid_minor == 9000
    assert balance_of(engine, "fund") == -10_000
    assert balance_of(engine, "transit") == 9000
    assert balance_of(engine, "payable/carol") == 1000  # carried forward
    assert balance_of(engine, "payable/alice") == 0
    with read_session(engine) as s:
        pay = payouts(s, out.batch_id)
        assert pay[S.CREATOR_ID].to_list() == ["alice", "bob"]
        assert pay[S.AMOUNT_MINOR].to_list() == [6000, 3000]
        assert pay[S.REFERENCE][0] == f"RSD-{out.batch_id[:12]}-alice"
        st = creator_statement(s, "carol")
        assert st.select(S.ALLOCATED_MINOR, S.PAID_MINOR, S.CARRIED_OUT_MINOR).row(0) == (
            1000, 0, 1000)
        assert st[S.BATCH_HASH][0] == out.batch_hash
        clips = creator_clip_earnings(s, "alice")
        assert clips[S.CLIP_ID].to_list() == ["alice-clip1", "alice-clip2"]
        assert clips[S.EARNED_MINOR_EST].to_list() == pytest.approx([4500.0, 1500.0])
        assert batches(s)[S.BATCH_HASH].to_list() == [out.batch_hash]
    assert_verified(engine)


def test_carry_forward_reaches_minimum_next_period(db_url: str) -> None:
    engine = open_store(db_url)
    post(engine, request(CREATORS), allocator({"alice": 9000, "bob": 500, "carol": 500},
                                              min_payout=800))
    out = post(engine, request(CREATORS, period="2026-02"),
               allocator({"alice": 9000, "bob": 500, "carol": 500}, min_payout=800))
    with read_session(engine) as s:
        st = creator_statement(s, "bob", "2026-02")
    assert st.select(S.CARRIED_IN_MINOR, S.ALLOCATED_MINOR, S.PAID_MINOR,
                     S.CARRIED_OUT_MINOR).row(0) == (500, 500, 1000, 0)
    assert out.seq == 2
    assert balance_of(engine, "payable/bob") == 0
    assert_verified(engine)


def test_same_batch_twice_is_a_noop(db_url: str) -> None:
    engine = open_store(db_url)
    req, alloc = request(CREATORS), allocator(split(CREATORS, 10_000))
    first = post(engine, req, alloc)
    again = post(engine, req, alloc)
    assert again.status == "exists" and again.batch_id == first.batch_id
    assert again.batch_hash == first.batch_hash
    with read_session(engine) as s:
        assert batches(s).height == 1
    assert balance_of(engine, "fund") == -10_000
    assert_verified(engine)


def test_different_batch_same_period_refused_without_supersede(db_url: str) -> None:
    engine = open_store(db_url)
    post(engine, request(CREATORS), allocator(split(CREATORS, 10_000)))
    with pytest.raises(ResidualsError, match="already has batch.*`supersede`"):
        post(engine, request(CREATORS, tag="inputs-b"), allocator(split(CREATORS, 10_000)))
    with read_session(engine) as s:
        assert batches(s).height == 1


def test_supersede_reverses_old_and_posts_new(db_url: str) -> None:
    engine = open_store(db_url)
    old = post(engine, request(CREATORS), allocator({"alice": 8000, "bob": 1500, "carol": 500},
                                                    min_payout=1000))
    new = post(engine, request(CREATORS, tag="inputs-b"),
               allocator({"alice": 5000, "bob": 4000, "carol": 1000}, min_payout=1000),
               supersede=True)
    assert new.status == "posted" and new.superseded == old.batch_id
    assert balance_of(engine, "fund") == -10_000  # reversed then re-posted, not doubled
    assert balance_of(engine, "transit") == 10_000
    assert balance_of(engine, "payable/carol") == 0  # the old carry was reversed
    with read_session(engine) as s:
        bs = batches(s)
        assert bs[S.SUPERSEDED].to_list() == [True, False]
        assert bs[S.PREV_HASH][1] == old.batch_hash
        st = creator_statement(s, "carol", "2026-01")
        assert st[S.CARRIED_IN_MINOR].to_list() == [0]
        assert st[S.PAID_MINOR].to_list() == [1000]
        assert creator_statement(s, "carol", include_superseded=True).height == 2
    again = post(engine, request(CREATORS), allocator({"alice": 8000, "bob": 1500, "carol": 500}))
    assert again.status == "exists" and again.superseded_by == new.batch_id
    assert_verified(engine)


def test_only_newest_batch_can_be_superseded(db_url: str) -> None:
    engine = open_store(db_url)
    post(engine, request(CREATORS), allocator(split(CREATORS, 10_000)))
    post(engine, request(CREATORS, period="2026-02"), allocator(split(CREATORS, 10_000)))
    with pytest.raises(ResidualsError, match="^`supersede`: batch .* not the newest"):
        post(engine, request(CREATORS, tag="x"), allocator(split(CREATORS, 10_000)),
             supersede=True)


@pytest.mark.parametrize("amounts, withheld, match", [
    ({"alice": 5000, "bob": 4000}, 0, r"allocated 9000 \+ withheld 0 != pool 10000"),
    ({"alice": 10_000, "mallory": 0}, 0, "'mallory' is not in creators"),
    ({"alice": 11_000, "bob": -1000}, 0, "expected an amount >= 0"),
])
def test_bad_allocation_posts_nothing(db_url: str, amounts, withheld, match) -> None:  # type: ignore[no-untyped-def]
    engine = open_store(db_url)
    with pytest.raises(ResidualsError, match=match):
        post(engine, request(CREATORS), allocator(amounts, withheld=withheld))
    with read_session(engine) as s:
        assert batches(s).height == 0 and balances(s).height == 0
    assert_verified(engine)


def test_pool_must_be_positive(db_url: str) -> None:
    engine = open_store(db_url)
    with pytest.raises(ResidualsError, match=r"pool_minor=0: expected > 0"):
        post(engine, request(CREATORS, pool=0), allocator({"alice": 0}))


def test_currency_must_match_existing_batches(db_url: str) -> None:
    engine = open_store(db_url)
    post(engine, request(CREATORS), allocator(split(CREATORS, 10_000)))
    with pytest.raises(ResidualsError, match="^currency=EUR: .*USD"):
        post(engine, request(CREATORS, period="2026-02", currency="EUR"),
             allocator(split(CREATORS, 10_000)))


def test_withheld_goes_to_platform(db_url: str) -> None:
    engine = open_store(db_url)
    post(engine, request(CREATORS), allocator(split(CREATORS, 10_000, 1000), withheld=1000))
    assert balance_of(engine, "platform") == 1000
    assert_verified(engine)
