"""Decode and encode many video files in parallel on Dask.

Rule: one task per file, :func:`process_file`, which never raises for a bad
video (it returns a :class:`FileResult` with a ``reason``); results come back
in the order of the input, whatever the scheduler, so the same files give the
same rows. Task keys are ``ingest-file-<token>`` with ``dask.base.tokenize``
of the files (path, size, modification time), the encoder and the settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.encoders import Encoder
from ingest.shots import MIN_SHOT_S, THRESHOLD
from ingest.video import SAMPLE_FPS, VideoError, decode_shots

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Settings:
    """Frame sampling and shot cutting (see :mod:`ingest.video`, :mod:`ingest.shots`)."""

    sample_fps: float = SAMPLE_FPS
    threshold: float = THRESHOLD
    min_shot_s: float = MIN_SHOT_S


@dataclass(frozen=True)
class Item:
    """One file to ingest: its path relative to the root, and its caption if any."""

    rel: str
    caption: str | None = None


@dataclass(frozen=True)
class FileResult:
    """What one file gave: shot vectors ``(s, d)`` and spans, or a reject ``reason``."""

    rel: str
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    t_start: np.ndarray = field(default_factory=lambda: np.zeros(0))
    t_end: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_frames: int = 0
    duration_s: float = 0.0
    reason: str | None = None


def process_file(root: str, item: Item, encoder: Encoder, settings: Settings) -> FileResult:
    """Decode one file, cut its shots and encode each; a bad file gives a reason."""
    try:
        decoded = decode_shots(Path(root) / item.rel, encoder.spec,
                               sample_fps=settings.sample_fps, threshold=settings.threshold,
                               min_shot_s=settings.min_shot_s)
    except VideoError as exc:
        return FileResult(item.rel, reason=str(exc))
    vectors = np.stack([encoder.encode(s.frames, item.caption) for s in decoded.shots])
    return FileResult(
        item.rel, vectors.astype(np.float32),
        np.array([s.t_start for s in decoded.shots]), np.array([s.t_end for s in decoded.shots]),
        decoded.n_frames, decoded.duration_s,
    )


def graph(root: Path, items: list[Item], encoder: Encoder,
          settings: Settings) -> tuple[dict[Any, Any], list[Any]]:
    """The task graph: one ``(name, i)`` key per file, ``name`` tokenized from its inputs."""
    from dask.base import tokenize

    stats = [_stat(root / it.rel) for it in items]
    spec = (type(encoder).__name__, encoder.name, encoder.spec, encoder.dim,
            getattr(encoder, "path", None), getattr(encoder, "alpha", None))
    name = "ingest-file-" + tokenize(str(root), items, stats, spec, settings)
    dsk = {(name, i): (process_file, str(root), it, encoder, settings)
           for i, it in enumerate(items)}
    return dsk, [(name, i) for i in range(len(items))]


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def run(root: Path, items: list[Item], encoder: Encoder, settings: Settings, *,
        scheduler: str | None = None, workers: int | None = None,
        progress: ProgressFn | None = None) -> list[FileResult]:
    """Process ``items`` on the threaded scheduler (``None``), a LocalCluster
    (``"local"``) or an existing cluster (``"tcp://host:port"``); input order."""
    dsk, keys = graph(root, items, encoder, settings)
    if scheduler in (None, "threads"):
        return _run_threads(dsk, keys, workers or os.cpu_count() or 1, progress)
    from distributed import Client

    from attribution.dask_engine import LocalClusterStart, connect

    if scheduler == "local":
        with LocalClusterStart(workers) as start, Client(start.cluster()) as client:
            return _run_client(client, dsk, keys, progress)
    with connect(scheduler) as client:
        return _run_client(client, dsk, keys, progress)


def _run_threads(dsk: dict[Any, Any], keys: list[Any], workers: int,
                 progress: ProgressFn | None) -> list[FileResult]:
    import dask.threaded
    from dask.callbacks import Callback

    done = [0]

    class _Count(Callback):  # type: ignore[misc]
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, id: Any) -> None:
            done[0] += 1
            if progress is not None:
                progress(done[0], len(keys))

    with _Count():
        return list(dask.threaded.get(dsk, keys, num_workers=workers))


def _run_client(client: Any, dsk: dict[Any, Any], keys: list[Any],
                progress: ProgressFn | None) -> list[FileResult]:
    from distributed import as_completed

    futures = client.get(dsk, keys, sync=False)
    for i, _ in enumerate(as_completed(futures), start=1):
        if progress is not None:
            progress(i, len(keys))
    return list(client.gather(futures))
