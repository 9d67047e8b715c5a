"""Policies: a TOML file an economist writes, parsed into a frozen :class:`Policy`.

Rule: a policy is data, never code. It names a weighted mix of components
(weights in [0, 1] summing to 1) and a set of rules; every key is known and
checked, and any mistake raises a one-line :class:`ResidualsError` naming the
file and the dotted key (``policy.toml: key components.foo: unknown key``).
The format is documented, with a full example, in ``docs/policies.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from decimal import Decimal, InvalidOperation
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from contract.errors import ResidualsError
from contract.schema import MAX_POLICY_NAME_CHARS
from ledger.components import COMPONENT_FUNCTIONS
from ledger.money import CURRENCY_EXPONENTS, to_minor

COMPONENTS = tuple(COMPONENT_FUNCTIONS)
"""The components a policy can mix (those :mod:`ledger.components` scores), in the order
they are reported."""
CORPUS_BY = ("clips", "duration")
UNATTRIBUTED = ("redistribute", "withhold")
WEIGHT_TOLERANCE = 1e-9

_TOP_KEYS = ("name", "description", "pool", "components", "corpus", "rules", "schedule")
_POOL_KEYS = ("currency", "amount", "revenue_share")
_CORPUS_KEYS = ("by",)
_SCHEDULE_KEYS = ("day",)
#: The last day of the month a schedule may name: every month has it.
MAX_SCHEDULE_DAY = 28


@dataclass(frozen=True)
class Schedule:
    """When payouts are sent: monthly, on ``day`` (1-28) of each month."""

    day: int

    def next_payout(self, today: dt.date) -> dt.date:
        """The first payout date on or after ``today``.

        >>> Schedule(15).next_payout(dt.date(2026, 12, 3)), Schedule(15).next_payout(dt.date(2026, 12, 16))
        (datetime.date(2026, 12, 15), datetime.date(2027, 1, 15))
        """
        if today.day <= self.day:
            return today.replace(day=self.day)
        year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        return dt.date(year, month, self.day)


@dataclass(frozen=True)
class Rules:
    """The rules of a policy, with their defaults (see ``docs/policies.md``)."""

    exclude_opted_out: bool = True
    unattributed: str = "redistribute"
    eligibility_min_clips: int = 1
    eligibility_min_share: float = 0.0
    cap_share: float | None = None
    floor_share: float | None = None
    floor: str | None = None
    license_multipliers: Mapping[str, float] = field(default_factory=dict)
    license_default: float = 1.0
    min_payout: str = "0"
    min_confidence: float | None = None
    low_confidence_factor: float = 0.0


_RULE_KEYS = tuple(f.name for f in fields(Rules))
"""The keys of a policy's ``[rules]`` table: the fields of :class:`Rules`."""


