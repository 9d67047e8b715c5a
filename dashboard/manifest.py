"""The public training-data manifest: what the model was trained on.

Rule: pure functions from contract frames (``creators``, clips without their
embeddings) to summary frames. A creator who opted out is never *named*: their
clips are counted under one anonymous row, and the compliance table reports
how much opted-out content is still in the catalogue, because a catalogue that
honours opt-outs should hold none of it.

A clip with several segment rows counts once, with its ``duration_s`` taken
from its first row (duration is a property of the clip, not of a segment).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from contract import schema as S

#: Label of the row that aggregates creators who opted out of being named.
OPTED_OUT_LABEL = "(creators who opted out, not named)"
#: Label used for clips whose licence is not recorded.
NO_LICENSE_LABEL = "(not recorded)"

# Output column names of the summaries (they are display frames, not contract tables).
CLIPS = "clips"
HOURS = "hours"
CREATORS = "creators"
SHARE_OF_HOURS = "share_of_hours"

#: The clips table without its embeddings: what the manifest needs, read cheaply.
CLIPS_META = S.Table(
    S.CLIPS.name,
    required={k: v for k, v in S.CLIPS.required.items() if k != S.EMBEDDING},
    optional=S.CLIPS.optional,
    key=S.CLIPS.key,
)


@dataclass(frozen=True)
class Manifest:
    """Headline numbers and tables of the training-data manifest."""

    clips: int
    hours: float | None
    creators: int
    named_creators: int
    by_creator: pl.DataFrame
    by_license: pl.DataFrame | None
    opted_out: pl.DataFrame


def unique_clips(clips: pl.DataFrame) -> pl.DataFrame:
    """One row per clip (the first segment row when a clip has several)."""
    return clips.unique(subset=[S.CLIP_ID], keep="first", maintain_order=True)


def _hours(df: pl.DataFrame) -> pl.Expr:
    if S.DURATION_S in df.columns:
        return (pl.col(S.DURATION_S).fill_null(0.0).sum() / 3600.0).alias(HOURS)
    return pl.lit(None, dtype=pl.Float64).alias(HOURS)


def build_manifest(creators: pl.DataFrame, clips: pl.DataFrame) -> Manifest:
    """Summarise the catalogue by creator and licence, naming only those who allow it.

    Parameters
    ----------
    creators
        The validated ``creators`` table.
    clips
        The validated ``clips`` table (the embedding column may be absent).

    Returns
    -------
    Manifest
        ``by_creator`` (display_name, creator_id, clips, hours, share_of_hours;
        one anonymous row for all opted-out creators), ``by_license`` (None
        when the catalogue records no licences) and ``opted_out`` (the
        compliance check: opted-out creators' clips and hours still present).
    """
    one = unique_clips(clips).join(
        creators.select(S.CREATOR_ID, S.DISPLAY_NAME, S.OPTED_OUT), on=S.CREATOR_ID, how="left"
    ).with_columns(pl.col(S.OPTED_OUT).fill_null(False))
    has_hours = S.DURATION_S in one.columns
    total_hours = float(one[S.DURATION_S].fill_null(0.0).sum()) / 3600.0 if has_hours else None

    named = (
        one.filter(~pl.col(S.OPTED_OUT))
        .group_by(S.CREATOR_ID, S.DISPLAY_NAME)
        .agg(pl.len().alias(CLIPS), _hours(one))
    )
    hidden = one.filter(pl.col(S.OPTED_OUT))
    anon = hidden.select(
        pl.lit(None, dtype=pl.String).alias(S.CREATOR_ID),
        pl.lit(OPTED_OUT_LABEL).alias(S.DISPLAY_NAME),
        pl.len().cast(named.schema[CLIPS]).alias(CLIPS),
        _hours(one),
    ).filter(pl.col(CLIPS) > 0)
    by_creator = pl.concat([named, anon], how="vertical_relaxed")
    denom = total_hours if total_hours else None
    by_creator = by_creator.with_columns(
        (pl.col(HOURS) / denom if denom else pl.lit(None, dtype=pl.Float64)).alias(SHARE_OF_HOURS)
    ).sort([CLIPS, S.CREATOR_ID], descending=[True, False], nulls_last=True).select(
        S.DISPLAY_NAME, S.CREATOR_ID, CLIPS, HOURS, SHARE_OF_HOURS
    )

    by_license = None
    if S.LICENSE in one.columns:
        by_license = (
            one.with_columns(pl.col(S.LICENSE).fill_null(NO_LICENSE_LABEL))
            .group_by(S.LICENSE)
            .agg(pl.len().alias(CLIPS), _hours(one), pl.col(S.CREATOR_ID).n_unique().alias(CREATORS))
            .sort([CLIPS, S.LICENSE], descending=[True, False])
        )

    opted_out = hidden.select(
        pl.col(S.CREATOR_ID).n_unique().alias(CREATORS), pl.len().alias(CLIPS), _hours(one)
    )
    return Manifest(
        clips=one.height,
        hours=total_hours,
        creators=int(one[S.CREATOR_ID].n_unique()),
        named_creators=named.height,
        by_creator=by_creator,
        by_license=by_license,
        opted_out=opted_out,
    )
