"""The logged-in creator's own rows: statement, profile, earning clips, downloads.

Rule: every public function here takes **no** creator argument: it reads the
creator_id of the login (:func:`dashboard.data.session.creator_id`, which
refuses any other login). The cached readers below take the creator_id as an
argument, so it is part of every cache key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from sqlalchemy.orm import Session

from contract import schema as S
from contract.errors import ResidualsError
from dashboard.data.public import batch_data_dir, batch_manifest
from dashboard.data.session import creator_id
from dashboard.data.store import cached_reader, engine, first_line
from ledger.policy import Policy
from ledger.store import read
from ledger.store.claims import creator_adjustments
from ledger.store.profiles import Profile as PayoutProfile

T = TypeVar("T")

# Columns of the clip-detail frame that are not contract columns.
MATCHES = "matches"
TOP_MATCHES = "top_matches"
SEGMENT = "segment"
TOP_MATCHES_SHOWN = 3

_statement = cached_reader(read.creator_statement)
_clip_earnings = cached_reader(read.creator_clip_earnings)
_profile = cached_reader(read.creator_profile)
_adjustments = cached_reader(creator_adjustments)


@dataclass(frozen=True)
class Profile:
    """The logged-in creator's name and what the platform owes them now."""

    creator_id: str
    display_name: str
    balance_minor: int
    currency: str | None


def my_profile() -> Profile:
    """Name and carried-forward balance of the logged-in creator."""
    cid = creator_id()
    name, balance, currency = _profile(cid)
    return Profile(cid, name, balance, currency)


def my_statement() -> pl.DataFrame:
    """The logged-in creator's statement lines, one per standing batch, oldest first."""
    return _statement(creator_id())


def _now_read(read: Callable[..., T], *args: Any) -> T:
    """``read(session, *args)`` in a read session, not cached: payouts and profiles change
    when staff export, import a report or set a profile, and the page shows that at once."""
    from ledger.store import read_session

    with read_session(engine()) as session:
        return read(session, *args)


def my_payouts() -> pl.DataFrame:
    """The logged-in creator's payouts with their current state, newest batch first
    (:func:`ledger.store.read.creator_payouts`)."""
    return _now_read(read.creator_payouts, creator_id())


def my_payout_profile() -> PayoutProfile:
    """The logged-in creator's payout profile: method, country, tax form, what is missing."""
    from ledger.store.profiles import current_profile

    return _now_read(current_profile, creator_id())


def my_clip_earnings(period: str) -> pl.DataFrame:
    """The clips that earned the logged-in creator's allocation in ``period``."""
    return _clip_earnings(creator_id(), period)


def _scan(path: Path, table: S.Table, columns: list[str], creator_id: str | None) -> pl.DataFrame:
    """Read ``columns`` of a contract table (rows of one creator when given), validated."""
    from contract.io import validate_frame

    try:
        have = pl.read_parquet_schema(path)
        lazy = pl.scan_parquet(path).select([c for c in columns if c in have])
        if creator_id is not None:
            lazy = lazy.filter(pl.col(S.CREATOR_ID) == creator_id)
        df = lazy.collect()
    except Exception as exc:  # polars raises several types for unreadable files
        raise ResidualsError(f"{path}: is not a readable Parquet file ({first_line(exc)})"
                             ) from None
    meta = S.Table(table.name,
                   required={k: v for k, v in table.required.items() if k in columns},
                   optional={k: v for k, v in table.optional.items() if k in columns},
                   key=table.key if all(k in columns for k in table.key) else ())
    return validate_frame(df, meta, path, allow_empty=True)


def clip_details(earnings: pl.DataFrame, clips: pl.DataFrame | None,
                 attributions: pl.DataFrame | None, generations: pl.DataFrame | None) -> pl.DataFrame:
    """The clips that earned a creator's share, with caption, matched generations and segment.

    Pure: every input is already limited to one creator (and ``attributions``
    to the batch's period). ``matches`` counts the generations that matched a
    clip; ``top_matches`` lists the strongest few (by weight) with their
    prompts; ``segment`` is the best-matching segment and its time span where
    the catalogue has segments.
    """
    out = earnings
    if clips is not None and clips.height:
        meta_cols = [c for c in (S.CAPTION, S.LICENSE, S.DURATION_S) if c in clips.columns]
        meta = clips.unique(subset=[S.CLIP_ID], keep="first", maintain_order=True)
        out = out.join(meta.select(S.CLIP_ID, *meta_cols), on=S.CLIP_ID, how="left")
    if attributions is not None and attributions.height:
        attr = attributions
        if generations is not None and S.PROMPT in generations.columns:
            attr = attr.join(generations.select(S.GENERATION_ID, S.PROMPT),
                             on=S.GENERATION_ID, how="left")
            label = pl.concat_str([pl.col(S.GENERATION_ID),
                                   pl.lit(": "), pl.col(S.PROMPT).fill_null("")])
        else:
            label = pl.col(S.GENERATION_ID)
        ranked = attr.sort([S.CLIP_ID, S.WEIGHT, S.GENERATION_ID], descending=[False, True, False])
        per_clip = ranked.group_by(S.CLIP_ID, maintain_order=True).agg(
            pl.len().alias(MATCHES),
            label.head(TOP_MATCHES_SHOWN).str.join(" | ").alias(TOP_MATCHES),
        )
        out = out.join(per_clip, on=S.CLIP_ID, how="left").with_columns(
            pl.col(MATCHES).fill_null(0))
        if S.SEGMENT_ID in attr.columns and clips is not None and S.SEGMENT_ID in clips.columns:
            best = (attr.filter(pl.col(S.SEGMENT_ID).is_not_null())
                    .sort([S.CLIP_ID, S.SIMILARITY, S.GENERATION_ID],
                          descending=[False, True, False])
                    .group_by(S.CLIP_ID, maintain_order=True).first()
                    .select(S.CLIP_ID, S.SEGMENT_ID))
            span_cols = [c for c in (S.T_START, S.T_END) if c in clips.columns]
            best = best.join(clips.select(S.CLIP_ID, S.SEGMENT_ID, *span_cols),
                             on=[S.CLIP_ID, S.SEGMENT_ID], how="left")
            text = pl.col(S.SEGMENT_ID)
            if len(span_cols) == 2:
                text = pl.concat_str([
                    pl.col(S.SEGMENT_ID), pl.lit(" ("), pl.col(S.T_START).round(1).cast(pl.String),
                    pl.lit("–"), pl.col(S.T_END).round(1).cast(pl.String), pl.lit(" s)"),
                ]).fill_null(pl.col(S.SEGMENT_ID))
            out = out.join(best.select(S.CLIP_ID, text.alias(SEGMENT)), on=S.CLIP_ID, how="left")
    return out


