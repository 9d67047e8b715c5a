"""The public summary of training content, from the clips catalogue.

Rule: the summary follows the sections of the European Commission's template
for the public summary of training content of general-purpose AI models
(24 July 2025): 1. general information, 2. list of data sources, 3. data
processing. Every value is computed from ``clips`` (its provenance columns
and durations) or stated by the provider in ``provider.toml``; a field that
neither supports is :data:`NOT_RECORDED`, never a guess. Shares and the
video-hours size band are by duration over all clips of the modality.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import polars as pl

from contract import schema as S
from contract.errors import ContractError, first_line
from contract.io import url_domain

NOT_RECORDED = "not recorded"
TEMPLATE = ("European Commission, Template for the public summary of training content for "
            "general-purpose AI models (24 July 2025)")
#: A public dataset is named when it is at least this share of the modality's data.
NAMED_DATASET_SHARE = 0.03
#: The share of crawled domains (by size, largest first) listed.
TOP_DOMAIN_SHARE = 0.10
#: Video-hours size bands of the template.
SIZE_BANDS = ((10_000.0, "< 10k hours"), (1_000_000.0, "10k-1M hours"),
              (math.inf, "> 1M hours"))
_PROVIDER_KEYS = (("provider", "name"), ("model", "name"), ("model", "version"))


def read_provider(path: Path) -> dict[str, Any]:
    """``provider.toml``: ``[provider] name``, ``[model] name, version`` required;
    ``[provider] contact`` and ``[processing] tdm_measures, illegal_content`` optional."""
    if not path.is_file():
        raise ContractError(path, "provider file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(path, f"is not valid TOML ({first_line(exc, 160)})") from None
    for table, key in _PROVIDER_KEYS:
        value = data.get(table, {}).get(key) if isinstance(data.get(table), dict) else None
        if not isinstance(value, str) or not value.strip():
            raise ContractError(path, "missing, expected a non-empty string",
                                column=f"{table}.{key}")
    return data


def _text(data: dict[str, Any], table: str, key: str) -> str:
    value = data.get(table, {}).get(key) if isinstance(data.get(table), dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else NOT_RECORDED


def _per_clip(clips: pl.DataFrame) -> pl.DataFrame:
    """One row per clip (segments collapsed), with its hours when known."""
    cols = [c for c in clips.columns if c in S.PROVENANCE or c == S.DURATION_S]
    return clips.group_by(S.CLIP_ID, maintain_order=True).agg(pl.col(cols).first())


def _values(clips: pl.DataFrame, col: str) -> list[str] | str:
    if col not in clips.columns or clips[col].drop_nulls().len() == 0:
        return NOT_RECORDED
    return sorted({str(v) for v in clips[col].drop_nulls().to_list()})


def _general(clips: pl.DataFrame, provider: dict[str, Any], hours: float | None) -> dict:
    band = NOT_RECORDED if hours is None else next(b for lim, b in SIZE_BANDS if hours < lim)
    latest = (str(clips[S.ACQUIRED_AT].max()) if S.ACQUIRED_AT in clips.columns
              and clips[S.ACQUIRED_AT].drop_nulls().len() else NOT_RECORDED)
    return {
        "provider": {"name": _text(provider, "provider", "name"),
                     "contact": _text(provider, "provider", "contact")},
        "model": {"name": _text(provider, "model", "name"),
                  "version": _text(provider, "model", "version")},
        "modalities": [{"modality": "video", "items": clips.height,
                        "hours": NOT_RECORDED if hours is None else round(hours, 3),
                        "size_band": band}],
        "content_types": _values(clips, S.CONTENT_TYPE),
        "latest_acquisition_date": latest,
        "languages": _values(clips, S.LANGUAGE),
    }


def _used(clips: pl.DataFrame, source: str) -> str:
    """``yes`` if a clip has this source type; ``no`` only if every clip's type is known."""
    if S.SOURCE_TYPE not in clips.columns:
        return NOT_RECORDED
    types = clips[S.SOURCE_TYPE]
    if (types == source).any():
        return "yes"
    return "no" if types.null_count() == 0 else NOT_RECORDED


def _shares(clips: pl.DataFrame, by: str, size: pl.Expr, total: float) -> pl.DataFrame:
    return (clips.filter(pl.col(by).is_not_null()).group_by(by).agg(size.sum().alias("size"))
            .with_columns((pl.col("size") / total).alias("share"))
            .sort(["size", by], descending=[True, False]))


