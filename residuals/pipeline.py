"""The end-to-end pipeline's shared steps.

Rule: a data directory in the contract either holds ``attributions.parquet``
or gets its attributions computed here, by the same engine and defaults as
``residuals attribute``, so every command sees the same numbers.
"""

from __future__ import annotations

import polars as pl

from contract import schema as S
from attribution.candidates import DEFAULT_K
from contract.io import Dataset


def attribution_for(ds: Dataset, *, k: int = DEFAULT_K, method: str | None = None) -> pl.DataFrame:
    """The attributions of a data directory: its own file, or computed now.

    Parameters
    ----------
    ds
        A validated dataset (:func:`contract.io.load_dataset`).
    k
        Clips per generation when computing (capped at the number of clips, so a
        tiny data directory still works).
    method
        Weighting method when computing; ``None`` means the default method.

    Returns
    -------
    pl.DataFrame
        The ``attributions`` table (``ds.attributions`` when present).
    """
    if ds.attributions is not None:
        return ds.attributions
    from attribution.scorer import KnnScorer

    n_clips = ds.clips[S.CLIP_ID].n_unique()
    return KnnScorer(k=min(k, n_clips), method=method).fit(ds.clips).score(ds.generations)
