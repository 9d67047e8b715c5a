"""The fast path of allocation (KeyIndex positions, dense sums) against the
general path (string group-by and joins): the same numbers, bit for bit."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import schema as S
from ledger import components as C
from ledger.allocate import AllocationInputs, allocate, prepare
from ledger.components import KeyIndex
from ledger.money import exact_group_sum, exact_position_sum
from ledger.policy import parse_policy

SHORT_IDS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=4)


@given(st.lists(SHORT_IDS, unique=True, max_size=40), st.data())
def test_positions_match_a_dict(keys: list[str], data: st.DataObject) -> None:
    keys = [k for k in keys if len(k.encode()) <= 12]
    index = KeyIndex.build(pl.Series(keys, dtype=pl.String))
    assert index is not None
    rows = data.draw(st.lists(st.sampled_from(keys), max_size=60)) if keys else []
    got = index.positions(pl.Series(rows, dtype=pl.String))
    assert got is not None
    assert got.tolist() == [keys.index(r) for r in rows]
    stranger = data.draw(SHORT_IDS)
    if stranger not in keys:
        assert index.positions(pl.Series([*rows, stranger], dtype=pl.String)) is None


def test_positions_over_chunks_and_many_keys() -> None:
    keys = pl.Series([f"k{i:07d}" for i in range(50_000)])
    index = KeyIndex.build(keys)
    assert index is not None and len(index._tables) > 1  # some keys share level-0 slots
    rng = np.random.default_rng(3)
    picks = rng.integers(0, keys.len(), 300_000)
    rows = keys.gather(picks)
    chunked = pl.concat([rows.slice(0, 1000), rows.slice(1000, 5), rows.slice(1005)],
                        rechunk=False)
    assert chunked.n_chunks() == 3
    assert np.array_equal(index.positions(chunked), picks)
    assert np.array_equal(index.positions(rows.slice(17, 1000)), picks[17:1017])


def test_build_refuses_what_it_cannot_index() -> None:
    assert KeyIndex.build(pl.Series(["a", "b", "a"])) is None  # repeated
    assert KeyIndex.build(pl.Series(["a", None])) is None
    assert KeyIndex.build(pl.Series(["a", "thirteen-byte"])) is None  # not inline
    twelve = KeyIndex.build(pl.Series(["twelve-bytes", "", "é"]))
    assert twelve is not None
    assert twelve.positions(pl.Series(["", "é", "twelve-bytes"])).tolist() == [1, 2, 0]
    assert twelve.positions(pl.Series(["twelve-bytes!"])) is None
    empty = KeyIndex.build(pl.Series(["x"]))
    assert empty.positions(pl.Series([""])) is None  # matches an empty slot: refused


def test_exact_position_sum_equals_exact_group_sum() -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 300, 20_000)
    vals = rng.random(20_000) ** 5 * 1e3
    df = pl.DataFrame({"k": keys, "v": vals})
    ref = exact_group_sum(df, "k", "v", "s").sort("k")
    dense = exact_position_sum(keys, vals, 300)
    assert np.array_equal(dense[ref["k"].to_numpy()], ref["s"].to_numpy())
    assert dense[np.setdiff1d(np.arange(300), keys)].sum() == 0.0


POLICIES = [
    "[components]\nattribution = 0.7\ncorpus = 0.3\n[rules]\nexclude_opted_out = true",
    "[components]\nattribution = 1\n[rules]\nunattributed = \"withhold\"",
    "[components]\ncorpus = 1\n[corpus]\nby = \"duration\"",
    "[components]\nattribution = 0.4\ncorpus = 0.3\nuser_centric = 0.2\nequal = 0.1\n"
    "[rules]\neligibility_min_clips = 2\nlicense_multipliers = { A = 0.5, B = 2.0 }",
    "[components]\nattribution = 0.8\nequal = 0.2\n[rules]\ncap_share = 0.01",
]


def _inputs(n: int, long_ids: bool = False) -> AllocationInputs:
    rng = np.random.default_rng(n)
    pad = "-a-long-creator-id" if long_ids else ""
    cid = [f"c{i}{pad}" for i in rng.permutation(n)]
    owners = rng.integers(0, n, 3 * n)
    clips = pl.DataFrame({S.CLIP_ID: [f"k{j}" for j in range(3 * n)],
                          S.CREATOR_ID: [cid[o] for o in owners],
                          S.DURATION_S: rng.random(3 * n) * 60,
                          S.LICENSE: rng.choice(["A", "B", "C"], 3 * n)})
    pick = rng.integers(0, 3 * n, 10 * n)
    attr = pl.DataFrame({S.GENERATION_ID: [f"g{g // 10}" for g in range(10 * n)],
                         S.CLIP_ID: clips[S.CLIP_ID].gather(pick),
                         S.CREATOR_ID: clips[S.CREATOR_ID].gather(pick),
                         S.WEIGHT: rng.random(10 * n) ** 3})
    gens = pl.DataFrame({S.GENERATION_ID: [f"g{g}" for g in range(n)],
                         S.ACCOUNT_ID: [f"a{a}" for a in rng.integers(0, 5, n)]})
    accounts = pl.DataFrame({S.ACCOUNT_ID: [f"a{a}" for a in range(5)],
                             S.REVENUE_MINOR: rng.integers(0, 10_000, 5)})
    creators = pl.DataFrame({S.CREATOR_ID: cid, S.OPTED_OUT: rng.random(n) < 0.1})
    return AllocationInputs(creators, clips, attr, gens, accounts)


@pytest.mark.parametrize("text", POLICIES)
def test_fast_path_equals_the_general_path(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = parse_policy(text + "\n[pool]\ncurrency = \"USD\"\n")
    inp = _inputs(2_000)
    period = prepare(policy, inp)
    assert period.index is not None and period.clip_positions is not None
    fast = allocate(policy, inp, pool_minor=123_456_789, batch_id="b")
    monkeypatch.setattr(C.KeyIndex, "build", classmethod(lambda cls, keys: None))
    assert prepare(policy, inp).index is None
    slow = allocate(policy, inp, pool_minor=123_456_789, batch_id="b")
    assert fast.frame.equals(slow.frame)
    assert fast.withheld_minor == slow.withheld_minor


def test_long_ids_take_the_general_path() -> None:
    policy = parse_policy(POLICIES[0] + "\n[pool]\ncurrency = \"USD\"\n")
    inp = _inputs(300, long_ids=True)
    assert prepare(policy, inp).index is None
    alloc = allocate(policy, inp, pool_minor=10_000, batch_id="b")
    assert alloc.allocated_minor + alloc.withheld_minor == 10_000


def test_a_stray_creator_falls_back_and_is_reported() -> None:
    from contract.errors import ContractError

    policy = parse_policy(POLICIES[0] + "\n[pool]\ncurrency = \"USD\"\n")
    inp = _inputs(300)
    attr = pl.concat([inp.attributions, inp.attributions.head(1).with_columns(
        pl.lit("nobody").alias(S.CREATOR_ID))])
    bad = AllocationInputs(inp.creators, inp.clips, attr, inp.generations, inp.accounts)
    with pytest.raises(ContractError, match="'nobody' is not in creators"):
        allocate(policy, bad, pool_minor=10_000, batch_id="b")
