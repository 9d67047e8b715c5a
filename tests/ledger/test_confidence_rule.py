"""rules.min_confidence: attributions of low confidence earn a fraction of their credit."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import schema as S
from contract.errors import ContractError, ResidualsError
from ledger.allocate import ALLOCATED_MINOR, AllocationInputs, allocate
from ledger.policy import parse_policy
from tests.ledger.test_components import inputs

WITHHOLD = '[components]\nattribution = 1\n[rules]\nunattributed = "withhold"\n'
USD = '[pool]\ncurrency = "USD"\n'


def with_confidence(values: list[float]) -> AllocationInputs:
    inp = inputs()  # rows: g1 a1 0.75, g1 b1 0.25, g2 c1 1.0 (opted out), g3 a2 1.0
    attr = inp.attributions.with_columns(pl.Series(S.CONFIDENCE, values, dtype=pl.Float64))
    return AllocationInputs(inp.creators, inp.clips, attr, inp.generations, inp.accounts)


def run(rules: str, inp: AllocationInputs, pool: int = 10000):  # noqa: ANN201
    return allocate(parse_policy(WITHHOLD + rules + USD, source="p.toml"), inp,
                    pool_minor=pool, batch_id="batch-1")


def test_low_confidence_generations_are_discounted_and_the_rest_withheld() -> None:
    inp = with_confidence([0.9, 0.9, 0.9, 0.3])  # g3 (a2) resembles its clip weakly
    base = run("", inp)
    cut = run("min_confidence = 0.5\nlow_confidence_factor = 0.5\n", inp)
    # scores a 0.75 + 1.0, b 0.25, unattributed 1 (g4) over 3 (c's g2 is redistributed);
    # halving g3 gives a 0.75 + 0.5 and adds 0.5 to what is unattributed
    assert base.frame[ALLOCATED_MINOR].to_list() == [5833, 833, 0]
    assert cut.frame[ALLOCATED_MINOR].to_list() == [4167, 833, 0]
    assert cut.withheld_minor == 5000


def test_without_the_rule_confidence_changes_nothing() -> None:
    plain = run("", inputs())
    assert run("", with_confidence([0.1, 0.1, 0.1, 0.1])).frame.equals(plain.frame)


def test_the_rule_needs_the_confidence_column() -> None:
    with pytest.raises(ContractError, match="attributions.parquet, column confidence: has no "
                                            "confidence column"):
        run("min_confidence = 0.5\n", inputs())


@pytest.mark.parametrize("rule", ["min_confidence = 1.5", "low_confidence_factor = -0.1",
                                  'min_confidence = "high"'])
def test_bad_values_are_one_line_errors(rule: str) -> None:
    with pytest.raises(ResidualsError, match="rules.(min_confidence|low_confidence_factor)"):
        parse_policy(WITHHOLD + rule + "\n" + USD, source="p.toml")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=4, max_size=4), st.floats(0, 1), st.floats(0, 1),
       st.integers(0, 10**12))
def test_payouts_still_sum_to_the_pool(conf: list[float], threshold: float, factor: float,
                                       pool: int) -> None:
    a = run(f"min_confidence = {threshold!r}\nlow_confidence_factor = {factor!r}\n",
            with_confidence(conf), pool)
    assert sum(a.frame[ALLOCATED_MINOR].to_list()) + a.withheld_minor == pool
    assert min(a.frame[ALLOCATED_MINOR].to_list()) >= 0
