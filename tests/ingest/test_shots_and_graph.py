"""The cut rule on made-up thumbnails; task keys and progress of the Dask pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.encoders import ThumbnailEncoder
from ingest.media_samples import CLIPS_DIR
from ingest.pipeline import Item, Settings, graph, run
from ingest.shots import CUT_SIDE, ShotCutter, cut_points

FPS = 12


def _pan(rng: np.random.Generator, n: int, base: int = 128, spread: int = 60) -> list:
    """``n`` thumbnails of a smooth picture sliding one pixel per frame."""
    y, x = np.mgrid[0:CUT_SIDE, 0:CUT_SIDE + n].astype(np.float64)
    phase = rng.uniform(0, 2 * np.pi, 2)
    wave = np.sin(2 * np.pi * x / 24 + phase[0]) * np.cos(2 * np.pi * y / 32 + phase[1])
    wide = np.clip(base + spread * wave, 0, 255)[..., None].repeat(3, axis=2)
    return [wide[:, i:i + CUT_SIDE].astype(np.uint8) for i in range(n)]


def _cuts(frames: list, **kw: float) -> list[int]:
    times = np.arange(len(frames)) / FPS
    return cut_points(np.stack(frames), times, **kw).tolist()


def test_hard_cuts_found_and_camera_moves_kept_whole() -> None:
    rng = np.random.default_rng(0)
    a, b, c = _pan(rng, 18), _pan(rng, 18, base=60), _pan(rng, 18, base=190)
    assert _cuts(a + b + c) == [0, 18, 36]
    assert _cuts(a) == [0]


def test_cut_between_pictures_of_the_same_tone() -> None:
    rng = np.random.default_rng(1)
    still = [np.full((CUT_SIDE, CUT_SIDE, 3), 120, np.uint8)] * 12
    texture = _pan(rng, 12, base=120, spread=30)  # same mean, d ~ 0.06 at the cut
    assert _cuts(still + texture) == [0, 12]


def test_min_shot_length_and_arguments() -> None:
    rng = np.random.default_rng(2)
    flicker = _pan(rng, 2, base=30) + _pan(rng, 2, base=220) + _pan(rng, 12, base=30)
    assert _cuts(flicker) == [0, 4]  # the cut at frame 2 is 0.17 s after the start
    assert _cuts(flicker, min_shot_s=0.0) == [0, 2, 4]
    with pytest.raises(ValueError, match="threshold=1.5: expected 0 < threshold < 1"):
        ShotCutter(threshold=1.5)


def test_keys_are_tokenized_from_files_encoder_and_settings(media: Path, tmp_path: Path) -> None:
    root = media / CLIPS_DIR
    items = [Item("ana/clip-00.mp4"), Item("bo/clip-01.mp4", "a caption")]
    dsk, keys = graph(root, items, ThumbnailEncoder(), Settings())
    again = graph(root, items, ThumbnailEncoder(), Settings())[1]
    assert keys == again and len(keys) == 2 and keys[0][0].startswith("ingest-file-")
    assert set(dsk) == set(keys)
    assert graph(root, items, ThumbnailEncoder(grid=4), Settings())[1][0][0] != keys[0][0]
    assert graph(root, items, ThumbnailEncoder(), Settings(sample_fps=2))[1][0][0] != keys[0][0]
    assert graph(root, items[:1], ThumbnailEncoder(), Settings())[1][0][0] != keys[0][0]


def test_progress_counts_every_file_once(media: Path) -> None:
    seen: list[tuple[int, int]] = []
    items = [Item("ana/clip-00.mp4"), Item("bo/clip-01.mp4"), Item("nope.mp4")]
    results = run(media / CLIPS_DIR, items, ThumbnailEncoder(), Settings(), workers=2,
                  progress=lambda d, t: seen.append((d, t)))
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]
    assert [r.rel for r in results] == [i.rel for i in items]
    assert results[2].reason is not None and "cannot open" in results[2].reason
