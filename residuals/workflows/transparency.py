"""The transparency flow: a data directory and a provider file to the public summary.

Rule: the clips table is read through the data contract, the summary is
computed by :func:`ingest.transparency.summarize`, and both files (JSON and
HTML) are rendered in memory first, then each written atomically, so a bad
input leaves nothing behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract import schema as S
from contract.errors import ResidualsError
from contract.io import atomic_output, read_table
from ingest.transparency import read_provider, render_html, summarize

JSON_NAME, HTML_NAME = "training-summary.json", "training-summary.html"


@dataclass(frozen=True)
class SummaryResult:
    """The summary and where it was written."""

    summary: dict[str, Any]
    json_path: Path
    html_path: Path


def summary_json(summary: dict[str, Any]) -> str:
    """The summary as stable JSON text (sorted keys kept in template order, UTF-8)."""
    return json.dumps(summary, indent=2, ensure_ascii=False) + "\n"


def transparency_summary(data: Path, provider: Path, out: Path) -> SummaryResult:
    """Write ``training-summary.json`` and ``.html`` under ``out`` for ``data/clips.parquet``."""
    data, out = Path(data), Path(out)
    if not data.is_dir():
        raise ResidualsError(f"{data}: data directory not found")
    info = read_provider(Path(provider))
    clips = read_table(data / S.CLIPS.filename, S.CLIPS, embeddings=False)
    summary = summarize(clips, info)
    text, page = summary_json(summary), render_html(summary)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / JSON_NAME, out / HTML_NAME
    with atomic_output(json_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    with atomic_output(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return SummaryResult(summary, json_path, html_path)
