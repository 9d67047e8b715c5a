"""Ingest -> attribute on the real sample videos finds the planted reuse."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from attribution.scorer import KnnScorer
from contract import schema as S
from contract.io import read_table
from ingest.media_samples import CLIPS_DIR, CLIPS_MANIFEST, GENERATIONS, NOVEL, make_media
from residuals.workflows.ingest import ingest


def test_reused_shots_are_credited(media: Path, ingested: Path) -> None:
    clips = read_table(ingested / "clips.parquet", S.CLIPS)
    gens = read_table(ingested / "generations.parquet", S.GENERATIONS, dim=65)
    assert clips.height == 20 and clips[S.CLIP_ID].n_unique() == 10  # two shots per clip
    assert gens.height == len(GENERATIONS) + len(NOVEL)
    attributions = KnnScorer(k=5).fit(clips).score(gens)
    truth = pl.read_parquet(media / S.TRUTH.filename)
    credited = attributions.filter(pl.col(S.WEIGHT) > 0).select(S.GENERATION_ID, S.CLIP_ID)
    hits = truth.join(credited.unique(), on=[S.GENERATION_ID, S.CLIP_ID], how="semi")
    assert truth.height == 9
    assert hits.height / truth.height >= 0.9
    # The top-ranked segment of each single-source generation is the reused shot.
    top = attributions.filter(pl.col(S.RANK) == 1).join(
        truth, on=[S.GENERATION_ID, S.CLIP_ID], how="inner", suffix="_truth")
    assert (top[S.SEGMENT_ID] == top[f"{S.SEGMENT_ID}_truth"]).mean() >= 0.8


def test_shot_spans_match_the_planted_cuts(ingested: Path) -> None:
    clips = pl.read_parquet(ingested / "clips.parquet")
    assert clips[S.T_START].to_list()[:2] == [0.0, 1.5]
    assert clips[S.T_END].to_list()[:2] == [1.5, 3.0]
    assert (clips[S.DURATION_S] == 3.0).all()
    assert clips.filter(pl.col(S.OPT_OUT_SIGNAL).is_not_null())[S.CLIP_ID].unique().to_list() \
        == ["chen/clip-02.mp4"]


def test_same_files_same_bytes_whatever_the_threads(media: Path, ingested: Path,
                                                   tmp_path: Path) -> None:
    clip_dir = media / CLIPS_DIR
    one = tmp_path / "one.parquet"
    ingest(clip_dir, one, manifest=clip_dir / CLIPS_MANIFEST, workers=1)
    assert one.read_bytes() == (ingested / "clips.parquet").read_bytes()
    assert (tmp_path / "one.rejects.csv").read_text() == "path,reason\n"


def test_media_samples_are_deterministic(media: Path, tmp_path: Path) -> None:
    make_media(tmp_path)
    for path in sorted(p for p in media.rglob("*") if p.is_file()):
        twin = tmp_path / path.relative_to(media)
        assert twin.read_bytes() == path.read_bytes(), path


def test_without_manifest_creators_are_folders_or_stems(media: Path, tmp_path: Path) -> None:
    videos = tmp_path / "v"
    shutil.copytree(media / CLIPS_DIR / "bo", videos / "bo")
    shutil.copy(media / CLIPS_DIR / "ana" / "clip-00.mp4", videos / "solo.mp4")
    ingest(videos, tmp_path / "c.parquet")
    clips = pl.read_parquet(tmp_path / "c.parquet")
    pairs = sorted(set(zip(clips[S.CLIP_ID], clips[S.CREATOR_ID], strict=True)))
    assert pairs == [("bo/clip-01.mp4", "bo"), ("bo/clip-05.mp4", "bo"),
                     ("bo/clip-09.mp4", "bo"), ("solo.mp4", "solo")]
