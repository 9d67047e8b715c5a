"""Real sample media: camera moves over scikit-image's bundled photographs.

Rule: everything is drawn from the photographs that ship inside the
scikit-image wheel (never downloaded) and encoded with PyAV (libx264, one
thread, bit-exact muxing), so the same call writes the same bytes. Clips are
two shots each (a pan and zoom over one photograph, then a hard cut to
another); generations reuse shots of clips by decoding the clip's file and
re-encoding the frames, with a known change (re-encoded at low quality,
cropped, colour-shifted, time-shifted, spliced from two clips), and two
generations show only held-out photographs (they reuse nothing). The planted
truth names, for each generation, the clips and shots it reuses.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from contract import schema as S
from contract.io import atomic_output

#: Frame size and rate of the sample videos.
WIDTH, HEIGHT, FPS = 128, 96, 12
#: Seconds per shot.
SHOT_S = 1.5
#: Bundled photographs used for clip shots (two per clip), then the held-out ones.
PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png",
    "coins.png", "color.png", "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg",
    "ihc.png", "logo.png", "microaneurysms.png", "moon.png", "motorcycle_left.png",
    "page.png", "phantom.png", "retina.jpg", "rocket.jpg", "text.png", "clock_motion.png",
)
N_CLIPS = 10
CREATORS = ("ana", "bo", "chen", "dara")


def _photo(name: str) -> np.ndarray:
    """A bundled photograph as RGB uint8, scaled so its short side is 2 x HEIGHT."""
    import skimage
    from skimage import io, transform

    img = io.imread(os.path.join(os.path.dirname(skimage.__file__), "data", name))
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = (255 * (img > 0)).astype(np.uint8) if img.dtype == bool else img.astype(np.uint8)
    scale = 2 * HEIGHT / min(img.shape[:2])
    out = transform.resize(img, (round(img.shape[0] * scale), round(img.shape[1] * scale)),
                           anti_aliasing=True, preserve_range=True)
    return np.clip(out, 0, 255).astype(np.uint8)


def camera_move(photo: np.ndarray, seed: int, n: int) -> np.ndarray:
    """``n`` frames of a pan and zoom over ``photo``: a window sliding and shrinking."""
    rng = np.random.default_rng(seed)
    ph, pw = photo.shape[:2]
    z0, z1 = rng.uniform(0.75, 1.0), rng.uniform(0.55, 0.75)
    frames = np.empty((n, HEIGHT, WIDTH, 3), np.uint8)
    ys, xs = np.arange(HEIGHT) / HEIGHT, np.arange(WIDTH) / WIDTH
    start, end = rng.uniform(0, 1, 2), rng.uniform(0, 1, 2)
    for i in range(n):
        f = i / max(n - 1, 1)
        z = z0 + (z1 - z0) * f
        wh, ww = z * ph, min(z * ph * WIDTH / HEIGHT, pw)
        cy, cx = (start + (end - start) * f) * (ph - wh, pw - ww)
        rows = np.clip((cy + ys * wh).astype(int), 0, ph - 1)
        cols = np.clip((cx + xs * ww).astype(int), 0, pw - 1)
        frames[i] = photo[rows][:, cols]
    return frames


def encode_video(frames: np.ndarray, path: Path, *, crf: int = 20) -> None:
    """Write RGB frames as H.264 in MP4, deterministically (one thread, bit-exact)."""
    import av

    with atomic_output(path) as tmp, av.open(str(tmp), "w", format="mp4",
                                             options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream("libx264", rate=FPS, options={
            "crf": str(crf), "preset": "veryfast", "threads": "1", "flags": "+bitexact"})
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        for img in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))


def decode_video(path: Path) -> np.ndarray:
    """All frames of a file as RGB uint8 ``(n, h, w, 3)``."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@dataclass(frozen=True)
class Reuse:
    """Frames ``[lo, hi)`` of a clip, changed by ``change``, reused in a generation."""

    clip: int
    lo: int
    hi: int
    change: str = "none"  # none | crop | colour | crop+colour


