"""The payout workflows: one pool rule, errors naming parameters, flags named by the CLI."""

from __future__ import annotations


import polars as pl
import pytest

from contract import schema as S
from contract.errors import ResidualsError, first_line
from ledger.policy import load_policy
from residuals.commands._files import flag_names
from residuals.commands.batch import POOL_FLAGS
from residuals.workflows.payout import resolve_pool
from tests.conftest import ROOT

DEFAULT = ROOT / "policies" / "default.toml"


def _accounts(*revenue: int) -> pl.DataFrame:
    return pl.DataFrame({S.CREATOR_ID: [f"c{i}" for i in range(len(revenue))],
                         "revenue_minor": list(revenue)})


def test_pool_flag_overrides_the_policy_exactly() -> None:
    assert resolve_pool(load_policy(DEFAULT), None, "25000.01", None) == (2500001, "USD")


def test_pool_from_the_policys_revenue_share() -> None:
    policy = load_policy(DEFAULT)
    want = policy.revenue_share * 1001
    got, cur = resolve_pool(policy, _accounts(1000, 1), None, None)
    assert cur == "USD" and got == int(want) and got > 0


@pytest.mark.parametrize(("pool", "expected"), [("0", "expected > 0"),
                                                ("abc", "is not a decimal amount"),
                                                ("1.001", "more than 2 decimals")])
def test_library_errors_name_the_parameter_and_the_cli_the_flag(pool: str, expected: str) -> None:
    policy = load_policy(DEFAULT)
    with pytest.raises(ResidualsError) as lib:
        resolve_pool(policy, None, pool, None)
    assert expected in str(lib.value) and "--pool" not in str(lib.value)
    assert "pool" in str(lib.value)
    with pytest.raises(ResidualsError) as cli, flag_names(POOL_FLAGS):
        resolve_pool(policy, None, pool, None)
    assert str(cli.value).startswith("--pool") and expected in str(cli.value)


def test_zero_pool_allowed_when_not_required_positive() -> None:
    assert resolve_pool(load_policy(DEFAULT), None, "0", None, positive=False) == (0, "USD")


def test_flag_names_leaves_other_errors_alone() -> None:
    err = ResidualsError("depthless: pool=3 is fine")
    with pytest.raises(ResidualsError) as got, flag_names(POOL_FLAGS):
        raise err
    assert got.value is err


def test_first_line_of_multiline_and_empty_errors() -> None:
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError("  \n")) == "ValueError"
    assert first_line(ValueError("x" * 300), limit=200) == "x" * 200
