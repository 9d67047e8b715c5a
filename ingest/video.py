"""Decode one video file with PyAV into shots of sampled frames.

Rule: a file is read once, front to back; every decoded frame feeds the cut
rule of :mod:`ingest.shots` through a small grey thumbnail, and a frame is
kept for the encoder when it opens a shot or when ``1 / sample_fps`` seconds
have passed since the last kept frame. Any failure to open or decode is a
:class:`VideoError` whose message is the reason shown in the rejects report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.errors import first_line
from ingest.shots import CUT_SIDE, MIN_SHOT_S, THRESHOLD, ShotCutter

#: Default frames kept per second of video for the encoder.
SAMPLE_FPS = 4.0
#: Side of the grey frames of the built-in encoder.
SMALL_SIDE = 32


class VideoError(Exception):
    """A file that cannot be decoded; the message is the reason, one line."""


@dataclass(frozen=True)
class FrameSpec:
    """How the encoder wants its frames: ``height`` x ``width``, grey or RGB."""

    height: int
    width: int
    gray: bool


@dataclass(frozen=True)
class Shot:
    """One shot: its time span in seconds and its kept frames ``(m, h, w[, 3])`` uint8."""

    t_start: float
    t_end: float
    frames: np.ndarray


@dataclass(frozen=True)
class Decoded:
    """A decoded file: its shots in order, frame count and duration in seconds."""

    shots: list[Shot]
    n_frames: int
    duration_s: float


def _open(path: Path):  # type: ignore[no-untyped-def]
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoError(f"cannot open as a video ({first_line(exc, 160)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError("has no video stream")
    return container


class _Scaler:
    """Scales frames to one size and format, keeping one swscale context for the file."""

    def __init__(self, width: int, height: int, fmt: str) -> None:
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()
        self.width, self.height, self.fmt = width, height, fmt

    def __call__(self, frame) -> np.ndarray:  # type: ignore[no-untyped-def]
        return self._reformatter.reformat(frame, self.width, self.height, self.fmt,
                                          interpolation="AREA").to_ndarray()


def decode_shots(path: str | Path, spec: FrameSpec, *, sample_fps: float = SAMPLE_FPS,
                 threshold: float = THRESHOLD, min_shot_s: float = MIN_SHOT_S) -> Decoded:
    """Decode ``path`` and return its shots with the frames kept for ``spec``.

    Raises :class:`VideoError` when the file cannot be opened, has no video
    stream, or yields no frame.
    """
    import av

    if sample_fps <= 0:
        raise ValueError(f"sample_fps={sample_fps}: expected > 0")
    cutter = ShotCutter(threshold, min_shot_s)
    thumb = _Scaler(CUT_SIDE, CUT_SIDE, "rgb24")
    for_encoder = _Scaler(spec.width, spec.height, "gray" if spec.gray else "rgb24")
    starts: list[float] = []
    kept: list[list[np.ndarray]] = []
    n, t, next_keep = 0, 0.0, 0.0
    with _open(Path(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else n / rate
                if cutter.starts_shot(thumb(frame), t):
                    starts.append(t)
                    kept.append([])
                    next_keep = t
                if t >= next_keep:
                    kept[-1].append(for_encoder(frame))
                    next_keep = t + 1.0 / sample_fps
                n += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise VideoError(f"decoding failed after {n} frames ({first_line(exc, 160)})"
                             ) from None
    if n == 0:
        raise VideoError("has no decodable frame")
    end = t + 1.0 / rate
    ends = starts[1:] + [end]
    shots = [Shot(s, e, np.stack(f)) for s, e, f in zip(starts, ends, kept, strict=True)]
    return Decoded(shots, n, end - starts[0])
