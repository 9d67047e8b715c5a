"""workflows.attribution.attribution_for: a data directory's own attributions, or the engine's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from attribution.scorer import KnnScorer
from contract import schema as S
from contract.io import Dataset
from residuals.workflows.attribution import (attribution_for, attribution_settings,
                                             recorded_settings)
from tests.attribution.engine_data import clips_frame, gens_frame, random_emb


def _dataset(attributions: pl.DataFrame | None = None, n_clips: int = 30) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(root=Path("."), creators=pl.DataFrame(),
                   clips=clips_frame(random_emb(rng, n_clips, 4)),
                   generations=gens_frame(random_emb(rng, 12, 4)), accounts=pl.DataFrame(),
                   attributions=attributions)


def test_computes_with_the_engine_when_absent() -> None:
    ds = _dataset()
    got = attribution_for(ds, attribution_settings(k=5, method="softmax"))
    want = KnnScorer(k=5, method="softmax").fit(ds.clips).score(ds.generations)
    assert got.equals(want)
    per_generation = got.group_by(S.GENERATION_ID).len()["len"]
    assert per_generation.len() == 12 and per_generation.max() <= 5


def test_default_method_and_k_capped_at_catalogue() -> None:
    got = attribution_for(_dataset(n_clips=4))
    assert got[S.RANK].max() <= 4 and got[S.GENERATION_ID].n_unique() == 12


def test_existing_attributions_are_used() -> None:
    ds = _dataset()
    own = attribution_for(ds, attribution_settings(k=2))
    assert attribution_for(_dataset(attributions=own), attribution_settings(k=9)).equals(own)


def test_old_manifests_recompute_with_the_engine_they_were_posted_with() -> None:
    """A manifest without ``depth`` searched ``k`` candidates under the fixed floor."""
    assert recorded_settings({"k": 10, "method": "nnls"}) == {
        "k": 10, "method": "nnls", "depth": 10, "novelty": "floor"}
    new = attribution_settings(k=7, depth=40)
    assert recorded_settings(new) == new
