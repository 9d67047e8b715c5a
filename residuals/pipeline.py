"""The end-to-end pipeline's shared steps.

Rule: a data directory in the contract either holds ``attributions.parquet``
or gets its attributions computed here, by the same engine and defaults as
``residuals attribute``, so every command sees the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    n_clips = ds.clips[S.CLIP_ID].n_unique()
    k = min(int(opts.pop("k", DEFAULT_K)), n_clips)
    depth = min(int(opts.pop("depth", DEFAULT_DEPTH)), n_clips)
    opts = {key: value for key, value in opts.items() if value is not None}
    if opts.get("method", "nnls") != "nnls":
        opts.pop("novelty", None)
    return KnnScorer(k=k, depth=depth, **opts).fit(ds.clips).score(ds.generations)
