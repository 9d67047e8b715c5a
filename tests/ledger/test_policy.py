"""Policy TOML: parsing, defaults, and one-line errors naming file and key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from contract.errors import ResidualsError
from ledger.policy import Policy, load_policy, parse_policy
from tests.conftest import ROOT

POLICY_DIR = ROOT / "policies"
FULL = """
name = "hybrid"
description = "70/30"
[pool]
currency = "usd"
amount = "25000.00"
[components]
attribution = 0.7
corpus = 0.3
equal = 0.0
[corpus]
by = "duration"
[rules]
exclude_opted_out = false
unattributed = "withhold"
eligibility_min_clips = 2
eligibility_min_share = 0.0001
cap_share = 0.02
floor_share = 0.001
license_multipliers = { "CC-BY" = 1.0, "editorial" = 0.5 }
license_default = 0.8
min_payout = "10.00"
"""


def test_full_policy_parses() -> None:
    p = parse_policy(FULL, source="hybrid.toml")
    assert p.name == "hybrid" and p.currency == "USD" and p.pool_amount == "25000.00"
    assert dict(p.components) == {"attribution": 0.7, "corpus": 0.3}  # zero weights dropped
    assert p.corpus_by == "duration"
    r = p.rules
    assert (r.exclude_opted_out, r.unattributed, r.eligibility_min_clips) == (False, "withhold", 2)
    assert (r.eligibility_min_share, r.cap_share, r.floor_share) == (0.0001, 0.02, 0.001)
    assert dict(r.license_multipliers) == {"CC-BY": 1.0, "editorial": 0.5}
    assert r.license_default == 0.8
    assert p.min_payout_minor == 1000
    assert p.hash == hashlib.sha256(FULL.encode()).hexdigest() and p.text == FULL
    assert p.cap_minor_in(12345) == 246  # floor(0.02 * 12345)
    assert p.floor_minor_in("USD", 12345) == 13  # ceil(0.001 * 12345)


def test_defaults() -> None:
    p = parse_policy("[components]\nattribution = 1\n", source="/x/pro-rata.toml")
    assert p.name == "pro-rata" and p.currency is None and p.pool_amount is None
    r = p.rules
    assert r.exclude_opted_out and r.unattributed == "redistribute"
    assert r.eligibility_min_clips == 1 and r.cap_share is None and r.min_payout == "0"
    assert p.min_payout_minor == 0 and p.cap_minor_in(100) is None
    assert p.floor_minor_in("EUR", 100) == 0


@pytest.mark.parametrize(("text", "key", "message"), [
    ("[components]\nattribution = 1\nfoo = 0", "components.foo", "unknown key"),
    ("colour = 1\n[components]\nattribution = 1", "colour", "unknown key"),
    ("[components]\nattribution = 1\n[rules]\ncap = 0.1", "rules.cap", "unknown key"),
    ("[components]\nattribution = 1\n[pool]\nsize = 1", "pool.size", "unknown key"),
    ("[components]\nattribution = 1\n[corpus]\nper = 'clips'", "corpus.per", "unknown key"),
    ("[components]\nattribution = 1.5\n", "components.attribution", "outside [0, 1]"),
    ("[components]\nattribution = -0.5\ncorpus = 1.5", "components.attribution", "outside"),
    ("[components]\nattribution = 0.7\ncorpus = 0.2", "components", "sum to 0.9"),
    ("[components]\nattribution = 'all'", "components.attribution", "expected a number"),
    ("[components]\n", "components", "sum to 0"),
    ("name = 'x'", "components", "missing"),
    ("[components]\nattribution = 1\n[pool]\ncurrency = 'XYZ'", "pool.currency",
     "unknown currency 'XYZ'"),
    ("[components]\nattribution = 1\n[pool]\ncurrency = 'USD'\namount = '-5.00'",
     "pool.amount", "negative"),
    ("[components]\nattribution = 1\n[pool]\ncurrency = 'JPY'\namount = '5.5'",
     "pool.amount", "more than 0 decimals"),
    ("[components]\nattribution = 1\n[pool]\namount = '-5'", "pool.amount", ">= 0"),
    ("[components]\nattribution = 1\n[pool]\namount = 5.5", "pool.amount", "decimal string"),
    ("[components]\nattribution = 1\n[pool]\namount = '1'\nrevenue_share = 0.5",
     "pool.revenue_share", "not both"),
    ("[components]\nattribution = 1\n[pool]\nrevenue_share = 2", "pool.revenue_share",
     "outside"),
    ("[components]\nattribution = 1\n[corpus]\nby = 'bytes'", "corpus.by", "'bytes'"),
    ("[components]\nattribution = 1\n[rules]\nunattributed = 'burn'", "rules.unattributed",
     "'burn'"),
    ("[components]\nattribution = 1\n[rules]\nexclude_opted_out = 'yes'",
     "rules.exclude_opted_out", "true or false"),
    ("[components]\nattribution = 1\n[rules]\neligibility_min_clips = -1",
     "rules.eligibility_min_clips", "integer >= 0"),
    ("[components]\nattribution = 1\n[rules]\ncap_share = 0", "rules.cap_share", "outside (0"),
    ("[components]\nattribution = 1\n[rules]\ncap_share = 0.1\nfloor_share = 0.2",
     "rules.floor_share", "above rules.cap_share"),
    ("[components]\nattribution = 1\n[rules]\nfloor = '1'\nfloor_share = 0.1", "rules.floor",
     "not both"),
    ("[components]\nattribution = 1\n[rules]\nmin_payout = '-1'", "rules.min_payout", ">= 0"),
    ("[components]\nattribution = 1\n[rules]\nlicense_multipliers = { a = -1 }",
     "rules.license_multipliers.a", "outside"),
    ("[components]\nattribution = 1\n[rules]\nlicense_multipliers = 2",
     "rules.license_multipliers", "expected a table"),
    ("components = 1", "components", "expected a table"),
    ("[components]\nattribution = 1\n[schedule]\nday = 31", "schedule.day", "1 to 28"),
    ("[components]\nattribution = 1\n[schedule]\nday = 0", "schedule.day", "got 0"),
    ("[components]\nattribution = 1\n[schedule]\nday = '15'", "schedule.day", "integer"),
    ("[components]\nattribution = 1\n[schedule]\nday = true", "schedule.day", "integer"),
    ("[components]\nattribution = 1\n[schedule]\n", "schedule.day", "missing"),
    ("[components]\nattribution = 1\n[schedule]\nday = 1\nevery = 'week'",
     "schedule.every", "unknown key"),
    ("schedule = 15\n[components]\nattribution = 1", "schedule", "expected a table"),
])
def test_errors_name_file_and_key(text: str, key: str, message: str) -> None:
    with pytest.raises(ResidualsError) as err:
        parse_policy(text, source="policy.toml")
    msg = str(err.value)
    assert msg.startswith(f"policy.toml: key {key}: "), msg
    assert message in msg and "\n" not in msg


def test_invalid_toml() -> None:
    with pytest.raises(ResidualsError, match=r"^p.toml: not valid TOML"):
        parse_policy("[components\n", source="p.toml")


def test_weights_within_tolerance() -> None:
    p = parse_policy("[components]\nattribution = 0.1\ncorpus = 0.2\nequal = 0.7\n")
    assert sum(p.components.values()) == pytest.approx(1.0)


def test_amounts_in_another_currency_are_refused() -> None:
    p = parse_policy("[components]\nattribution = 1\n[pool]\ncurrency = 'USD'\n"
                     "[rules]\nmin_payout = '10.00'", source="p.toml")
    assert p.min_payout_in("USD") == 1000
    with pytest.raises(ResidualsError, match="rules.min_payout: is in USD but the pool is in EUR"):
        p.min_payout_in("EUR")
    q = parse_policy("[components]\nattribution = 1\n[rules]\nmin_payout = '10.5'")
    assert q.min_payout_in("EUR") == 1050
    with pytest.raises(ResidualsError, match="more than 0 decimals"):
        q.min_payout_in("JPY")


def test_load_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResidualsError, match="policy file not found"):
        load_policy(tmp_path / "nope.toml")


def test_shipped_policies_exist() -> None:
    names = {p.stem for p in POLICY_DIR.glob("*.toml")}
    assert {"attribution", "hybrid-70-30", "user-centric", "threshold-cap", "default"} <= names


@pytest.mark.parametrize("path", sorted(POLICY_DIR.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_policy_loads(path: Path) -> None:
    p = load_policy(path)
    assert isinstance(p, Policy) and p.name == path.stem
    assert p.currency is not None and abs(sum(p.components.values()) - 1) < 1e-9
    assert p.text == path.read_text(encoding="utf-8")


def test_schedule_next_payout_date() -> None:
    import datetime as dt

    p = parse_policy("[components]\nattribution = 1\n[schedule]\nday = 15")
    assert p.schedule is not None and p.schedule.day == 15
    nxt = p.schedule.next_payout
    assert nxt(dt.date(2026, 12, 3)) == dt.date(2026, 12, 15)
    assert nxt(dt.date(2026, 12, 15)) == dt.date(2026, 12, 15)  # payout day itself
    assert nxt(dt.date(2026, 12, 16)) == dt.date(2027, 1, 15)  # across the year
    assert nxt(dt.date(2027, 2, 28)) == dt.date(2027, 3, 15)
    assert parse_policy("[components]\nattribution = 1").schedule is None


def test_shipped_policies_pay_monthly_on_the_15th() -> None:
    for path in sorted(POLICY_DIR.glob("*.toml")):
        schedule = load_policy(path).schedule
        assert schedule is not None and schedule.day == 15, path.name
