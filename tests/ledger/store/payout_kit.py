"""Builders for payout tests: post a batch, complete profiles, move payouts, read balances."""

from __future__ import annotations

import polars as pl
from sqlalchemy import Engine, text

from contract import schema as S
from ledger.store import read_session, write_session
from ledger.store.payout_states import current_states, release_or_hold, transition
from ledger.store.posting import post_batch
from ledger.store.profiles import set_profile
from ledger.store.verify import verify
from tests.ledger.store.kit import allocator, request


def post(engine: Engine, period: str, amounts: dict[str, int], *, min_payout: int = 1000,
         supersede: bool = False, tag: str = "inputs-a") -> str:
    """Post a batch paying ``amounts`` (carried under ``min_payout``); its batch id."""
    with write_session(engine) as s, s.begin():
        out = post_batch(s, request(list(amounts), period=period, pool=sum(amounts.values()),
                                    tag=tag), fitted(amounts, min_payout=min_payout),
                         supersede=supersede)
    return out.batch_id


def fitted(amounts: dict[str, int], *, min_payout: int = 1):  # type: ignore[no-untyped-def]
    """:func:`allocator` of ``amounts`` for the pool the batch allocates: when pool-funded
    claim adjustments leave less than ``sum(amounts)``, the shortfall is taken from the
    creators in order (so the lines always sum to the pool)."""
    def run(carried: pl.DataFrame, pool_minor: int | None = None):  # type: ignore[no-untyped-def]
        short = 0 if pool_minor is None else sum(amounts.values()) - pool_minor
        left = {}
        for creator, amount in amounts.items():  # a handful of test creators
            take = min(amount, short)
            left[creator], short = amount - take, short - take
        return allocator(left, min_payout=min_payout)(carried)
    return run


def complete(engine: Engine, *creators: str) -> None:
    """Give each creator a payout method and an accepted tax form (releases holds)."""
    with write_session(engine) as s, s.begin():
        for c in creators:
            set_profile(s, c, payout_method=f"{c}@example.com", country="US",
                        tax_form="accepted")
            release_or_hold(s, c, source="profile")


def states(engine: Engine, batch_id: str | None = None) -> dict[str, str]:
    """creator_id -> current state of their payout (of one batch)."""
    with read_session(engine) as s:
        df = current_states(s, batch_id=batch_id)
    return dict(df.select(S.CREATOR_ID, "state").iter_rows())


def payout_of(engine: Engine, batch_id: str, creator: str) -> str:
    with read_session(engine) as s:
        df = current_states(s, batch_id=batch_id)
    return df.filter(pl.col(S.CREATOR_ID) == creator)["payout_id"][0]


def move(engine: Engine, payout: str, state: str) -> None:
    with write_session(engine) as s, s.begin():
        transition(s, payout, state, source="test")


def payable(engine: Engine, creator: str) -> int:
    with engine.connect() as conn:
        got = conn.execute(text(
            "SELECT coalesce(sum(e.amount_minor), 0) FROM entries e JOIN accounts a "
            "ON a.id = e.account_id WHERE a.code = :c"), {"c": f"payable/{creator}"}
        ).scalar_one()
    return int(got)


def balance(engine: Engine, code: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT coalesce(sum(e.amount_minor), 0) FROM entries e JOIN accounts a "
            "ON a.id = e.account_id WHERE a.code = :c"), {"c": code}).scalar_one())


def violations(engine: Engine) -> set[str]:
    with read_session(engine) as s:
        report = verify(s)
    return {str(v) for v in report.violations}
