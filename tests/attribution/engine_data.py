"""Tiny clip/generation tables for the search-engine tests (not a test module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from contract import schema as S


def clips_frame(emb: np.ndarray, *, ids: list[str] | None = None,
                segments: list[str] | None = None, creators: int = 3) -> pl.DataFrame:
    """A clips table for ``emb`` (clip ids ``c000`` .. unless given)."""
    n = len(emb)
    ids = ids if ids is not None else [f"c{i:03d}" for i in range(n)]
    cols: dict[str, object] = {
        S.CLIP_ID: ids,
        S.CREATOR_ID: [f"cr{i % creators}" for i in range(n)],
        S.EMBEDDING: pl.Series(S.EMBEDDING, emb.astype(np.float32)).cast(
            pl.Array(pl.Float32, emb.shape[1])),
    }
    if segments is not None:
        # one creator per clip, whatever the segment
        cols[S.CREATOR_ID] = [f"cr{sum(map(ord, c)) % creators}" for c in ids]
        cols[S.SEGMENT_ID] = segments
    return pl.DataFrame(cols)


def gens_frame(emb: np.ndarray) -> pl.DataFrame:
    """A generations table for ``emb`` (ids ``g000`` ..)."""
    return pl.DataFrame({
        S.GENERATION_ID: [f"g{i:03d}" for i in range(len(emb))],
        S.EMBEDDING: pl.Series(S.EMBEDDING, emb.astype(np.float32)).cast(
            pl.Array(pl.Float32, emb.shape[1])),
    })


def write(df: pl.DataFrame, path: Path, row_group_size: int) -> Path:
    """Write ``df`` with a fixed row-group size (several row groups on purpose)."""
    pq.write_table(df.to_arrow(), path, row_group_size=row_group_size)
    return path


def random_emb(rng: np.random.Generator, n: int, d: int, *, ties: bool = False) -> np.ndarray:
    """Random non-zero rows; small integers when ``ties`` (many exact ties)."""
    x = (rng.integers(-1, 2, (n, d)) if ties else rng.standard_normal((n, d))).astype(np.float32)
    x[np.abs(x).sum(axis=1) == 0, 0] = 1.0
    return x


__all__ = ["clips_frame", "gens_frame", "random_emb", "write"]
