"""``attributions.parquet`` is checked against the data directory it sits in: each
row's creator owns its clip, each generation exists, and the file records the
hashes of the clips and generations it was computed from."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from attribution.scorer import write_attributions
from contract import schema as S
from contract.errors import ContractError
from contract.io import attribution_sources, load_dataset, read_attribution_sources
from tests.ledger.store.kit import write_dataset


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_dataset(tmp_path / "data", 12)
    return tmp_path / "data"


def attributions(root: Path) -> pl.DataFrame:
    return pl.read_parquet(root / S.ATTRIBUTIONS.filename)


def sources(root: Path) -> dict[str, str]:
    return attribution_sources(root / S.CLIPS.filename, root / S.GENERATIONS.filename)


def rewrite(root: Path, frame: pl.DataFrame, *, with_sources: bool = True) -> None:
    write_attributions(frame, root / S.ATTRIBUTIONS.filename,
                       sources=sources(root) if with_sources else None)


def refused(root: Path) -> str:
    with pytest.raises(ContractError) as info:
        load_dataset(root, embeddings=False)
    msg = str(info.value)
    assert "\n" not in msg and "attributions.parquet" in msg
    return msg


def test_written_sources_are_the_input_hashes(data: Path) -> None:
    recorded = read_attribution_sources(data / S.ATTRIBUTIONS.filename)
    assert recorded == sources(data)
    assert set(recorded) == {S.CLIPS.filename, S.GENERATIONS.filename}
    assert load_dataset(data, embeddings=False).attributions is not None


def test_creator_who_does_not_own_the_clip(data: Path) -> None:
    """Every row relabelled to one creator: refused, naming the row."""
    rewrite(data, attributions(data).with_columns(pl.lit("c0000003").alias(S.CREATOR_ID)))
    msg = refused(data)
    assert "row 0" in msg and "column creator_id" in msg and "does not own" in msg


def test_clip_that_does_not_exist(data: Path) -> None:
    rewrite(data, attributions(data).with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("nosuch")).otherwise(pl.col(S.CLIP_ID))
        .alias(S.CLIP_ID)))
    assert "row 5" in refused(data)


def test_generation_that_does_not_exist(data: Path) -> None:
    rewrite(data, attributions(data).with_columns(
        pl.when(pl.col(S.GENERATION_ID) == "g0000003").then(pl.lit("g-ghost"))
        .otherwise(pl.col(S.GENERATION_ID)).alias(S.GENERATION_ID)))
    msg = refused(data)
    assert "row 3" in msg and "g-ghost" in msg and "column generation_id" in msg


def test_attributions_from_older_generations(data: Path, tmp_path: Path) -> None:
    """Cut the generations to 10 and keep the attributions computed from all 12."""
    gens = pl.read_parquet(data / S.GENERATIONS.filename)
    gens.head(10).write_parquet(data / S.GENERATIONS.filename)
    msg = refused(data)
    assert "generations.parquet" in msg and "residuals attribute" in msg


def test_attributions_from_other_clips(data: Path) -> None:
    clips = pl.read_parquet(data / S.CLIPS.filename)
    clips.with_columns(pl.col(S.EMBEDDING).reverse()).write_parquet(data / S.CLIPS.filename)
    msg = refused(data)
    assert "clips.parquet" in msg and "residuals attribute" in msg


def test_file_without_sources_is_refused(data: Path) -> None:
    """Older files record no sources: refused, with how to recompute them."""
    attributions(data).write_parquet(data / S.ATTRIBUTIONS.filename)
    msg = refused(data)
    assert "records no hashes" in msg and "residuals attribute" in msg


def test_sources_survive_a_copy(data: Path, tmp_path: Path) -> None:
    """The hashes are of file contents: a copied data directory still verifies."""
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    assert load_dataset(copy, embeddings=False).attributions is not None