def clip_details_of(session: Session, creator: str, period: str,
                    data_dir: str | None) -> pl.DataFrame:
    """:func:`clip_details` of one creator and period, read from the ledger and ``data_dir``."""
    earnings = read.creator_clip_earnings(session, creator, period)
    if data_dir is None:
        return earnings
    root = Path(data_dir)
    clip_cols = [S.CLIP_ID, S.CREATOR_ID, S.CAPTION, S.LICENSE, S.DURATION_S,
                 S.SEGMENT_ID, S.T_START, S.T_END]
    clips = _scan(root / S.CLIPS.filename, S.CLIPS, clip_cols, creator)
    attributions = generations = None
    attr_path = root / S.ATTRIBUTIONS.filename
    if attr_path.is_file():
        attributions = _scan(attr_path, S.ATTRIBUTIONS,
                             [*S.ATTRIBUTIONS.required, S.SEGMENT_ID], creator)
        gen_path = root / S.GENERATIONS.filename
        if gen_path.is_file() and attributions.height:
            gens = _scan(gen_path, S.GENERATIONS, [S.GENERATION_ID, S.PROMPT], None)
            generations = gens.filter(pl.col(S.GENERATION_ID).is_in(
                attributions[S.GENERATION_ID].unique().implode()))
    return clip_details(earnings, clips, attributions, generations)


_clip_details = cached_reader(clip_details_of)


def my_clip_details(period: str, batch_id: str) -> pl.DataFrame:
    """The logged-in creator's earning clips in ``period``, with the catalogue's details."""
    where = batch_data_dir(batch_id)
    return _clip_details(creator_id(), period,
                         str(where.path) if where.path is not None else None)


def my_statement_csv() -> bytes:
    """The logged-in creator's statement (every standing batch) as CSV, as the ledger writes
    it: creator id and name on every line, rounded shares, ISO dates."""
    from contract.io import spreadsheet_safe
    from ledger.store.statements import statement_csv_table

    me = my_profile()
    table = statement_csv_table(me.creator_id, me.display_name, my_statement(),
                                _adjustments(me.creator_id))
    return spreadsheet_safe(table).write_csv().encode("utf-8")


def statement_pdf_of(session: Session, creator: str, language: str) -> bytes:
    """The ledger's PDF statement of one creator in ``language``, every standing batch."""
    from ledger.store.statement_pdf import statement_pdf

    name, _balance, _currency = read.creator_profile(session, creator)
    return statement_pdf(creator, name, read.creator_statement(session, creator),
                         read.creator_clip_earnings(session, creator), language,
                         adjustments=creator_adjustments(session, creator))


_statement_pdf = cached_reader(statement_pdf_of)


def my_statement_pdf(language: str) -> bytes:
    """The logged-in creator's PDF statement in ``language`` (``en`` or ``es``)."""
    return _statement_pdf(creator_id(), language)


def batch_policy(batch_id: str) -> Policy | None:
    """The policy a batch was allocated under, parsed from its manifest; None when the
    recorded text no longer parses (the page then says it cannot describe it)."""
    from ledger.policy import parse_policy
    from ledger.store.posting import manifest_policy_text

    try:
        return parse_policy(manifest_policy_text(batch_manifest(batch_id)),
                            source=f"the policy of batch {batch_id[:12]}")
    except ResidualsError:
        return None


def batch_pool_minor(batch_id: str) -> int:
    """The pool of a batch in minor units, as its manifest records it."""
    return int(batch_manifest(batch_id)["pool_minor"])


def batch_and_superseded_manifests(batch_id: str) -> tuple[dict, dict]:
    """The manifests of a batch and of the batch it superseded (public, like every
    manifest); raises when the batch superseded none."""
    new = batch_manifest(batch_id)
    old_id = new.get("supersedes")
    if not isinstance(old_id, str):
        raise ResidualsError(f"batch {batch_id[:12]} supersedes no batch")
    return new, batch_manifest(old_id)


def statement_html_of(session: Session, creator: str, language: str = "en") -> str:
    """The ledger's readable statement (HTML) of one creator in ``language``, every
    standing batch."""
    from ledger.store.statements import statement_html

    name, _balance, _currency = read.creator_profile(session, creator)
    return statement_html(creator, name, read.creator_statement(session, creator),
                          read.creator_clip_earnings(session, creator), language,
                          adjustments=creator_adjustments(session, creator))


_statement_html = cached_reader(statement_html_of)


def my_statement_html(language: str = "en") -> bytes:
    """The ledger's readable statement (HTML) of the logged-in creator in ``language``,
    every standing batch."""
    return _statement_html(creator_id(), language).encode("utf-8")
