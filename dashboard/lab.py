"""The policy lab's pure core: knobs to TOML, two allocations side by side, several in a table.

Rule: the lab never invents allocation logic. It edits the policy *text*
(the knobs rewrite the TOML document the economist sees and downloads), parses
it with :func:`ledger.policy.parse_policy`, allocates with
:func:`ledger.allocate.allocate`, and compares with :mod:`ledger.fairness`, so
what the lab shows is what a batch run with the downloaded file would pay.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from contract import schema as S
from dashboard.text import file_stem
from ledger.fairness import DELTA_MINOR, METRIC
from ledger.money import format_minor
from ledger.policy import COMPONENTS, Policy

if TYPE_CHECKING:
    from ledger.allocate import Allocation

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

#: Series labels of the two policies in the comparison.
CURRENT = "current"
EDITED = "edited"
#: Column naming which policy a Lorenz point belongs to.
SERIES = "policy"


# ---- TOML ----------------------------------------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
            "\f": "\\f", "\r": "\\r"}


def _quote(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _quote(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def dump_toml(doc: dict[str, Any]) -> str:
    """TOML text for a document of scalars, lists of scalars and nested tables.

    ``tomllib.loads(dump_toml(d)) == d`` for every such document (tested).
    """
    lines: list[str] = []

    def table(prefix: list[str], body: dict[str, Any]) -> None:
        scalars = [(k, v) for k, v in body.items() if not isinstance(v, dict)]
        tables = [(k, v) for k, v in body.items() if isinstance(v, dict)]
        if prefix and (scalars or not tables):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
        for k, v in scalars:
            lines.append(f"{_key(k)} = {_value(v)}")
        for k, v in tables:
            table([*prefix, k], v)

    table([], doc)
    return "\n".join(lines) + "\n"


# ---- knobs ---------------------------------------------------------------------

@dataclass(frozen=True)
class Knobs:
    """The common policy settings the lab exposes as form controls."""

    weights: dict[str, float]
    cap_share: float | None
    min_payout: str
    exclude_opted_out: bool
    unattributed: str


def knobs_of(policy: Policy) -> Knobs:
    """The knob settings of a parsed policy."""
    return Knobs(
        weights={c: float(policy.components.get(c, 0.0)) for c in COMPONENTS},
        cap_share=policy.rules.cap_share,
        min_payout=policy.rules.min_payout,
        exclude_opted_out=policy.rules.exclude_opted_out,
        unattributed=policy.rules.unattributed,
    )


def normalise_weights(weights: dict[str, float]) -> dict[str, float]:
    """Weights scaled to sum to 1 (the policy format requires it); all-zero stays zero."""
    total = math.fsum(max(0.0, w) for w in weights.values())
    if total <= 0:
        return {k: 0.0 for k in weights}
    return {k: round(max(0.0, w) / total, 12) for k, w in weights.items()}


def apply_knobs(text: str, knobs: Knobs) -> str:
    """Policy TOML: ``text`` with the knob settings written into it.

    Only the keys the knobs control change; everything else in the document
    (pool, corpus, licence multipliers, floors, ...) is kept. Comments are not
    kept: the result is regenerated TOML. If the knobs equal the text's own
    settings, ``text`` is returned unchanged.
    """
    doc = tomllib.loads(text)
    weights = normalise_weights(knobs.weights)
    comps = {c: w for c, w in weights.items() if w > 0}
    rules = dict(doc.get("rules", {}))
    new_rules = dict(rules)
    if knobs.cap_share is None:
        new_rules.pop("cap_share", None)
    else:
        new_rules["cap_share"] = float(knobs.cap_share)
    new_rules["min_payout"] = knobs.min_payout
    new_rules["exclude_opted_out"] = bool(knobs.exclude_opted_out)
    new_rules["unattributed"] = knobs.unattributed
    old_comps = {k: float(v) for k, v in doc.get("components", {}).items() if float(v) > 0}
    if _same(old_comps, comps) and _rules_equal(rules, new_rules):
        return text
    doc["components"] = comps
    doc["rules"] = new_rules
    return dump_toml(doc)


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-12 for k in a)


_RULE_DEFAULTS = {"min_payout": "0", "exclude_opted_out": True, "unattributed": "redistribute"}


def _rules_equal(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = set(old) | set(new)
    return all(old.get(k, _RULE_DEFAULTS.get(k)) == new.get(k, _RULE_DEFAULTS.get(k))
               for k in keys)


# ---- comparison -------------------------------------------------------------

#: Most points of a Lorenz curve sent to the browser (the curve is smooth; 100,000 points
#: per curve would make the chart, not the allocation, the slow part).
LORENZ_POINTS = 501


def thin(points: pl.DataFrame, max_points: int = LORENZ_POINTS) -> pl.DataFrame:
    """At most ``max_points`` rows, evenly spaced, always keeping the first and last."""
    n = points.height
    if n <= max_points:
        return points
    idx = pl.int_range(0, max_points, eager=True) * (n - 1) // (max_points - 1)
    return points[idx.unique(maintain_order=True)]


@dataclass(frozen=True)
class Comparison:
    """The lab's comparison of the current and the edited allocation of one period."""

    metrics: pl.DataFrame  # metric, current, edited (float64), from ledger.fairness.compare
    movers: pl.DataFrame  # creator_id, current, edited, delta_minor: biggest winners, then losers
    lorenz: pl.DataFrame  # population_share, amount_share, policy