@dataclass(frozen=True)
class Policy:
    """A parsed, validated allocation policy.

    Attributes
    ----------
    name
        The policy's name (``name`` key, else the file's stem).
    text
        The TOML source, byte for byte as read: it is what the ledger records.
    hash
        sha256 hex digest of ``text`` (UTF-8).
    source
        Where the text came from (a path, or ``"<policy>"``), used in errors.
    currency
        ``pool.currency``, upper case, or None (then ``--currency`` must say).
    pool_amount
        ``pool.amount`` as a decimal string, or None.
    revenue_share
        ``pool.revenue_share`` in [0, 1], or None: the pool is this fraction of
        the period's account revenue.
    components
        Weight per component name (only the non-zero ones), summing to 1.
    corpus_by
        ``"clips"`` or ``"duration"``: what the corpus component counts.
    rules
        The :class:`Rules`.
    schedule
        The ``[schedule]`` table as a :class:`Schedule`, or None (no payout date known).
    """

    name: str
    text: str
    hash: str
    source: str
    currency: str | None
    pool_amount: str | None
    revenue_share: float | None
    components: Mapping[str, float]
    corpus_by: str
    rules: Rules
    schedule: Schedule | None = None

    @property
    def min_payout_minor(self) -> int:
        """``rules.min_payout`` in minor units of the policy's currency (0 if unset)."""
        return self.min_payout_in(self.currency) if self.currency else 0

    def min_payout_in(self, currency: str) -> int:
        """``rules.min_payout`` in minor units of ``currency``."""
        self.check_currency(currency)
        return to_minor(self.rules.min_payout, currency,
                        what=f"{self.source}: key rules.min_payout")

    def floor_minor_in(self, currency: str, pool_minor: int) -> int:
        """The floor per creator in minor units: ``rules.floor``, or
        ``ceil(rules.floor_share * pool)``; 0 when the policy has no floor."""
        self.check_currency(currency)
        if self.rules.floor is not None:
            return to_minor(self.rules.floor, currency, what=f"{self.source}: key rules.floor")
        if self.rules.floor_share is not None:
            return math.ceil(Fraction(repr(self.rules.floor_share)) * pool_minor)
        return 0

    def cap_minor_in(self, pool_minor: int) -> int | None:
        """``floor(rules.cap_share * pool)``, or None when uncapped."""
        if self.rules.cap_share is None:
            return None
        return math.floor(Fraction(repr(self.rules.cap_share)) * pool_minor)

    def check_currency(self, currency: str, *, pool_amount: bool = False) -> None:
        """Amounts in a policy are in its currency: refuse to read them in another.

        ``pool.amount`` is checked only when ``pool_amount`` (it is in use)."""
        if self.currency and currency.upper() != self.currency:
            amounts = [k for k, v in (
                ("pool.amount", pool_amount and self.pool_amount is not None),
                ("rules.min_payout",
                 Decimal(self.rules.min_payout.replace(",", "").replace("_", "")) != 0),
                ("rules.floor", self.rules.floor is not None)) if v]
            if amounts:
                raise ResidualsError(
                    f"{self.source}: key {amounts[0]}: is in {self.currency} but the pool is in "
                    f"{currency.upper()}; write a policy for {currency.upper()}")


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "even.toml"
    >>> _ = path.write_text('name = "even"\\n[pool]\\ncurrency = "USD"\\namount = "100.00"\\n'
    ...                     '[components]\\nequal = 1.0\\n')
    >>> policy = load_policy(path)
    >>> policy.name, policy.currency, policy.pool_amount, dict(policy.components)
    ('even', 'USD', '100.00', {'equal': 1.0})
    """
    path = Path(path)
    if not path.is_file():
        raise ResidualsError(f"{path}: policy file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResidualsError(f"{path}: cannot read policy ({exc})") from None
    return parse_policy(text, source=str(path))


def _err(source: str, key: str, msg: str) -> ResidualsError:
    return ResidualsError(f"{source}: key {key}: {msg}")


def _table(source: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _err(source, key, f"expected a table, got {type(value).__name__} {value!r}")
    return value


def _unknown(source: str, prefix: str, table: Mapping[str, Any],
             allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise _err(source, f"{prefix}{key}",
                       f"unknown key (expected one of {', '.join(allowed)})")


def _number(source: str, key: str, value: Any, lo: float, hi: float, *,
            lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _err(source, key, f"expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
        left = "(" if lo_open else "["
        raise _err(source, key, f"{value!r} is outside {left}{lo:g}, {hi:g}]")
    return v


def _amount(source: str, key: str, value: Any, currency: str | None) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _err(source, key, f"expected a decimal string such as \"10.00\", got {value!r}")
    text = str(value).strip()
    # syntax and sign now; decimals too when the currency is known
    if currency:
        to_minor(text, currency, what=f"{source}: key {key}")
    else:
        _decimal_ok(source, key, text)
    return text


def _decimal_ok(source: str, key: str, text: str) -> None:
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise _err(source, key, f"{text!r} is not a decimal amount") from None
    if not value.is_finite() or value < 0:
        raise _err(source, key, f"{text!r} is not an amount >= 0")


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse and validate policy TOML.

    Parameters
    ----------
    text
        The TOML source.
    source
        A name for errors (usually the path).

    Raises
    ------
    ResidualsError
        Naming ``source`` and the dotted key: invalid TOML, an unknown key, a
        wrong type, a weight outside [0, 1], weights not summing to 1, an
        unknown currency, a negative amount, a floor above the cap.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ResidualsError(f"{source}: not valid TOML ({exc})") from None
    _unknown(source, "", doc, _TOP_KEYS)

    name = doc.get("name", Path(source).stem if source != "<policy>" else "policy")
    if not isinstance(name, str) or not name.strip():
        raise _err(source, "name", f"expected a non-empty string, got {name!r}")
    if len(name.strip()) > MAX_POLICY_NAME_CHARS or "\x00" in name:
        raise _err(source, "name", f"has {len(name.strip())} characters, expected at most "
                   f"{MAX_POLICY_NAME_CHARS} and no NUL")
    if "description" in doc and not isinstance(doc["description"], str):
        raise _err(source, "description", "expected a string")

    pool = _table(source, "pool", doc.get("pool", {}))
    _unknown(source, "pool.", pool, _POOL_KEYS)
    currency = pool.get("currency")
    if currency is not None:
        if not isinstance(currency, str) or currency.strip().upper() not in CURRENCY_EXPONENTS:
            raise _err(source, "pool.currency",
                       f"unknown currency {currency!r} (expected an ISO 4217 code such as "
                       "USD, EUR, JPY, BHD)")
        currency = currency.strip().upper()
    if "amount" in pool and "revenue_share" in pool:
        raise _err(source, "pool.revenue_share", "set either pool.amount or "
                   "pool.revenue_share, not both")
    pool_amount = (_amount(source, "pool.amount", pool["amount"], currency)
                   if "amount" in pool else None)
    revenue_share = (_number(source, "pool.revenue_share", pool["revenue_share"], 0.0, 1.0)
                     if "revenue_share" in pool else None)

    if "components" not in doc:
        raise _err(source, "components", "missing: a policy needs at least one component "
                   f"(one of {', '.join(COMPONENTS)})")
    comps = _table(source, "components", doc["components"])
    _unknown(source, "components.", comps, COMPONENTS)
    weights = {k: _number(source, f"components.{k}", comps[k], 0.0, 1.0) for k in COMPONENTS
               if k in comps}
    total = math.fsum(weights.values())
    if not weights or abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise _err(source, "components",
                   f"weights sum to {total:.12g}, expected 1 (tolerance {WEIGHT_TOLERANCE:g})")
    weights = {k: w for k, w in weights.items() if w > 0}

    corpus = _table(source, "corpus", doc.get("corpus", {}))
    _unknown(source, "corpus.", corpus, _CORPUS_KEYS)
    corpus_by = corpus.get("by", "clips")
    if corpus_by not in CORPUS_BY:
        raise _err(source, "corpus.by", f"{corpus_by!r}, expected one of {', '.join(CORPUS_BY)}")

    rules = _parse_rules(source, _table(source, "rules", doc.get("rules", {})), currency)
    schedule = (_parse_schedule(source, _table(source, "schedule", doc["schedule"]))
                if "schedule" in doc else None)
    return Policy(
        name=name.strip(), text=text, hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        source=source, currency=currency, pool_amount=pool_amount,
        revenue_share=revenue_share, components=weights, corpus_by=corpus_by, rules=rules,
        schedule=schedule,
    )


def _parse_schedule(source: str, table: dict[str, Any]) -> Schedule:
    _unknown(source, "schedule.", table, _SCHEDULE_KEYS)
    if "day" not in table:
        raise _err(source, "schedule.day", "missing: the day of the month payouts are sent "
                   f"(1 to {MAX_SCHEDULE_DAY})")
    day = table["day"]
    if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= MAX_SCHEDULE_DAY:
        raise _err(source, "schedule.day", f"expected an integer from 1 to {MAX_SCHEDULE_DAY} "
                   f"(a day every month has), got {day!r}")
    return Schedule(day)


def _parse_rules(source: str, table: dict[str, Any], currency: str | None) -> Rules:
    _unknown(source, "rules.", table, _RULE_KEYS)
    kw: dict[str, Any] = {}
    if "exclude_opted_out" in table:
        if not isinstance(table["exclude_opted_out"], bool):
            raise _err(source, "rules.exclude_opted_out",
                       f"expected true or false, got {table['exclude_opted_out']!r}")
        kw["exclude_opted_out"] = table["exclude_opted_out"]
    if "unattributed" in table:
        if table["unattributed"] not in UNATTRIBUTED:
            raise _err(source, "rules.unattributed", f"{table['unattributed']!r}, expected one "
                       f"of {', '.join(UNATTRIBUTED)}")
        kw["unattributed"] = table["unattributed"]
    if "eligibility_min_clips" in table:
        v = table["eligibility_min_clips"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise _err(source, "rules.eligibility_min_clips",
                       f"expected an integer >= 0, got {v!r}")
        kw["eligibility_min_clips"] = v
    if "eligibility_min_share" in table:
        kw["eligibility_min_share"] = _number(source, "rules.eligibility_min_share",
                                              table["eligibility_min_share"], 0.0, 1.0)
    if "cap_share" in table:
        kw["cap_share"] = _number(source, "rules.cap_share", table["cap_share"], 0.0, 1.0,
                                  lo_open=True)
    if "floor_share" in table and "floor" in table:
        raise _err(source, "rules.floor", "set either rules.floor or rules.floor_share, not both")
    if "floor_share" in table:
        kw["floor_share"] = _number(source, "rules.floor_share", table["floor_share"], 0.0, 1.0)
        if kw.get("cap_share") is not None and kw["floor_share"] > kw["cap_share"]:
            raise _err(source, "rules.floor_share", f"{kw['floor_share']!r} is above "
                       f"rules.cap_share {kw['cap_share']!r}: no allocation can meet both")
    if "floor" in table:
        kw["floor"] = _amount(source, "rules.floor", table["floor"], currency)
    if "min_payout" in table:
        kw["min_payout"] = _amount(source, "rules.min_payout", table["min_payout"], currency)
    if "license_default" in table:
        kw["license_default"] = _number(source, "rules.license_default",
                                        table["license_default"], 0.0, math.inf)
    if "license_multipliers" in table:
        mults = _table(source, "rules.license_multipliers", table["license_multipliers"])
        kw["license_multipliers"] = {
            str(k): _number(source, f"rules.license_multipliers.{k}", v, 0.0, math.inf)
            for k, v in mults.items()
        }
    for key in ("min_confidence", "low_confidence_factor"):
        if key in table:
            kw[key] = _number(source, f"rules.{key}", table[key], 0.0, 1.0)
    return Rules(**kw)
