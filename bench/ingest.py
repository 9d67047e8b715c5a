"""Ingest throughput against plain PyAV decoding of the same files, in the same run.

Prints decoded frames per second and shots per second per core for:
plain decoding (PyAV, every frame decoded, nothing converted, one file after
another on one core) and ``ingest`` with the built-in encoder on the threaded
scheduler with 1 and with all cores. The ratio is ingest per core over plain
decoding per core (target >= 0.8). Files: the media samples (``residuals
samples make --media``) at ``--scale`` times their size, each copied
``--copies`` times.

    python bench/ingest.py [--scale 4] [--copies 4] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# This script's name is the package's: keep bench/ off the import path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import av
import numpy as np


def _rescale(src: Path, dst: Path, scale: int) -> None:
    from ingest.media_samples import decode_video, encode_video

    frames = decode_video(src)
    if scale > 1:
        frames = np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)
    encode_video(frames, dst)


def make_files(root: Path, scale: int, copies: int) -> list[Path]:
    from ingest.media_samples import make_media

    media = root / "media"
    make_media(media)
    files = []
    for i, src in enumerate(sorted(media.rglob("*.mp4"))):
        first = root / "bench" / "c0" / f"{i:03d}.mp4"
        first.parent.mkdir(parents=True, exist_ok=True)
        _rescale(src, first, scale)
        for c in range(copies):
            dst = root / "bench" / f"c{c}" / f"{i:03d}.mp4"
            dst.parent.mkdir(parents=True, exist_ok=True)
            if c:
                shutil.copy(first, dst)
            files.append(dst)
    return files


def plain_decode(files: list[Path]) -> int:
    frames = 0
    for f in files:
        with av.open(str(f)) as c:
            stream = c.streams.video[0]
            for _ in c.decode(stream):
                frames += 1
    return frames


def interleaved(fns: dict[str, object], repeat: int) -> dict[str, tuple[float, object]]:
    """Best time of each function over ``repeat`` rounds, the functions taking turns
    within a round (a shared machine's load then hits them alike)."""
    best: dict[str, tuple[float, object]] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            out = fn()  # type: ignore[operator]
            dt = time.perf_counter() - t
            if name not in best or dt < best[name][0]:
                best[name] = (dt, out)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from residuals.workflows.ingest import ingest

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = make_files(root, args.scale, args.copies)
        fns: dict[str, object] = {"plain": lambda: plain_decode(files)}
        for workers in sorted({1, cores}):
            fns[f"ingest-{workers}"] = (lambda w=workers: ingest(
                root / "bench", root / "out.parquet", workers=w))
        best = interleaved(fns, args.repeat)
        t_plain, frames = best.pop("plain")
        rows = [("plain PyAV decode", 1, t_plain, frames, None)]
        for name, (t, res) in best.items():
            workers = int(name.split("-")[1])
            rows.append((f"ingest, builtin encoder, {workers} thread(s)", workers, t,
                         res.frames, res.shots))
    w, h = 128 * args.scale, 96 * args.scale
    print(f"{len(files)} files, {frames} frames of {w}x{h}, best of {args.repeat}; "
          f"{cores} cores")
    print("| path | cores | s | frames/s per core | shots/s per core | vs plain decode |")
    print("|---|---:|---:|---:|---:|---:|")
    base = frames / t_plain
    for name, n, t, fr, shots in rows:
        per_core = fr / t / n
        shot_rate = "" if shots is None else f"{shots / t / n:,.0f}"
        print(f"| {name} | {n} | {t:.2f} | {per_core:,.0f} | {shot_rate} | "
              f"{per_core / base:.2f}x |")


if __name__ == "__main__":
    main()