def _sources(clips: pl.DataFrame, size: pl.Expr) -> dict:
    total = float(clips.select(size.sum()).item())
    public = clips.filter(pl.col(S.SOURCE_TYPE) == "public_dataset") if (
        S.SOURCE_TYPE in clips.columns) else clips.clear()
    named: list[dict] | str = NOT_RECORDED
    if S.DATASET_NAME in clips.columns and public.height:
        big = _shares(public, S.DATASET_NAME, size, total).filter(
            pl.col("share") >= NAMED_DATASET_SHARE)
        named = [{"name": n, "share": round(s, 4)}
                 for n, s in zip(big[S.DATASET_NAME], big["share"], strict=True)]
    crawled = clips.filter(pl.col(S.SOURCE_TYPE) == "crawled") if (
        S.SOURCE_TYPE in clips.columns) else clips.clear()
    top: list[dict] | str = NOT_RECORDED
    if S.SOURCE_URL in clips.columns and crawled[S.SOURCE_URL].drop_nulls().len():
        urls = crawled[S.SOURCE_URL].unique().drop_nulls()
        domains = pl.DataFrame({S.SOURCE_URL: urls,
                                "domain": [url_domain(u) for u in urls.to_list()]})
        sized = _shares(crawled.join(domains, on=S.SOURCE_URL), "domain", size, total)
        keep = sized.head(max(1, math.ceil(TOP_DOMAIN_SHARE * sized.height)))
        top = [{"domain": d, "share": round(s, 4)}
               for d, s in zip(keep["domain"], keep["share"], strict=True)]
    return {
        "public_datasets": {"used": _used(clips, "public_dataset"),
                            "named_at_least_3_percent": named},
        "licensed_data": {"video": _used(clips, "licensed")},
        "crawled_data": {"used": _used(clips, "crawled"), "top_10_percent_domains": top},
        "user_data": {"used": _used(clips, "user")},
        "synthetic_data": {"used": _used(clips, "synthetic")},
        "other_sources": {"used": _used(clips, "other")},
    }


def _processing(clips: pl.DataFrame, provider: dict[str, Any]) -> dict:
    found: int | str = NOT_RECORDED
    by_signal: dict[str, int] | str = NOT_RECORDED
    if S.OPT_OUT_SIGNAL in clips.columns:
        signals = clips[S.OPT_OUT_SIGNAL].drop_nulls()
        found = signals.len()
        by_signal = {str(k): int(v) for k, v in sorted(signals.value_counts().rows())}
    return {
        "tdm_opt_outs": {
            "measures": _text(provider, "processing", "tdm_measures"),
            "opted_out_content_found": found,
            "found_by_signal": by_signal,
            # The catalogue lists what the model was trained on; content removed
            # before training is not in it, and no record of removals is kept.
            "opted_out_content_removed": NOT_RECORDED,
        },
        "illegal_content_removal": _text(provider, "processing", "illegal_content"),
    }


def summarize(clips: pl.DataFrame, provider: dict[str, Any]) -> dict[str, Any]:
    """The summary (a JSON-ready dict) of a validated clips table and a provider file."""
    per_clip = _per_clip(clips)
    known = S.DURATION_S in per_clip.columns and per_clip[S.DURATION_S].null_count() == 0
    hours = float(per_clip[S.DURATION_S].sum()) / 3600.0 if known else None
    size = pl.col(S.DURATION_S) / 3600.0 if known else pl.lit(1.0)
    return {
        "template": TEMPLATE,
        "share_basis": "video hours" if known else "number of clips (durations not recorded)",
        "general_information": _general(per_clip, provider, hours),
        "data_sources": _sources(per_clip, size),
        "data_processing": _processing(per_clip, provider),
    }


_TITLES = {"general_information": "1. General information",
           "data_sources": "2. List of data sources",
           "data_processing": "3. Relevant data processing aspects"}


def _html_value(value: Any) -> str:
    from html import escape

    if isinstance(value, dict):
        rows = "".join(f"<tr><th>{escape(str(k).replace('_', ' '))}</th>"
                       f"<td>{_html_value(v)}</td></tr>" for k, v in value.items())
        return f"<table>{rows}</table>"
    if isinstance(value, list):
        return "<ul>" + "".join(f"<li>{_html_value(v)}</li>" for v in value) + "</ul>" \
            if value else "none"
    return escape(str(value))


def render_html(summary: dict[str, Any]) -> str:
    """A readable, self-contained HTML page of the summary; every value escaped."""
    from html import escape

    model = summary["general_information"]["model"]
    title = escape(f"Public summary of training content: {model['name']} {model['version']}")
    sections = "".join(f"<h2>{escape(_TITLES[k])}</h2>{_html_value(summary[k])}"
                       for k in _TITLES)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>body{{font-family:sans-serif;max-width:60em;"
            "margin:2em auto}th{text-align:left;vertical-align:top;padding-right:1em}"
            "td,th{border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>{title}</h1><p>Following: {escape(summary['template'])}. "
            f"Shares are by {escape(summary['share_basis'])}.</p>{sections}</body></html>\n")

