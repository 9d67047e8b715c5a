"""Draw the public summary of training content on a page.

Rule: this module only draws a summary it is given (the dict of
:func:`ingest.transparency.summarize`): as plain text, with the JSON and HTML
files offered for download; it reads nothing and computes nothing.
"""

from __future__ import annotations

from typing import Any


def _lines(value: Any, indent: int = 0) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        out: list[str] = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out += [f"{pad}{str(k).replace('_', ' ')}:"] + _lines(v, indent + 1)
            else:
                out.append(f"{pad}{str(k).replace('_', ' ')}: {v if v != [] else 'none'}")
        return out
    if isinstance(value, list):
        return [line for v in value for line in _lines(v, indent)]
    return [f"{pad}- {value}"]


def summary_text(summary: dict[str, Any]) -> str:
    """The summary as indented plain text (what the page shows)."""
    return "\n".join(_lines(summary))


def render_summary(summary: dict[str, Any]) -> None:
    """Show the summary as plain text with two download buttons (JSON, HTML)."""
    import streamlit as st

    from ingest.transparency import render_html
    from residuals.workflows.transparency import HTML_NAME, JSON_NAME, summary_json

    st.subheader("Public summary of training content")
    st.text(summary_text(summary))
    st.download_button("Download JSON", summary_json(summary), file_name=JSON_NAME,
                       mime="application/json")
    st.download_button("Download HTML", render_html(summary), file_name=HTML_NAME,
                       mime="text/html")
