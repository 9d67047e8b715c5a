"""Each component on a tiny period, against numbers computed by hand.

The period: creators a, b, c (c opted out); clips a1, a2 (a; 10 s CC-BY and
20 s editorial), b1 (b; 30 s, no licence), c1 (c; 40 s CC-BY). Generations g1
(account x: a1 0.75, b1 0.25), g2 (account y: c1 1.0), g3 (account x: a2
1.0), g4 (account y: nothing attributed). Revenue: x 1000, y 3000.
"""

from __future__ import annotations

import polars as pl
import pytest

from contract import schema as S
from contract.errors import ContractError
from ledger.allocate import AllocationInputs, prepare
from ledger.components import COMPONENT_FUNCTIONS, SCORE, attribution, corpus, equal, user_centric
from ledger.policy import parse_policy


def inputs() -> AllocationInputs:
    creators = pl.DataFrame({S.CREATOR_ID: ["a", "b", "c"], S.DISPLAY_NAME: ["A", "B", "C"],
                             S.OPTED_OUT: [False, False, True]})
    clips = pl.DataFrame({S.CLIP_ID: ["a1", "a2", "b1", "c1"],
                          S.CREATOR_ID: ["a", "a", "b", "c"],
                          S.DURATION_S: [10.0, 20.0, 30.0, 40.0],
                          S.LICENSE: ["CC-BY", "editorial", None, "CC-BY"]})
    attr = pl.DataFrame({S.GENERATION_ID: ["g1", "g1", "g2", "g3"],
                         S.CLIP_ID: ["a1", "b1", "c1", "a2"],
                         S.CREATOR_ID: ["a", "b", "c", "a"],
                         S.RANK: [1, 2, 1, 1], S.SIMILARITY: [0.9, 0.8, 0.7, 0.6],
                         S.WEIGHT: [0.75, 0.25, 1.0, 1.0]})
    gens = pl.DataFrame({S.GENERATION_ID: ["g1", "g2", "g3", "g4"],
                         S.ACCOUNT_ID: ["x", "y", "x", "y"]})
    accounts = pl.DataFrame({S.ACCOUNT_ID: ["x", "y"], S.REVENUE_MINOR: [1000, 3000]})
    return AllocationInputs(creators, clips, attr, gens, accounts)


def period(rules: str = "", components: str = "attribution = 1"):  # noqa: ANN201
    policy = parse_policy(f"[components]\n{components}\n[rules]\n{rules}\n")
    return prepare(policy, inputs())


def scores(result) -> dict[str, float]:  # noqa: ANN001
    return dict(zip(result.frame[S.CREATOR_ID], result.frame[SCORE]))


def test_attribution() -> None:
    got = attribution(period(), unattributed="withhold")
    assert scores(got) == pytest.approx({"a": 1.75, "b": 0.25, "c": 1.0})
    assert got.unattributed == pytest.approx(1.0)  # g4
    assert attribution(period()).unattributed == 0.0  # redistributed: not measured


def test_attribution_with_licence_multipliers() -> None:
    p = period('license_multipliers = { "editorial" = 0.5 }\nlicense_default = 0.8')
    got = attribution(p, unattributed="withhold")
    # a1 CC-BY -> default 0.8; a2 editorial 0.5; b1 no licence -> 0.8; c1 0.8
    assert scores(got) == pytest.approx({"a": 0.75 * 0.8 + 0.5, "b": 0.25 * 0.8, "c": 0.8})
    assert got.unattributed == pytest.approx(4 - (0.6 + 0.5 + 0.2 + 0.8))


def test_corpus_by_clips_and_duration() -> None:
    assert scores(corpus(period(), by="clips")) == {"a": 2.0, "b": 1.0, "c": 1.0}
    got = corpus(period('license_multipliers = { "editorial" = 0.5 }'), by="duration")
    assert scores(got) == pytest.approx({"a": 10 + 20 * 0.5, "b": 30.0, "c": 40.0})
    assert got.unattributed == 0


def test_corpus_counts_a_segmented_clip_once() -> None:
    inp = inputs()
    clips = pl.concat([inp.clips, inp.clips.head(1)]).with_columns(
        pl.Series(S.SEGMENT_ID, ["s0", "s0", "s0", "s0", "s1"]))
    p = prepare(parse_policy("[components]\ncorpus = 1"),
                AllocationInputs(inp.creators, clips, inp.attributions, inp.generations,
                                 inp.accounts))
    assert scores(corpus(p, by="clips")) == {"a": 2.0, "b": 1.0, "c": 1.0}


def test_corpus_by_duration_needs_durations() -> None:
    inp = inputs()
    p = prepare(parse_policy("[components]\ncorpus = 1"),
                AllocationInputs(inp.creators, inp.clips.drop(S.DURATION_S),
                                 inp.attributions, inp.generations, inp.accounts))
    with pytest.raises(ContractError, match="duration_s.*corpus.by"):
        corpus(p, by="duration")


def test_user_centric_redistribute() -> None:
    got = user_centric(period(), unattributed="redistribute")
    # x: 1000 over credits a 0.75 + 1.0, b 0.25 (total 2); y: 3000 over c 1.0
    assert scores(got) == pytest.approx({"a": 875.0, "b": 125.0, "c": 3000.0})
    assert got.unattributed == 0


def test_user_centric_withhold() -> None:
    got = user_centric(period(), unattributed="withhold")
    # x: 2 generations, 500 each; y: 2 generations (g4 unattributed), 1500 each
    assert scores(got) == pytest.approx({"a": 375.0 + 500.0, "b": 125.0, "c": 1500.0})
    assert got.unattributed == pytest.approx(1500.0)


def test_user_centric_needs_accounts() -> None:
    inp = inputs()
    with pytest.raises(ContractError, match="account"):
        prepare(parse_policy("[components]\nuser_centric = 1"),
                AllocationInputs(inp.creators, inp.clips, inp.attributions,
                                 inp.generations.drop(S.ACCOUNT_ID), inp.accounts))


def test_equal() -> None:
    got = equal(period())
    assert scores(got) == {"a": 1.0, "b": 1.0, "c": 1.0} and got.unattributed == 0


def test_every_registered_component_is_documented() -> None:
    from pathlib import Path

    from ledger.policy import COMPONENTS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "policies.md").read_text()
    assert [c for c in COMPONENTS if f"`{c}`" not in doc] == []


@pytest.mark.parametrize("name", sorted(COMPONENT_FUNCTIONS))
def test_scores_ignore_row_order(name: str) -> None:
    inp = inputs()
    rev = AllocationInputs(*(df.reverse() for df in (inp.creators, inp.clips, inp.attributions,
                                                     inp.generations, inp.accounts)))
    policy = parse_policy("[components]\nattribution = 1")
    fn = COMPONENT_FUNCTIONS[name]
    a = fn(prepare(policy, inp), by="duration", unattributed="withhold")
    b = fn(prepare(policy, rev), by="duration", unattributed="withhold")
    assert a.frame.sort(S.CREATOR_ID).equals(b.frame.sort(S.CREATOR_ID))
    assert a.unattributed == b.unattributed


def test_corpus_count_shortcut_equals_the_per_clip_sum() -> None:
    from dataclasses import replace

    p = period("license_default = 0.3")
    assert p.uniform_multiplier == 0.3
    fast = corpus(p, by="clips")
    slow = corpus(replace(p, uniform_multiplier=None), by="clips")
    assert fast.frame.sort(S.CREATOR_ID).equals(slow.frame.sort(S.CREATOR_ID))
    assert scores(fast) == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.3})
    assert period('license_multipliers = { "x" = 2.0 }').uniform_multiplier is None
