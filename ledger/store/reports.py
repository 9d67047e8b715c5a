"""Provider status reports: read one, reconcile it with the ledger, apply what matches.

Rule: a report is a CSV with the columns of :data:`REPORT_COLUMNS`; every line is
either *matched* (applied) or put in exactly one other category and applied not
at all: ``unknown`` payout id, amount or currency ``mismatch``, ``duplicate``
(the payout already reached that status, or the line repeats an earlier one),
``out_of_order`` (the status does not follow the payout's state under
:data:`ledger.store.payout_states.TRANSITIONS`). A payout's lines are taken in the
order they occurred (``occurred_at``, then file order), so a report may carry a
payout from submitted to paid to returned. Everything is decided set-based, one
round per line of the same payout, and applied by
:func:`ledger.store.payout_states.apply_events` in the caller's single database
transaction: a report is applied whole or not at all, and applying it again
finds only duplicates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy.orm import Session

from contract import schema as S
from contract.errors import ResidualsError, first_line
from ledger.store import models as M
from ledger.store.payout_states import (
    EVENT_COLUMNS,
    allowed,
    apply_events,
    latest_states,
    payout_history,
)

REPORT_COLUMNS = ("payout_id", "status", "provider_reference", "failure_code", "amount_minor",
                  "currency", "occurred_at")
STATUSES = (M.PAID, M.FAILED, M.RETURNED, M.CANCELED)
CATEGORIES = ("matched", "unknown", "mismatch", "duplicate", "out_of_order")
MAX_TEXT = S.MAX_ID_CHARS


def _fail(path: Path, line: int, column: str, what: str) -> ResidualsError:
    return ResidualsError(f"{path}, line {line}, column {column}: {what}")


def read_report(path: Path) -> pl.DataFrame:
    """The report's lines with typed columns and ``line`` (the file's line number, the
    header being line 1).

    Raises
    ------
    ResidualsError
        One line naming the file, line and column: not a readable CSV, a missing
        column, an unknown status, an amount that is not an integer > 0, a currency
        that is not three letters, a time that is not ISO 8601, an over-long or
        NUL-bearing text.
    """
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ResidualsError(f"{path}: cannot read the report as CSV ({first_line(exc)})") \
            from None
    missing = [c for c in REPORT_COLUMNS if c not in raw.columns]
    if missing:
        raise _fail(path, 1, missing[0], "missing from the header (expected "
                    f"{', '.join(REPORT_COLUMNS)})")
    df = raw.select(pl.col(REPORT_COLUMNS).fill_null("")).with_row_index(
        "line", offset=2).with_columns(pl.col("line").cast(pl.Int64))
    return _typed(path, df)


TIME_FORMATS = (("%Y-%m-%dT%H:%M:%S%.f%#z", True), ("%Y-%m-%d %H:%M:%S%.f%#z", True),
                ("%Y-%m-%dT%H:%M:%S%.f", False), ("%Y-%m-%d %H:%M:%S%.f", False),
                ("%Y-%m-%d", False))
"""ISO 8601 forms accepted for ``occurred_at`` (with an offset or ``Z``; without one it
is UTC; a date alone is its midnight UTC)."""


def parse_times(text: pl.Expr) -> pl.Expr:
    """``text`` as UTC datetimes (null where it is none of :data:`TIME_FORMATS`)."""
    parsed = []
    for fmt, has_zone in TIME_FORMATS:
        dtype = pl.Datetime("us", "UTC") if has_zone else pl.Datetime("us")
        e = text.str.strptime(dtype, fmt, strict=False)
        parsed.append(e if has_zone else e.dt.replace_time_zone("UTC"))
    return pl.coalesce(parsed)


def _typed(path: Path, df: pl.DataFrame) -> pl.DataFrame:
    def first(mask: pl.Expr, column: str, what: str) -> None:
        bad = df.filter(mask)
        if bad.height:
            raise _fail(path, int(bad["line"][0]), column,
                        f"{what}, got {str(bad[column][0])[:60]!r}")

    for col in ("payout_id", "provider_reference", "failure_code"):
        first(pl.col(col).str.len_chars() > MAX_TEXT, col, f"longer than {MAX_TEXT} characters")
        first(pl.col(col).str.contains("\x00", literal=True), col, "contains NUL")
    first(pl.col("payout_id") == "", "payout_id", "empty")
    first(~pl.col("status").is_in(STATUSES), "status", f"expected one of {', '.join(STATUSES)}")
    first(~pl.col("amount_minor").str.contains(r"^[0-9]{1,18}$"), "amount_minor",
          "expected an integer amount in minor units")
    first(~pl.col("currency").str.contains(r"^[A-Za-z]{3}$"), "currency",
          "expected a three-letter ISO 4217 code")
    df = df.with_columns(parse_times(pl.col("occurred_at")).alias("when"))
    first(pl.col("when").is_null(), "occurred_at", "expected an ISO 8601 time")
    return df.select(
        "line", "payout_id", "status",
        pl.when(pl.col("provider_reference") == "").then(None)
        .otherwise(pl.col("provider_reference")).alias("provider_reference"),
        pl.when(pl.col("failure_code") == "").then(None).otherwise(pl.col("failure_code"))
        .alias("failure_code"),
        pl.col("amount_minor").cast(pl.Int64), pl.col("currency").str.to_uppercase(),
        pl.col("when").alias("occurred_at"))


def reconcile(report: pl.DataFrame, payouts: pl.DataFrame,
              reached: pl.DataFrame) -> pl.DataFrame:
    """Each report line with its ``category`` and, for matched lines, ``round`` (the
    order in which a payout's matched lines apply, 0 first).

    ``payouts``: :func:`~ledger.store.payout_states.current_states`; ``reached``:
    (``payout_id``, ``state``) of every state each payout has ever had. Pure.
    """
    df = report.join(payouts.select("payout_id", pl.col(S.AMOUNT_MINOR).alias("want_amount"),
                                    pl.col(S.CURRENCY).alias("want_currency"),
                                    pl.col("state").alias("now")),
                     on="payout_id", how="left")
    seen = reached.select("payout_id", pl.col("state").alias("status"),
                          pl.lit(True).alias("seen")).unique()
    df = df.join(seen, on=["payout_id", "status"], how="left").sort("occurred_at", "line")
    bad = (pl.when(pl.col("now").is_null()).then(pl.lit("unknown"))
           .when((pl.col(S.AMOUNT_MINOR) != pl.col("want_amount"))
                 | (pl.col(S.CURRENCY) != pl.col("want_currency"))).then(pl.lit("mismatch")))
    df = df.with_columns(bad.alias("category"))
    repeat = pl.int_range(pl.len()).over("payout_id", "status", "category") > 0
    df = df.with_columns(
        pl.when(pl.col("category").is_null() & (pl.col("seen").fill_null(False) | repeat))
        .then(pl.lit("duplicate")).otherwise(pl.col("category")).alias("category"))
    decided, todo = df.filter(pl.col("category").is_not_null()), df.filter(
        pl.col("category").is_null()).with_columns(
        pl.int_range(pl.len()).over("payout_id").alias("round"))
    state = payouts.select("payout_id", pl.col("state").alias("from_state"))
    ok = allowed().rename({"state": "status"}).with_columns(pl.lit(True).alias("ok"))
    done = []
    for r in range(int(todo["round"].max() or 0) + 1 if todo.height else 0):  # rounds, not rows
        step = todo.filter(pl.col("round") == r).join(state, on="payout_id", how="left").join(
            ok, on=["from_state", "status"], how="left")
        step = step.with_columns(pl.when(pl.col("ok").fill_null(False)).then(pl.lit("matched"))
                                 .otherwise(pl.lit("out_of_order")).alias("category"))
        done.append(step.drop("from_state", "ok"))
        moved = step.filter(pl.col("category") == "matched").select(
            "payout_id", pl.col("status").alias("moved"))
        state = state.join(moved, on="payout_id", how="left").select(
            "payout_id", pl.coalesce("moved", "from_state").alias("from_state"))
    cols = [*report.columns, "category"]
    out = pl.concat([decided.select(cols).with_columns(pl.lit(None, pl.Int64).alias("round")),
                     *(d.select(*cols, "round") for d in done)])
    return out.sort("line")


@dataclass
class Reconciliation:
    """What an import found: lines per category, a sample of the lines not applied, and
    the file's sha256 (recorded as each applied event's source)."""

    sha256: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return self.counts.get("matched", 0)


def import_report(session: Session, path: Path, *, sample: int = 20) -> Reconciliation:
    """Read, reconcile and apply the report at ``path`` in the caller's write-locked
    transaction (see the module rule)."""
    report = read_report(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    payouts, events = payout_history(session)
    states = latest_states(payouts, events)
    lines = reconcile(report, states, events.select("payout_id", "state"))
    result = Reconciliation(digest, {c: 0 for c in CATEGORIES})
    for cat, n in lines.group_by("category").len().iter_rows():
        result.counts[cat] = int(n)
    why = {"unknown": "unknown payout id", "mismatch": "amount or currency differs from the "
           "payout", "duplicate": "already applied", "out_of_order": "out of order"}
    for line, pid, status, cat in lines.filter(pl.col("category") != "matched").head(
            sample).select("line", "payout_id", "status", "category").iter_rows():
        result.problems.append(f"line {line}: {why[cat]}: payout {pid!r} {status}")
    matched = lines.filter(pl.col("category") == "matched")
    for r in range(int(matched["round"].max() or 0) + 1 if matched.height else 0):
        step = matched.filter(pl.col("round") == r).select(
            "payout_id", pl.col("status").alias("state"), pl.lit(None, pl.String)
            .alias("reason"), "provider_reference", "failure_code", "occurred_at",
            pl.lit(f"import:{digest}").alias("source"))
        apply_events(session, step.select(EVENT_COLUMNS), checked=True, known=states)
        states = _advanced(states, step)
    return result


def _advanced(states: pl.DataFrame, step: pl.DataFrame) -> pl.DataFrame:
    """``states`` (:func:`~ledger.store.payout_states.current_states`) after the events of
    ``step`` (``payout_id``, ``state``, ``reason``) were applied: one more event each."""
    moved = step.select("payout_id", pl.col("state").alias("new_state"),
                        pl.col("reason").alias("new_reason"), pl.lit(True).alias("moved"))
    hit = pl.col("moved").fill_null(False)
    return states.join(moved, on="payout_id", how="left").with_columns(
        pl.when(hit).then(pl.col("seq") + 1).otherwise(pl.col("seq")).alias("seq"),
        pl.when(hit).then(pl.col("new_state")).otherwise(pl.col("state")).alias("state"),
        pl.when(hit).then(pl.col("new_reason")).otherwise(pl.col("reason")).alias("reason"),
    ).select(states.columns)
