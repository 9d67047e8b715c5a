"""Claims in the ledger store: decided once, applied once by the next batch, verified.

Every test runs on SQLite and PostgreSQL (``db_url``). Money is checked
exactly: payouts + carried out = pool - pool-funded adjustments - withheld +
adjustments + carried in, and ``verify`` is OK after each step; forgeries by
raw SQL are reported.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from contract import schema as S
from contract.errors import ResidualsError
from ledger.store import claims as C
from ledger.store import models as M
from ledger.store import open_store, read_session, write_session
from ledger.store.posting import BatchLines, post_batch
from ledger.store.verify import verify
from tests.conftest import need
from tests.ledger.store.kit import request

CREATORS = ["alice", "bob", "carol"]
_names = itertools.count()
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def even(creators: list[str], min_payout: int = 1):  # type: ignore[no-untyped-def]
    """An allocator that splits whatever pool it is given evenly (first ones get the rest)."""
    def run(carried: pl.DataFrame, pool_minor: int | None = None) -> BatchLines:
        base, extra = divmod(int(pool_minor or 0), len(creators))
        df = pl.DataFrame({S.CREATOR_ID: creators,
                           S.ALLOCATED_MINOR: [base + (i < extra) for i in range(len(creators))]},
                          schema={S.CREATOR_ID: pl.String, S.ALLOCATED_MINOR: pl.Int64})
        df = df.join(carried.rename({S.CARRIED_MINOR: S.CARRIED_IN_MINOR}), on=S.CREATOR_ID,
                     how="left").with_columns(pl.col(S.CARRIED_IN_MINOR).fill_null(0))
        total = pl.col(S.ALLOCATED_MINOR) + pl.col(S.CARRIED_IN_MINOR)
        df = df.with_columns(
            pl.lit(1 / len(creators)).alias(S.SHARE),
            pl.col(S.ALLOCATED_MINOR).cast(pl.Float64).alias(S.EXACT_MINOR),
            pl.when(total >= min_payout).then(total).otherwise(0).alias(S.PAID_MINOR),
            pl.lit(True).alias(S.ELIGIBLE), pl.lit(None, pl.String).alias(S.REASON),
        ).with_columns((total - pl.col(S.PAID_MINOR)).alias(S.CARRIED_OUT_MINOR))
        return BatchLines(df, 0)
    return run


def post(engine: Engine, period: str, pool: int = 10_000, *, tag: str = "a",
         supersede: bool = False, min_payout: int = 1):  # type: ignore[no-untyped-def]
    with write_session(engine) as s, s.begin():
        return post_batch(s, request(CREATORS, period=period, pool=pool, tag=tag),
                          even(CREATORS, min_payout), supersede=supersede)


def open_(engine: Engine, creator: str = "alice", *, now: dt.datetime = T0, days: int = 30,
          period: str = "P1") -> int:
    with write_session(engine) as s, s.begin():
        return C.open_claim(s, creator_id=creator, kind=M.COPIED_CLIP, period=period,
                            generation_id="g1", clip_id="alice-clip1", opened_by="staff",
                            now=now, expiry_days=days)


def decide(engine: Engine, claim_id: int, decision: C.Decision, now: dt.datetime = T0) -> str:
    with write_session(engine) as s, s.begin():
        return C.resolve(s, claim_id, decision, actor="admin", now=now)


def ok(engine: Engine) -> None:
    with read_session(engine) as s:
        report = verify(s)
    assert report.ok, [str(v) for v in report.violations]


def lines(engine: Engine, period: str) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT s.creator_id, s.allocated_minor, s.carried_in_minor, s.paid_minor, "
            "s.carried_out_minor FROM statements s JOIN batches b ON b.batch_id = s.batch_id "
            "WHERE b.period = :p AND b.batch_id NOT IN (SELECT supersedes_id FROM batches "
            "WHERE supersedes_id IS NOT NULL) ORDER BY s.creator_id"), {"p": period}).all()
    return pl.DataFrame([tuple(r) for r in rows], orient="row", schema=[
        S.CREATOR_ID, S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR, S.PAID_MINOR, S.CARRIED_OUT_MINOR])


@pytest.fixture
def ledger(db_url: str) -> Engine:
    engine = open_store(db_url)
    post(engine, "P1", min_payout=5000)  # everybody carries 3,333 or 3,334
    return engine


def test_pool_funded_claim_is_paid_by_the_next_batch_from_its_pool(ledger: Engine) -> None:
    cid = open_(ledger)
    assert decide(ledger, cid, C.Decision(True, 1200, M.FUNDING_POOL)) == M.UPHELD
    out = post(ledger, "P2", min_payout=5000)
    assert out.pool_minor == 10_000 - 1200
    p1, p2 = lines(ledger, "P1"), lines(ledger, "P2")
    carried_in = dict(p2.select(S.CREATOR_ID, S.CARRIED_IN_MINOR).iter_rows())
    carried_out = dict(p1.select(S.CREATOR_ID, S.CARRIED_OUT_MINOR).iter_rows())
    assert carried_in == {c: carried_out[c] + (1200 if c == "alice" else 0) for c in CREATORS}
    assert int(p2[S.ALLOCATED_MINOR].sum()) == 8800
    # conservation: payouts + carried out = pool - pool-funded + adjustments + carried in
    assert int((p2[S.PAID_MINOR] + p2[S.CARRIED_OUT_MINOR]).sum()) == \
        10_000 - 1200 + 1200 + int(p1[S.CARRIED_OUT_MINOR].sum())
    ok(ledger)
    with read_session(ledger) as s:
        shown = C.claims(s, claim_id=cid).row(0, named=True)
        assert shown[C.STATE] == M.UPHELD and shown["applied_batch"] == out.batch_id
        assert C.creator_adjustments(s, "alice")[C.CLAIM_ID].to_list() == [cid]
    post(ledger, "P3")  # applied once: the next batch does not apply it again
    assert int(lines(ledger, "P3")[S.ALLOCATED_MINOR].sum()) == 10_000
    with ledger.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM transactions WHERE kind = 'adjustment'"))
        assert n.scalar_one() == 1
    ok(ledger)


def test_platform_funded_claim_leaves_the_pool_whole(ledger: Engine) -> None:
    cid = open_(ledger, "bob")
    decide(ledger, cid, C.Decision(True, 777, M.FUNDING_PLATFORM))
    out = post(ledger, "P2")
    assert out.pool_minor == 10_000
    with read_session(ledger) as s:
        bal = s.execute(text("SELECT b.balance_minor FROM balances b JOIN accounts a ON "
                             "a.id = b.account_id WHERE a.code = 'platform'")).scalar_one()
    assert bal == -777
    ok(ledger)


def test_supersede_reapplies_the_claim_exactly_once(ledger: Engine) -> None:
    cid = open_(ledger)
    decide(ledger, cid, C.Decision(True, 500, M.FUNDING_POOL))
    first = post(ledger, "P2", min_payout=100_000)
    second = post(ledger, "P2", tag="b", supersede=True, min_payout=100_000)
    assert second.superseded == first.batch_id and second.pool_minor == 9500
    ok(ledger)
    p1, p2 = lines(ledger, "P1"), lines(ledger, "P2")
    alice = p2.filter(pl.col(S.CREATOR_ID) == "alice").row(0, named=True)
    assert alice[S.CARRIED_IN_MINOR] == p1.filter(pl.col(S.CREATOR_ID) == "alice")[
        S.CARRIED_OUT_MINOR][0] + 500
    with read_session(ledger) as s:
        assert C.claims(s, claim_id=cid)["applied_batch"].to_list() == [second.batch_id]
        assert s.execute(text("SELECT count(*) FROM claim_events WHERE outcome = 'applied'")
                         ).scalar_one() == 2  # one per batch; one of them stands
    post(ledger, "P3")
    ok(ledger)


def test_pool_funded_claims_that_do_not_fit_wait_for_the_next_batch(ledger: Engine) -> None:
    big, small = open_(ledger, "alice"), open_(ledger, "bob")
    decide(ledger, big, C.Decision(True, 10_000, M.FUNDING_POOL))  # the whole pool: waits
    decide(ledger, small, C.Decision(True, 50, M.FUNDING_POOL))
    assert post(ledger, "P2").pool_minor == 10_000  # FIFO: nothing after the big one either
    assert post(ledger, "P3", pool=20_000).pool_minor == 20_000 - 10_050
    ok(ledger)


def test_a_claim_is_decided_once(ledger: Engine) -> None:
    cid = open_(ledger)
    decide(ledger, cid, C.Decision(False, reason="no <b>copy</b> found\n'; DROP TABLE claims"))
    with pytest.raises(ResidualsError, match="already rejected"):
        decide(ledger, cid, C.Decision(True, 100))
    with read_session(ledger) as s:
        assert C.claims(s, claim_id=cid)[S.REASON][0] == \
            "no <b>copy</b> found\n'; DROP TABLE claims"
    # a writer that skipped the checks (a stale read) is refused by the database
    with pytest.raises(IntegrityError), ledger.begin() as conn:
        conn.execute(text("INSERT INTO claim_events (claim_id, seq, outcome, amount_minor, "
                          "currency, funding, actor, at) VALUES (:c, 9, 'upheld', 5, 'USD', "
                          "'pool', 'x', :t)"), {"c": cid, "t": T0})


@pytest.mark.parametrize("sql", ["UPDATE claims SET period = 'P9'", "DELETE FROM claim_events",
                                 "UPDATE claim_events SET amount_minor = 1"])
def test_claims_are_append_only(ledger: Engine, sql: str) -> None:
    cid = open_(ledger)
    decide(ledger, cid, C.Decision(True, 100))
    with pytest.raises(DBAPIError, match="append-only"), ledger.begin() as conn:
        conn.execute(text(sql))


def test_claims_expire_with_a_recorded_outcome(ledger: Engine) -> None:
    cid = open_(ledger, now=T0, days=30)
    other = open_(ledger, "bob", now=T0 + dt.timedelta(days=10), days=3650)
    with write_session(ledger) as s, s.begin():
        assert C.expire_due(s, T0 + dt.timedelta(days=29)) == 0
        assert C.expire_due(s, T0 + dt.timedelta(days=30)) == 1
        assert C.expire_due(s, T0 + dt.timedelta(days=30)) == 0
    with pytest.raises(ResidualsError, match="already expired"):
        decide(ledger, cid, C.Decision(True, 100), now=T0 + dt.timedelta(days=31))
    with read_session(ledger) as s:
        rows = C.claims(s)
    state = dict(rows.select(C.CLAIM_ID, C.STATE).iter_rows())
    assert state == {cid: M.EXPIRED, other: C.OPEN}
    expired = rows.filter(pl.col(C.CLAIM_ID) == cid).row(0, named=True)
    assert expired["decided_by"] == C.SYSTEM_ACTOR
    assert expired["decided_at"] == T0 + dt.timedelta(days=30)
    old = open_(ledger, "carol", now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), days=1)
    post(ledger, "P2")  # a batch run after carol's deadline (real clock) expires it
    with read_session(ledger) as s:
        assert (C.claim_state(s, old), C.claim_state(s, other)) == (M.EXPIRED, C.OPEN)


@pytest.mark.parametrize("bad, match", [
    (dict(kind="other"), "kind='other'"), (dict(period="P7"), "period='P7'"),
    (dict(creator_id="nobody"), "creator_id='nobody'"),
    (dict(generation_id=" "), "`generation_id`: must not be empty"),
    (dict(clip_id="x" * 201), "`clip_id`: 201 characters"),
    (dict(kind=M.WRONG_AMOUNT, text="a\x00b"), "`text`: contains a NUL"),
    (dict(kind=M.WRONG_AMOUNT, text="y" * (S.MAX_CLAIM_TEXT_CHARS + 1)), "`text`: 2001"),
])
def test_bad_claims_are_refused_naming_the_parameter(ledger: Engine, bad: dict, match: str
                                                     ) -> None:
    args = dict(creator_id="alice", kind=M.COPIED_CLIP, period="P1", generation_id="g",
                clip_id="k", opened_by="t") | bad
    with pytest.raises(ResidualsError, match=match), write_session(ledger) as s, s.begin():
        C.open_claim(s, **args)


def test_forged_adjustment_is_reported_by_verify(ledger: Engine) -> None:
    """A sealed, balanced adjustment tagged with a batch, balances updated: no claim explains it."""
    with ledger.begin() as conn:
        bid = conn.execute(text("SELECT batch_id FROM batches")).scalar_one()
        fund, alice = (conn.execute(text("SELECT id FROM accounts WHERE code = :c"), {"c": c}
                                    ).scalar_one() for c in ("fund", "payable/alice"))
        conn.execute(text("INSERT INTO transactions (id, kind, batch_id, memo) VALUES "
                          "(9001, 'adjustment', :b, 'forged')"), {"b": bid})
        for acc, amt in ((fund, -999), (alice, 999)):
            conn.execute(text("INSERT INTO entries (transaction_id, account_id, amount_minor, "
                              "currency) VALUES (9001, :a, :m, 'USD')"), {"a": acc, "m": amt})
            conn.execute(text("UPDATE balances SET balance_minor = balance_minor + :m WHERE "
                              "account_id = :a"), {"a": acc, "m": amt})
        conn.execute(text("INSERT INTO transaction_seals (transaction_id) VALUES (9001)"))
    with read_session(ledger) as s:
        report = verify(s)
    assert "transactions vs manifests" in {v.check for v in report.violations}


def test_forged_applied_event_is_reported_by_verify(ledger: Engine) -> None:
    cid = open_(ledger)
    with ledger.begin() as conn:
        bid = conn.execute(text("SELECT batch_id FROM batches")).scalar_one()
        conn.execute(text("INSERT INTO claim_events (claim_id, seq, outcome, batch_id, actor, at)"
                          " VALUES (:c, 1, 'applied', :b, 'x', :t)"), {"c": cid, "b": bid,
                                                                         "t": T0})
    with read_session(ledger) as s:
        report = verify(s)
    assert [v.check for v in report.violations] == ["claims"]


def _examples() -> int:
    return settings().max_examples


@st.composite
def claim_plans(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(0, 5))
    return [(draw(st.sampled_from(CREATORS)), draw(st.integers(1, 6000)),
             draw(st.sampled_from(M.FUNDINGS)), draw(st.sampled_from(["uphold", "reject"])))
            for _ in range(n)], draw(st.integers(1, 20_000)), draw(st.integers(1, 9000))


def _conserves(db_url: str, case) -> None:  # type: ignore[no-untyped-def]
    plan, pool, min_payout = case
    engine = open_store(db_url)
    try:
        post(engine, "P1", pool, min_payout=min_payout)
        upheld = []
        for who, amount, funding, what in plan:
            cid = open_(engine, who)
            decide(engine, cid, C.Decision(what == "uphold", amount, funding, reason="no"))
            if what == "uphold":
                upheld.append((amount, funding))
        before = int(lines(engine, "P1")[S.CARRIED_OUT_MINOR].sum())
        out = post(engine, "P2", pool, min_payout=min_payout)
        p2 = lines(engine, "P2")
        with read_session(engine) as s:
            applied = C.manifest_adjustments(s)
        taken = int(applied.filter(pl.col(C.FUNDING) == M.FUNDING_POOL)[S.AMOUNT_MINOR].sum())
        added = int(applied[S.AMOUNT_MINOR].sum())
        assert out.pool_minor == pool - taken
        assert int((p2[S.PAID_MINOR] + p2[S.CARRIED_OUT_MINOR]).sum()) == \
            pool - taken + added + before
        # everything platform-funded is applied; pool-funded ones while the pool lasts
        assert added - taken == sum(a for a, f in upheld if f == M.FUNDING_PLATFORM)
        ok(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_ledger(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """(backend, make): ``make()`` returns the URL of a new, migrated, empty ledger: a copy
    of a migrated SQLite file, or a PostgreSQL database made from a migrated template (so
    an example costs no migration)."""
    if request.param == "sqlite":
        template = tmp_path / "template.db"
        open_store(f"sqlite:///{template}").dispose()

        def make() -> str:
            path = tmp_path / f"ledger{next(_names)}.db"
            shutil.copyfile(template, path)
            return f"sqlite:///{path}"
        return request.param, make
    server = request.getfixturevalue("pg_server")
    need(server is not None, "PostgreSQL server binaries (initdb, pg_ctl) not installed")
    template = f"claims_tmpl{os.getpid()}_{next(_names)}"
    server.admin(f"CREATE DATABASE {template}")
    open_store(server.url(template)).dispose()

    def make_pg() -> str:
        name = f"claims{os.getpid()}_{next(_names)}"
        server.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return server.url(name)
    return request.param, make_pg


def test_money_is_conserved_with_adjustments(fresh_ledger) -> None:  # type: ignore[no-untyped-def]
    """SQLite runs the profile's examples (1,000 in CI); PostgreSQL a tenth of them: an
    example there creates a database, and that the two backends keep identical ledgers is
    the stateful test's job (tests/ledger/store/test_payouts_stateful.py)."""
    backend, make = fresh_ledger
    n = _examples() if backend == "sqlite" else max(10, _examples() // 10)

    @settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=claim_plans())
    def run(case) -> None:  # type: ignore[no-untyped-def]
        _conserves(make(), case)

    run()
