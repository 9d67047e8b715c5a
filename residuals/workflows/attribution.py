"""Attribution as the workflows run it: ``residuals attribute`` and the settings a batch records.

Rule: a data directory in the contract either holds ``attributions.parquet``
or gets its attributions computed here, by the same engine and defaults as
``residuals attribute`` (:func:`attribute`), so every command sees the same
numbers. The attributions file is written atomically and deterministically,
so every scheduler writes the same bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
from contract import schema as S
from contract.io import Dataset


def attribution_settings(*, k: int = DEFAULT_K, depth: int = DEFAULT_DEPTH,
                         method: str | None = None) -> dict[str, Any]:
    """Every setting that decides computed attributions, as a batch manifest records it.

    Defaults are resolved now (method, novelty rule and its constants), so a
    later change of a library default never changes what an old batch
    recomputes to.
    """
    from attribution import novelty
    from attribution.scorer import default_method

    settings: dict[str, Any] = {"k": int(k), "depth": int(depth),
                                "method": method or default_method()}
    if settings["method"] == "nnls":
        settings.update(novelty="concepts", novelty_ratio=novelty.DEFAULT_RATIO,
                        n_concepts=novelty.DEFAULT_CONCEPTS)
    return settings


def recorded_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a manifest's ``params``; manifests written before ``depth``
    existed searched ``k`` candidates and used the fixed similarity floor."""
    settings = {key: params[key] for key in SETTING_KEYS if params.get(key) is not None}
    settings.setdefault("k", DEFAULT_K)
    if "depth" not in settings:
        settings.update(depth=settings["k"], novelty="floor")
    return settings


#: The manifest keys :func:`attribution_for` reads.
SETTING_KEYS = ("k", "depth", "method", "novelty", "novelty_ratio", "n_concepts")


def capped(k: int, depth: int, n_clips: int) -> tuple[int, int]:
    """``k`` and ``depth`` capped at the catalogue's size, so a tiny catalogue still works.

    >>> capped(15, 32, 8)
    (8, 8)
    >>> capped(15, 32, 1000)
    (15, 32)
    """
    return min(k, n_clips), min(depth, n_clips)


def catalogue_size(clips: Path) -> int:
    """The number of distinct clips in a ``clips.parquet`` file."""
    return int(pl.scan_parquet(clips).select(pl.col(S.CLIP_ID).n_unique()).collect().item())


def attribution_for(ds: Dataset, settings: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """The attributions of a data directory: its own file, or computed now.

    Parameters
    ----------
    ds
        A validated dataset (:func:`contract.io.load_dataset`).
    settings
        :func:`attribution_settings` (``None``: the defaults). ``k`` and
        ``depth`` are capped at the number of clips, so a tiny data directory
        still works.

    Returns
    -------
    pl.DataFrame
        The ``attributions`` table (``ds.attributions`` when present).
    """
    if ds.attributions is not None:
        return ds.attributions
    from attribution.scorer import KnnScorer

    opts = dict(settings if settings is not None else attribution_settings())
    k, depth = capped(int(opts.pop("k", DEFAULT_K)), int(opts.pop("depth", DEFAULT_DEPTH)),
                      ds.clips[S.CLIP_ID].n_unique())
    opts = {key: value for key, value in opts.items() if value is not None}
    if opts.get("method", "nnls") != "nnls":
        opts.pop("novelty", None)
    return KnnScorer(k=k, depth=depth, **opts).fit(ds.clips).score(ds.generations)


@dataclass(frozen=True)
class Attributed:
    """What :func:`attribute` wrote: rows, the method and depth used, and how many
    generations have candidates above the method's threshold at rank ``k``."""

    path: Path
    rows: int
    method: str
    k: int
    depth: int
    inexact: int


def attribute(clips: Path, generations: Path, out: Path, *, method: str | None = None,
              k: int = DEFAULT_K, depth: int = DEFAULT_DEPTH, scheduler: str | None = None,
              workers: int | None = None, block_size: int = 2048,
              progress: Callable[[int, int], None] | None = None,
              announce: Callable[[str], None] | None = None) -> Attributed:
    """Score ``generations`` against ``clips`` and write the attributions to ``out``.

    ``scheduler``: ``"threads"`` (``None``), ``"local"`` (a LocalCluster started
    while the inputs are validated) or the address of an existing cluster.
    """
    from attribution.dask_engine import LocalClusterStart
    from attribution.scorer import KnnScorer, write_attributions
    from contract.io import attribution_sources

    with (LocalClusterStart(workers) if scheduler == "local"
          else contextlib.nullcontext()) as local_cluster:
        scorer = KnnScorer(k=k, depth=depth, method=method, scheduler=scheduler,
                           workers=workers, block_size=block_size).fit(clips)
        frame = scorer.score(generations, progress=progress, announce=announce,
                             local_cluster=local_cluster)
        write_attributions(frame, out, attribution_sources(clips, generations))
    return Attributed(out, frame.height, scorer.method_, k, scorer.depth_,
                      scorer.inexact_generations(frame))