#: Frames per shot.
SHOT_FRAMES = round(SHOT_S * FPS)
_S0, _S1 = (0, SHOT_FRAMES), (SHOT_FRAMES, 2 * SHOT_FRAMES)
#: Each generation: its reused pieces (in order), and its encoding quality.
GENERATIONS: dict[str, tuple[tuple[Reuse, ...], int]] = {
    "reencoded": ((Reuse(0, *_S0),), 38),
    "cropped": ((Reuse(1, *_S1, "crop"),), 23),
    "colour-shifted": ((Reuse(2, *_S0, "colour"),), 23),
    "time-shifted": ((Reuse(3, SHOT_FRAMES // 2, SHOT_FRAMES + SHOT_FRAMES // 3),), 23),
    "spliced": ((Reuse(4, *_S1), Reuse(5, *_S0)), 23),
    "spliced-changed": ((Reuse(6, *_S0, "colour"), Reuse(7, *_S1, "crop")), 30),
    "cropped-recoloured": ((Reuse(8, *_S1, "crop+colour"),), 32),
}
#: Generations that reuse nothing: a camera move over a held-out photograph.
NOVEL = ("novel-1", "novel-2")


def _change(frames: np.ndarray, change: str) -> np.ndarray:
    from skimage import transform

    out = frames
    if "crop" in change:  # the central 80%, scaled back up
        dy, dx = HEIGHT // 10, WIDTH // 10
        out = np.stack([
            np.clip(transform.resize(f[dy:HEIGHT - dy, dx:WIDTH - dx], (HEIGHT, WIDTH),
                                     preserve_range=True), 0, 255).astype(np.uint8)
            for f in out])
    if "colour" in change:  # channels rotated, contrast lowered, brightened
        out = np.clip(out[..., [2, 0, 1]].astype(np.float32) * 0.8 + 30, 0, 255).astype(np.uint8)
    return out


def _clip_name(i: int) -> str:
    return f"{CREATORS[i % len(CREATORS)]}/clip-{i:02d}.mp4"


_SOURCES = ("licensed", "public_dataset", "crawled", "user", "licensed")


def _manifest_rows() -> list[dict[str, str]]:
    """Clip manifest rows with varied provenance (dates fixed, in the past)."""
    rows = []
    for i in range(N_CLIPS):
        source = _SOURCES[i % len(_SOURCES)]
        rows.append({
            "path": _clip_name(i), S.CREATOR_ID: CREATORS[i % len(CREATORS)],
            S.CAPTION: f"a camera move over {PHOTOS[2 * i].split('.')[0].replace('_', ' ')}",
            S.LICENSE: "cc-by" if i % 2 else "exclusive",
            S.SOURCE_TYPE: source,
            S.DATASET_NAME: "scikit-image data" if source == "public_dataset" else "",
            S.SOURCE_URL: f"https://video{i % 3}.example.org/clips/{i}" if source == "crawled"
            else "",
            S.ACQUIRED_AT: f"2025-0{1 + i % 9}-15",
            S.LANGUAGE: "en", S.CONTENT_TYPE: "video",
            S.OPT_OUT_SIGNAL: "tdm-reservation" if i == 2 else "",
            S.OPT_OUT_OBSERVED_AT: "2025-06-01" if i == 2 else "",
        })
    return rows


def _write_csv(rows: list[dict[str, str]], path: Path) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


#: Where things go under the output directory.
CLIPS_DIR, GENERATIONS_DIR, CLIPS_MANIFEST = "videos/clips", "videos/generations", "clips.csv"


def _truth(clip_ids: list[str]) -> pl.DataFrame:
    rows = []
    for gen, (pieces, _) in GENERATIONS.items():
        by_clip: dict[int, int] = {}
        for p in pieces:  # the shot with most reused frames names the segment
            by_clip[p.clip] = max(by_clip.get(p.clip, 0), p.hi - p.lo)
        for p in pieces:
            shot = max(range(2), key=lambda s: min(p.hi, (s + 1) * SHOT_FRAMES)
                       - max(p.lo, s * SHOT_FRAMES))
            if by_clip.pop(p.clip, None) is not None:
                rows.append({S.GENERATION_ID: f"{gen}.mp4", S.CLIP_ID: clip_ids[p.clip],
                             S.CREATOR_ID: CREATORS[p.clip % len(CREATORS)],
                             S.WEIGHT: 1.0 / len({q.clip for q in pieces}),
                             S.SEGMENT_ID: f"shot-{shot:03d}"})
    return pl.DataFrame(rows, schema={**S.TRUTH_SCHEMA, S.SEGMENT_ID: pl.String()})


def make_media(out: str | Path) -> dict[str, int]:
    """Write the sample videos, the clip manifest, creators and the planted truth.

    Returns counts of what was written (clips, generations, truth rows).
    """
    out = Path(out)
    held_out = PHOTOS[2 * N_CLIPS:]
    clips_dir, gens_dir = out / CLIPS_DIR, out / GENERATIONS_DIR
    for c in CREATORS:
        (clips_dir / c).mkdir(parents=True, exist_ok=True)
    gens_dir.mkdir(parents=True, exist_ok=True)
    for i in range(N_CLIPS):
        shots = [camera_move(_photo(PHOTOS[2 * i + s]), seed=100 * i + s, n=SHOT_FRAMES)
                 for s in range(2)]
        encode_video(np.concatenate(shots), clips_dir / _clip_name(i))
    decoded: dict[int, np.ndarray] = {}
    for gen, (pieces, crf) in GENERATIONS.items():
        parts = []
        for p in pieces:
            if p.clip not in decoded:
                decoded[p.clip] = decode_video(clips_dir / _clip_name(p.clip))
            parts.append(_change(decoded[p.clip][p.lo:p.hi], p.change))
        encode_video(np.concatenate(parts), gens_dir / f"{gen}.mp4", crf=crf)
    for j, gen in enumerate(NOVEL):
        frames = camera_move(_photo(held_out[j % len(held_out)]), seed=900 + j, n=SHOT_FRAMES)
        encode_video(frames, gens_dir / f"{gen}.mp4")
    _write_csv(_manifest_rows(), clips_dir / CLIPS_MANIFEST)
    creators = pl.DataFrame({S.CREATOR_ID: list(CREATORS),
                             S.DISPLAY_NAME: [c.title() for c in CREATORS],
                             S.OPTED_OUT: [False] * len(CREATORS)})
    with atomic_output(out / S.CREATORS.filename) as tmp:
        creators.write_parquet(tmp)
    truth = _truth([_clip_name(i) for i in range(N_CLIPS)])
    with atomic_output(out / S.TRUTH.filename) as tmp:
        truth.write_parquet(tmp)
    return {"clips": N_CLIPS, "generations": len(GENERATIONS) + len(NOVEL),
            "truth": truth.height}