def compare(current: Allocation, edited: Allocation, n: int = 10) -> Comparison:
    """Compare two :class:`ledger.allocate.Allocation` of the same period.

    Metrics and movers are :func:`ledger.fairness.compare`'s; the Lorenz curves
    are over each allocation's eligible creators, as its Gini is.
    """
    from ledger import fairness as F

    metrics, movers = F.compare(current, edited, n)
    rename = {"a": CURRENT, "b": EDITED}
    curves = []
    for label, alloc in ((CURRENT, current), (EDITED, edited)):
        amounts = alloc.frame.filter(pl.col(S.ELIGIBLE))[S.ALLOCATED_MINOR]
        curves.append(thin(F.lorenz(amounts)).with_columns(pl.lit(label).alias(SERIES)))
    return Comparison(metrics.rename(rename), movers.rename(rename),
                      pl.concat(curves, how="vertical_relaxed"))


#: How each metric of :data:`ledger.fairness.METRICS` is labelled and formatted.
_METRIC_LABELS = {
    "pool": ("Pool", "money"),
    "creators_paid": ("Creators paid", "count"),
    "median_payout": ("Median payout", "money"),
    "largest_payout": ("Largest payout", "money"),
    "gini": ("Gini coefficient", "ratio"),
    "top1": ("Top 1% share", "percent"),
    "top10": ("Top 10% share", "percent"),
}


def _fmt(value: float, kind: str, currency: str) -> str:
    if kind == "money":
        return format_minor(round(value), currency)
    if kind == "count":
        return f"{int(value):,}"
    if kind == "percent":
        return f"{value:.2%}"
    return f"{value:.4f}"


def metrics_table(metrics: pl.DataFrame, currency: str) -> pl.DataFrame:
    """The comparison's metrics as display strings (one row per metric, a handful of rows)."""
    rows = []
    for metric, cur, new in metrics.select(METRIC, CURRENT, EDITED).iter_rows():
        label, kind = _METRIC_LABELS.get(metric, (metric, "ratio"))
        rows.append((label, _fmt(cur, kind, currency), _fmt(new, kind, currency)))
    return pl.DataFrame(rows, schema={METRIC: pl.String, CURRENT: pl.String, EDITED: pl.String},
                        orient="row")


# ---- several policies -------------------------------------------------------------

#: Column of :func:`compare_many` naming the policy of each row.
POLICY = "policy"
#: Columns of :func:`compare_many` after the fairness metrics: where each policy's money goes.
MONEY_COLUMNS = ("carried_in", "paid", "carried_forward", "withheld")
_MONEY_LABELS = {"carried_in": ("Carried in", "money"), "paid": ("Paid out", "money"),
                 "carried_forward": ("Carried forward", "money"),
                 "withheld": ("Withheld", "money")}


def compare_many(allocations: dict[str, Allocation]) -> pl.DataFrame:
    """One row per policy (in the given order): ``policy``, the metrics of
    :func:`ledger.fairness.summary`, and the money carried in, paid out, carried forward
    and withheld (integers, minor units). Every allocation is of the same period and pool,
    so for each row ``paid + carried_forward + withheld == pool + carried_in``."""
    from ledger import fairness as F

    rows = []
    for name, alloc in allocations.items():  # a handful of policies, not data rows
        money = (int(alloc.frame[S.CARRIED_IN_MINOR].sum()), alloc.paid_minor,
                 alloc.carried_out_minor, alloc.withheld_minor)
        rows.append({POLICY: name, **F.summary(alloc), **dict(zip(MONEY_COLUMNS, money))})
    schema = {POLICY: pl.String, **{m: pl.Float64 for m in F.METRICS},
              **{m: pl.Int64 for m in MONEY_COLUMNS}}
    return pl.DataFrame(rows, schema=schema)


def unique_labels(names: list[str]) -> list[str]:
    """``names`` with a repeated one suffixed `` (2)``, `` (3)``, ..."""
    seen: set[str] = set()
    out = []
    for name in names:
        label, n = name, 1
        while label in seen:
            n += 1
            label = f"{name} ({n})"
        seen.add(label)
        out.append(label)
    return out


def many_table(table: pl.DataFrame, currency: str) -> pl.DataFrame:
    """:func:`compare_many` as display strings: one row per policy, one column per measure
    (its label)."""
    labels = {**_MONEY_LABELS, **_METRIC_LABELS}  # where the money goes first
    return pl.DataFrame({
        "Policy": table[POLICY],
        **{label: [_fmt(v, kind, currency) for v in table[key].to_list()]  # a few policies
           for key, (label, kind) in labels.items()},
    })


def with_name(text: str, name: str) -> str:
    """Policy TOML ``text`` with its ``name`` set to ``name`` (``text`` itself when it
    already has that name)."""
    doc = tomllib.loads(text)
    if doc.get("name") == name:
        return text
    doc = {"name": name, **{k: v for k, v in doc.items() if k != "name"}}
    return dump_toml(doc)


def export_file_name(name: str) -> str:
    """A safe file name for a policy called ``name``: ``<name>.toml``
    (:func:`dashboard.text.file_stem`)."""
    return f"{file_stem(name, 'policy')}.toml"
