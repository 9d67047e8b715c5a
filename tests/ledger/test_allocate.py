"""Allocation end to end on a tiny period, with numbers computed by hand.

The period is the one in ``test_components.py``: creators a, b, c (c opted
out); a has 2 clips, b 1, c 1; generations g1 (a 0.75, b 0.25), g2 (c 1.0),
g3 (a 1.0), g4 (nothing); revenue x 1000, y 3000.
"""

from __future__ import annotations

import polars as pl
import pytest

from contract import schema as S
from contract.errors import ContractError, ResidualsError
from ledger.allocate import (
    ALLOCATED_MINOR,
    CARRIED_IN_MINOR,
    CARRIED_MINOR,
    CARRIED_OUT_MINOR,
    ELIGIBLE,
    FRAME_COLUMNS,
    PAID_MINOR,
    REASON,
    AllocationInputs,
    allocate,
    pool_from,
)
from ledger.policy import parse_policy
from tests.ledger.test_components import inputs

USD = '\n[pool]\ncurrency = "USD"\n'


def run(body: str, pool: int = 10000, carried: dict[str, int] | None = None,
        inp: AllocationInputs | None = None):  # noqa: ANN201
    inp = inp or inputs()
    if carried is not None:
        inp = AllocationInputs(inp.creators, inp.clips, inp.attributions, inp.generations,
                               inp.accounts, pl.DataFrame({S.CREATOR_ID: list(carried),
                                                           CARRIED_MINOR: list(carried.values())}))
    return allocate(parse_policy(body + USD, source="p.toml"), inp, pool_minor=pool,
                    batch_id="batch-1")


def col(alloc, name: str) -> list:  # noqa: ANN001
    return alloc.frame[name].to_list()


def test_attribution_pro_rata() -> None:
    a = run("[components]\nattribution = 1")
    # eligible a 1.75, b 0.25 (c opted out): 87.5% / 12.5% of 100.00
    assert col(a, S.CREATOR_ID) == ["a", "b", "c"]
    assert col(a, ALLOCATED_MINOR) == [8750, 1250, 0]
    assert col(a, ELIGIBLE) == [True, True, False]
    assert col(a, REASON) == [None, None, "opted out"]
    assert a.withheld_minor == 0 and a.pool_minor == 10000 and a.currency == "USD"
    assert a.frame.columns == list(FRAME_COLUMNS)
    assert col(a, S.SHARE) == pytest.approx([0.875, 0.125, 0.0])


def test_attribution_withhold_unattributed() -> None:
    a = run('[components]\nattribution = 1\n[rules]\nunattributed = "withhold"')
    # 4 generations; g2 goes to opted-out c (redistributed), g4 to nobody (withheld):
    # a 1.75 / 3, b 0.25 / 3, withheld 1 / 3
    assert col(a, ALLOCATED_MINOR) == [5833, 833, 0]
    assert a.withheld_minor == 3334
    assert sum(col(a, ALLOCATED_MINOR)) + a.withheld_minor == 10000


def test_hybrid_70_30() -> None:
    a = run("[components]\nattribution = 0.7\ncorpus = 0.3")
    # attribution a .875 b .125; corpus a 2/3 b 1/3
    want_a = 0.7 * 0.875 + 0.3 * 2 / 3
    assert col(a, ALLOCATED_MINOR)[0] in (int(want_a * 10000), int(want_a * 10000) + 1)
    assert sum(col(a, ALLOCATED_MINOR)) == 10000


def test_equal_and_opted_in() -> None:
    a = run("[components]\nequal = 1\n[rules]\nexclude_opted_out = false", pool=10001)
    assert sorted(col(a, ALLOCATED_MINOR)) == [3333, 3334, 3334]


def test_min_clips_excludes() -> None:
    a = run("[components]\nequal = 1\n[rules]\neligibility_min_clips = 2")
    assert col(a, ALLOCATED_MINOR) == [10000, 0, 0]
    assert col(a, REASON) == [None, "fewer than 2 clips", "opted out"]


