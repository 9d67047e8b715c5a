"""The public training-data summary: schema, the 3% and 10% rules, 'not recorded', escaping."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import jsonschema
import numpy as np
import polars as pl
import pytest

from contract import schema as S
from contract.errors import ResidualsError
from dashboard.views.transparency_summary import summary_text
from ingest.transparency import NOT_RECORDED, read_provider, summarize
from residuals.workflows.transparency import transparency_summary

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs"
                     / "transparency-summary.schema.json").read_text())
BIN = Path(sys.executable).parent
PROVIDER = {"provider": {"name": "Lab"}, "model": {"name": "M", "version": "2"}}


def _clips(n: int, **cols: list) -> pl.DataFrame:
    emb = np.eye(n, 4, dtype=np.float32) + 0.1
    return pl.DataFrame({S.CLIP_ID: [f"c{i}" for i in range(n)], S.CREATOR_ID: ["a"] * n,
                         S.EMBEDDING: emb, **cols})


def test_summary_of_the_media_samples_validates(ingested: Path, tmp_path: Path) -> None:
    provider = tmp_path / "provider.toml"
    provider.write_text('[provider]\nname = "Lab <script>alert(1)</script>"\n'
                        '[model]\nname = "M"\nversion = "1.0"\n')
    res = transparency_summary(ingested, provider, tmp_path / "out")
    summary = json.loads(res.json_path.read_text())
    jsonschema.validate(summary, SCHEMA)
    general = summary["general_information"]
    assert general["modalities"][0] == {"modality": "video", "items": 10, "hours": 0.008,
                                        "size_band": "< 10k hours"}
    assert general["latest_acquisition_date"] == "2025-09-15"
    assert summary["data_processing"]["tdm_opt_outs"]["opted_out_content_found"] == 1
    assert summary["data_processing"]["illegal_content_removal"] == NOT_RECORDED
    page = res.html_path.read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Lab <script>" in summary_text(summary)  # plain text on the page, not HTML


def test_without_provenance_every_source_is_not_recorded() -> None:
    summary = summarize(_clips(3), PROVIDER)
    jsonschema.validate(summary, SCHEMA)
    sources = summary["data_sources"]
    assert all(v["used"] == NOT_RECORDED for k, v in sources.items() if k != "licensed_data")
    assert sources["licensed_data"]["video"] == NOT_RECORDED
    general = summary["general_information"]
    assert general["modalities"][0]["hours"] == NOT_RECORDED
    assert general["languages"] == general["content_types"] == NOT_RECORDED
    assert summary["share_basis"].startswith("number of clips")


def test_three_percent_rule_is_over_all_data_and_top_tenth_of_domains() -> None:
    n = 100
    types = ["public_dataset"] * 5 + ["crawled"] * 95
    names = ["big"] * 3 + ["small"] * 2 + [None] * 95
    urls = [None] * 5 + [f"https://www.site{i % 19}.com/v/{i}" for i in range(95)]
    summary = summarize(_clips(n, **{S.SOURCE_TYPE: types, S.DATASET_NAME: names,
                                     S.SOURCE_URL: urls, S.DURATION_S: [3600.0] * n}), PROVIDER)
    jsonschema.validate(summary, SCHEMA)
    sources = summary["data_sources"]
    assert sources["public_datasets"]["named_at_least_3_percent"] == [
        {"name": "big", "share": 0.03}]  # "small" is 2% of all video, not named
    top = sources["crawled_data"]["top_10_percent_domains"]
    assert len(top) == 2 and top[0]["domain"] == "site0.com"  # ceil(19 / 10) domains
    assert sources["synthetic_data"]["used"] == "no"
    assert summary["general_information"]["modalities"][0]["size_band"] == "< 10k hours"


def test_unknown_source_types_make_no_an_unknown() -> None:
    summary = summarize(_clips(2, **{S.SOURCE_TYPE: ["licensed", None]}), PROVIDER)
    assert summary["data_sources"]["licensed_data"]["video"] == "yes"
    assert summary["data_sources"]["user_data"]["used"] == NOT_RECORDED


def test_size_bands() -> None:
    for hours, band in ((9_999, "< 10k hours"), (10_000, "10k-1M hours"),
                        (2_000_000, "> 1M hours")):
        s = summarize(_clips(1, **{S.DURATION_S: [hours * 3600.0]}), PROVIDER)
        assert s["general_information"]["modalities"][0]["size_band"] == band


@pytest.mark.parametrize(("text", "message"), [
    ('[provider]\nname = "x"\n', "column model.name: missing"),
    ('[provider\n', "is not valid TOML"),
    ('[provider]\nname = ""\n[model]\nname="m"\nversion="1"\n', "column provider.name"),
])
def test_bad_provider_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "provider.toml"
    path.write_text(text)
    with pytest.raises(ResidualsError, match=message):
        read_provider(path)


def test_cli_bad_input_writes_nothing(ingested: Path, tmp_path: Path) -> None:
    provider = tmp_path / "p.toml"
    provider.write_text('[provider]\nname = "x"\n')
    out = tmp_path / "out"
    proc = subprocess.run([str(BIN / "residuals"), "transparency", "summary", "--data",
                           str(ingested), "--provider", str(provider), "--out", str(out)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "p.toml, column model.name: missing" in proc.stderr
    assert not out.exists()


def test_future_acquisition_in_a_catalogue_is_refused(tmp_path: Path) -> None:
    from contract.io import validate_frame

    clips = _clips(1, **{S.ACQUIRED_AT: [date(2999, 1, 1)]})
    with pytest.raises(ResidualsError, match="row 0 .*column acquired_at: is in the future"):
        validate_frame(clips, S.CLIPS, "clips.parquet")


def test_dashboard_draws_the_summary_with_two_downloads(ingested: Path) -> None:
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        import streamlit as st

        from dashboard.views.transparency_summary import render_summary

        render_summary(st.session_state["summary"])

    from contract.io import read_table

    clips = read_table(ingested / "clips.parquet", S.CLIPS, embeddings=False)
    app = AppTest.from_function(page)
    app.session_state["summary"] = summarize(clips, PROVIDER)
    app.run(timeout=30)
    assert not app.exception
    text = app.text[0].value
    assert "latest acquisition date: 2025-09-15" in text
    assert "opted out content removed: not recorded" in text
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["Download JSON", "Download HTML"]
