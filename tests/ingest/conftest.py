"""Shared fixtures: the media samples, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.media_samples import CLIPS_DIR, CLIPS_MANIFEST, GENERATIONS_DIR


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample videos, clip manifest, creators and truth (read only)."""
    from residuals.workflows.ingest import make_media_samples

    root = tmp_path_factory.mktemp("media")
    make_media_samples(root)
    return root


@pytest.fixture(scope="session")
def ingested(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``clips.parquet`` and ``generations.parquet`` ingested from :func:`media`."""
    from residuals.workflows.ingest import ingest

    out = tmp_path_factory.mktemp("ingested")
    ingest(media / CLIPS_DIR, out / "clips.parquet", manifest=media / CLIPS_DIR / CLIPS_MANIFEST)
    ingest(media / GENERATIONS_DIR, out / "generations.parquet", kind="generations")
    return out