def test_min_share_threshold() -> None:
    a = run("[components]\nattribution = 1\n[rules]\neligibility_min_share = 0.2")
    assert col(a, ALLOCATED_MINOR) == [10000, 0, 0]
    assert col(a, REASON)[1] == "below minimum share"
    assert col(a, ELIGIBLE) == [True, False, False]


def test_cap_redistributes() -> None:
    a = run("[components]\nattribution = 0.5\nequal = 0.5\n[rules]\ncap_share = 0.6"
            "\nexclude_opted_out = false")
    # shares: attribution a 1.75/3, b .25/3, c 1/3; equal 1/3 each
    # a 0.4583 b 0.2083 c 0.3333: nobody above 0.6 -> unchanged
    got = col(a, ALLOCATED_MINOR)
    assert sum(got) == 10000 and all(g in (w, w + 1) for g, w in zip(got, [4583, 2083, 3333]))
    b = run("[components]\nattribution = 1\n[rules]\ncap_share = 0.5\nexclude_opted_out = false")
    # a 1.75/3 = 0.583 > 0.5 -> 5000; b and c share 5000 as .25:1 -> 1000, 4000
    assert col(b, ALLOCATED_MINOR) == [5000, 1000, 4000]


def test_cap_impossible() -> None:
    with pytest.raises(ResidualsError, match="rules.cap_share"):
        run("[components]\nattribution = 1\n[rules]\ncap_share = 0.3")


def test_floor_funded_by_the_others() -> None:
    a = run('[components]\nattribution = 1\n[rules]\nfloor = "20.00"')
    # b's 12.50 rises to 20.00, a pays: 80.00
    assert col(a, ALLOCATED_MINOR) == [8000, 2000, 0]
    with pytest.raises(ResidualsError, match="rules.floor_share"):
        run("[components]\nattribution = 1\n[rules]\nfloor_share = 0.6")


def test_licence_multipliers_apply_before_aggregation() -> None:
    a = run('[components]\nattribution = 1\n[rules]\nlicense_multipliers = { "editorial" = 0.0 }')
    # a2 (editorial) earns nothing: a 0.75, b 0.25
    assert col(a, ALLOCATED_MINOR) == [7500, 2500, 0]


def test_min_payout_carries_forward() -> None:
    a = run('[components]\nattribution = 1\n[rules]\nmin_payout = "20.00"',
            carried={"b": 500, "c": 3000})
    assert col(a, ALLOCATED_MINOR) == [8750, 1250, 0]
    assert col(a, CARRIED_IN_MINOR) == [0, 500, 3000]
    assert col(a, PAID_MINOR) == [8750, 0, 3000]  # c's old balance is still owed
    assert col(a, CARRIED_OUT_MINOR) == [0, 1750, 0]
    assert col(a, REASON) == [None, "below minimum payout (carried forward)", "opted out"]


def test_zero_pool() -> None:
    a = run("[components]\nattribution = 1", pool=0)
    assert col(a, ALLOCATED_MINOR) == [0, 0, 0] and a.withheld_minor == 0


def test_nothing_attributed_withholds_everything() -> None:
    inp = inputs()
    empty = AllocationInputs(inp.creators, inp.clips, inp.attributions.clear(),
                             inp.generations, inp.accounts)
    a = run("[components]\nattribution = 1", inp=empty)
    assert col(a, ALLOCATED_MINOR) == [0, 0, 0] and a.withheld_minor == 10000
    assert col(a, REASON) == ["no share", "no share", "opted out"]
    # another component keeps its weight; the empty one withholds its own
    b = run("[components]\nattribution = 0.6\ncorpus = 0.4", inp=empty)
    assert b.withheld_minor == 6000 and sum(col(b, ALLOCATED_MINOR)) == 4000


def test_unknown_clip_or_creator_in_attributions() -> None:
    inp = inputs()
    bad = inp.attributions.with_columns(pl.lit("zz").alias(S.CLIP_ID))
    # the clip matters (and is checked) when its licence sets the credit
    with pytest.raises(ContractError, match="clip 'zz' is not in clips"):
        run("[components]\nattribution = 1\n[rules]\nlicense_default = 0.5", inp=AllocationInputs(
            inp.creators, inp.clips, bad, inp.generations, inp.accounts))
    stray = inp.attributions.with_columns(pl.lit("ghost").alias(S.CREATOR_ID))
    with pytest.raises(ContractError, match="creator 'ghost'"):
        run("[components]\nattribution = 1", inp=AllocationInputs(
            inp.creators, inp.clips, stray, inp.generations, inp.accounts))


