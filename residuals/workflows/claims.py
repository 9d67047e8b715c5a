"""Claims and disputes as flows: open, list, show (with the evidence), resolve.

Rule: every flow opens the ledger, takes the write lock where it writes, and
first records the outcome of every claim past its deadline
(:func:`ledger.store.claims.expire_due`), so listing, showing and resolving
never present an overdue claim as open. ``now`` is injectable (tests); the
CLI and the dashboard call these functions only. Errors name parameters
(``amount='x': ...``); the commands name flags.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from contract import schema as S
from contract.errors import ResidualsError, first_line

EXPIRY_ENV = "RESIDUALS_CLAIM_DAYS"
"""Environment variable with the days a new claim stays open (default 30)."""
CANDIDATES_SHOWN = 10
"""Candidates of a generation shown as evidence."""
CLAIMED = "claimed"
"""Evidence column: the candidate is the claimed clip."""


def expiry_days(days: int | None = None) -> int:
    """``days``, else ``$RESIDUALS_CLAIM_DAYS``, else 30; refuses anything < 1."""
    from ledger.store.claims import DEFAULT_EXPIRY_DAYS

    if days is None:
        raw = os.environ.get(EXPIRY_ENV, "").strip()
        try:
            days = int(raw) if raw else DEFAULT_EXPIRY_DAYS
        except ValueError:
            raise ResidualsError(f"${EXPIRY_ENV}={raw!r}: expected a whole number of days"
                                 ) from None
    if days < 1:
        raise ResidualsError(f"expiry_days={days}: expected an integer >= 1")
    return days


@dataclass(frozen=True)
class NewClaim:
    """A claim to open: ``copied_clip`` (generation, clip) or ``wrong_amount`` (text)."""

    creator_id: str
    kind: str
    period: str
    opened_by: str
    generation_id: str | None = None
    clip_id: str | None = None
    text: str | None = None
    expiry_days: int | None = None


def _write(db: Any):  # type: ignore[no-untyped-def]
    """A write session on ``db`` (a URL, or an engine the caller owns)."""
    from ledger.store.engine import write_session

    return write_session(_engine(db))


def _engine(db: Any) -> Any:
    from sqlalchemy import Engine

    from residuals.workflows.store import require_ledger

    return db if isinstance(db, Engine) else require_ledger(db)


def open_claim(db: Any, claim: NewClaim, *, now: dt.datetime | None = None) -> int:
    """Record ``claim``; returns its claim id."""
    from ledger.store import claims as C

    days = expiry_days(claim.expiry_days)
    with _write(db) as s, s.begin():
        C.expire_due(s, now)
        return C.open_claim(s, creator_id=claim.creator_id, kind=claim.kind, period=claim.period,
                            generation_id=claim.generation_id, clip_id=claim.clip_id,
                            text=claim.text, opened_by=claim.opened_by, now=now,
                            expiry_days=days)


def list_claims(db: Any, *, state: str | None = None, creator_id: str | None = None,
                now: dt.datetime | None = None) -> pl.DataFrame:
    """Claims (of one creator, in one state), newest first, after recording expiries."""
    from ledger.store import claims as C

    with _write(db) as s, s.begin():
        C.expire_due(s, now)
        return C.claims(s, creator_id=creator_id, state=state)


def resolve_claim(db: Any, claim_id: int, *, uphold: bool, amount: str | None = None,
                  funding: str = "pool", reason: str | None = None, actor: str,
                  now: dt.datetime | None = None) -> str:
    """Uphold (``amount`` in major units, a decimal string, in the fund's currency, paid by
    the next batch from its pool or by the platform) or reject (with ``reason``) an open
    claim; returns the outcome recorded."""
    from ledger.money import to_minor
    from ledger.store import claims as C

    with _write(db) as s, s.begin():
        minor = None
        if uphold:
            if amount is None:
                raise ResidualsError("`amount`: upholding a claim needs an amount")
            minor = to_minor(amount, C.fund_currency(s), what=f"amount={amount!r}")
        return C.resolve(s, claim_id, C.Decision(uphold, minor, funding, reason), actor=actor,
                         now=now)


@dataclass(frozen=True)
class Evidence:
    """What staff see beside a claim: the claim, its events, the creator's statement line
    for the period, the generation's top candidates (copied_clip) and notes on what
    could not be read."""

    claim: dict[str, Any]
    events: pl.DataFrame
    statement: pl.DataFrame
    candidates: pl.DataFrame | None
    notes: tuple[str, ...]


def _candidates(data_dir: Path | None, generation_id: str, clip_id: str
                ) -> tuple[pl.DataFrame | None, str | None]:
    """The generation's strongest candidates from the batch's ``attributions.parquet``."""
    if data_dir is None:
        return None, "the batch records no data directory"
    path = data_dir / S.ATTRIBUTIONS.filename
    if not path.is_file():
        return None, f"{path} is not present (attributions computed at posting time)"
    cols = [S.RANK, S.CLIP_ID, S.CREATOR_ID, S.SIMILARITY, S.WEIGHT]
    try:
        rows = (pl.scan_parquet(path).filter(pl.col(S.GENERATION_ID) == generation_id)
                .select(cols).sort(S.RANK).collect())
    except Exception as exc:  # polars raises several types for unreadable files
        return None, f"{path}: is not a readable Parquet file ({first_line(exc)})"
    if rows.height == 0:
        return rows, f"generation {generation_id!r} has no candidates in {path}"
    top = rows.head(CANDIDATES_SHOWN)
    claimed = rows.filter(pl.col(S.CLIP_ID) == clip_id)
    if claimed.height and top.filter(pl.col(S.CLIP_ID) == clip_id).height == 0:
        top = pl.concat([top, claimed])
    note = None if claimed.height else (f"clip {clip_id!r} is not among the generation's "
                                        "candidates")
    return top.with_columns((pl.col(S.CLIP_ID) == clip_id).alias(CLAIMED)), note


def show_claim(db: Any, claim_id: int, *, now: dt.datetime | None = None,
               creator_id: str | None = None) -> Evidence:
    """A claim with its events and evidence; with ``creator_id``, only that creator's."""
    from ledger.store import claims as C
    from ledger.store.posting import manifest_data_dir
    from ledger.store.read import batch_manifest, batches, creator_statement

    with _write(db) as s, s.begin():
        C.expire_due(s, now)
        rows = C.claims(s, claim_id=claim_id, creator_id=creator_id)
        if rows.height == 0:
            raise ResidualsError(f"claim_id={claim_id}: no such claim")
        claim = rows.row(0, named=True)
        events = C.claim_events(s, [claim_id])
        statement = creator_statement(s, claim[S.CREATOR_ID], claim[S.PERIOD])
        notes: list[str] = []
        candidates = None
        if statement.height == 0:
            notes.append(f"period {claim[S.PERIOD]} has no statement line for this creator")
        if claim["kind"] == "copied_clip":
            found = batches(s).filter((pl.col(S.PERIOD) == claim[S.PERIOD])
                                      & ~pl.col(S.SUPERSEDED))[S.BATCH_ID]
            data_dir = manifest_data_dir(batch_manifest(s, found[0])) if found.len() else None
            candidates, note = _candidates(data_dir, claim[S.GENERATION_ID], claim[S.CLIP_ID])
            notes += [note] if note else []
    return Evidence(claim, events, statement, candidates, tuple(notes))
