"""Altair charts the pages draw: built from frames, no drawing by hand.

Rule: each function takes a display frame and returns an ``alt.Chart``; it
never reads data and never decides what a user may see.
"""

from __future__ import annotations

import altair as alt
import polars as pl

#: Columns of the long frames the trend charts draw (display frames, not contract tables).
WHAT = "what"
AMOUNT = "amount"


def bars(df: pl.DataFrame, *, label: str, value: str, title: str, value_title: str,
         limit: int = 25) -> alt.Chart:
    """Horizontal bars of ``value`` by ``label``, largest first, at most ``limit`` bars."""
    top = df.sort(value, descending=True, nulls_last=True).head(limit)
    return (
        alt.Chart(top.to_pandas(), title=title)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X(f"{value}:Q", title=value_title),
            y=alt.Y(f"{label}:N", sort="-x", title=None),
            tooltip=[alt.Tooltip(f"{label}:N"), alt.Tooltip(f"{value}:Q", format=",.2f")],
        )
    )


def trend(df: pl.DataFrame, *, x: str, y: str, title: str, y_title: str,
          color: str | None = None, x_title: str = "Period") -> alt.Chart:
    """A line with points of ``y`` over the ordered periods ``x`` (one line per ``color``)."""
    enc: dict = {
        "x": alt.X(f"{x}:O", title=x_title, sort=None),
        "y": alt.Y(f"{y}:Q", title=y_title),
        "tooltip": [alt.Tooltip(f"{x}:O"), alt.Tooltip(f"{y}:Q", format=",.2f")],
    }
    if color is not None:
        enc["color"] = alt.Color(f"{color}:N", title=None)
        enc["tooltip"].append(alt.Tooltip(f"{color}:N"))
    return alt.Chart(df.to_pandas(), title=title).mark_line(point=True).encode(**enc)


def lorenz(df: pl.DataFrame, *, x: str, y: str, series: str, title: str) -> alt.Chart:
    """Lorenz curves (one per ``series``) over the line of perfect equality."""
    equal = pl.DataFrame({x: [0.0, 1.0], y: [0.0, 1.0]})
    diag = (
        alt.Chart(equal.to_pandas())
        .mark_line(strokeDash=[4, 4], color="gray")
        .encode(x=alt.X(f"{x}:Q"), y=alt.Y(f"{y}:Q"))
    )
    curves = (
        alt.Chart(df.to_pandas())
        .mark_line()
        .encode(
            x=alt.X(f"{x}:Q", title="Share of creators (poorest first)", axis=alt.Axis(format="%")),
            y=alt.Y(f"{y}:Q", title="Share of the pool", axis=alt.Axis(format="%")),
            color=alt.Color(f"{series}:N", title=None),
        )
    )
    return (diag + curves).properties(title=title)


def stacked(df: pl.DataFrame, *, x: str, y: str, color: str, title: str, y_title: str,
            order: list[str] | None = None) -> alt.Chart:
    """Vertical bars of ``y`` per ``x``, stacked by ``color`` (in ``order`` when given)."""
    return (
        alt.Chart(df.to_pandas(), title=title)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=None, sort=None),
            y=alt.Y(f"{y}:Q", title=y_title, stack="zero"),
            color=alt.Color(f"{color}:N", title=None, sort=order,
                            scale=alt.Scale(domain=order) if order else alt.Undefined),
            tooltip=[alt.Tooltip(f"{x}:N"), alt.Tooltip(f"{color}:N"),
                     alt.Tooltip(f"{y}:Q", format=",.2f")],
        )
    )