def test_bad_carried_in() -> None:
    with pytest.raises(ResidualsError, match="negative"):
        run("[components]\nattribution = 1", carried={"a": -1})
    with pytest.raises(ResidualsError, match="'zed' is not in creators.parquet"):
        run("[components]\nattribution = 1", carried={"a": 5, "zed": 10})
    inp = inputs()
    twice = AllocationInputs(inp.creators, inp.clips, inp.attributions, inp.generations,
                             inp.accounts, pl.DataFrame({S.CREATOR_ID: ["a", "a"],
                                                         CARRIED_MINOR: [1, 2]}))
    with pytest.raises(ResidualsError, match="'a' appears twice"):
        run("[components]\nattribution = 1", inp=twice)


def test_pool_from() -> None:
    accounts = pl.DataFrame({S.ACCOUNT_ID: ["x", "y"], S.REVENUE_MINOR: [1001, 2000]})
    fixed = parse_policy('[components]\nequal = 1\n[pool]\ncurrency = "EUR"\namount = "250.50"')
    assert pool_from(fixed, accounts) == (25050, "EUR")
    assert pool_from(fixed, accounts, pool_minor=7) == (7, "EUR")
    share = parse_policy('[components]\nequal = 1\n[pool]\ncurrency = "JPY"\nrevenue_share = 0.3')
    assert pool_from(share, accounts) == (900, "JPY")  # floor(0.3 * 3001)
    bare = parse_policy("[components]\nequal = 1", source="bare.toml")
    assert pool_from(bare, accounts, pool_minor=5, currency="bhd") == (5, "BHD")
    with pytest.raises(ResidualsError, match="no currency"):
        pool_from(bare, accounts, pool_minor=5)
    with pytest.raises(ResidualsError, match="no pool"):
        pool_from(bare, accounts, currency="USD")
    with pytest.raises(ResidualsError, match="unknown currency"):
        pool_from(bare, accounts, pool_minor=5, currency="XXQ")
    with pytest.raises(ResidualsError, match="pool.amount: is in EUR"):
        pool_from(fixed, accounts, currency="USD")
    assert pool_from(fixed, accounts, pool_minor=9, currency="USD") == (9, "USD")
    with pytest.raises(ResidualsError, match=r"^pool_minor=-3: expected an integer >= 0"):
        pool_from(fixed, accounts, pool_minor=-3)
    with pytest.raises(ResidualsError, match="or pass `pool_minor`$"):
        pool_from(bare, accounts, currency="USD")
    with pytest.raises(ResidualsError, match="or pass `currency`$"):
        pool_from(bare, accounts, pool_minor=5)


def test_policy_pool_used_when_not_overridden() -> None:
    policy = parse_policy('[components]\nattribution = 1\n[pool]\ncurrency = "USD"\n'
                          "revenue_share = 0.5")
    a = allocate(policy, inputs(), batch_id="b")
    assert a.pool_minor == 2000 and sum(col(a, ALLOCATED_MINOR)) == 2000


@pytest.mark.parametrize(("table", "column", "value"), [
    ("attributions", S.WEIGHT, -0.5), ("attributions", S.WEIGHT, float("nan")),
    ("accounts", S.REVENUE_MINOR, -1),
])
def test_negative_inputs_are_refused(table: str, column: str, value: float) -> None:
    inp = inputs()
    frames = {"attributions": inp.attributions, "accounts": inp.accounts}
    frames[table] = frames[table].with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(value).otherwise(pl.col(column))
        .alias(column))
    bad = AllocationInputs(inp.creators, inp.clips, frames["attributions"], inp.generations,
                           frames["accounts"])
    with pytest.raises(ContractError, match=f"{table}.parquet, row 0, column {column}"):
        run("[components]\nattribution = 1", inp=bad)
