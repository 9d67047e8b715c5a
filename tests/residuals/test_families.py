"""The data families: valid contract tables, same seed same bytes, the default family is the
committed sample, the planted geometry is really there, and ``samples make --family``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from contract import schema as S
from contract.errors import ResidualsError
from contract.io import embedding_matrix, load_dataset, read_table
from residuals.cli import app
from residuals.families import FAMILIES, make_family, sized
from residuals.samples import make_samples
from tests.conftest import SAMPLES
from tests.residuals.test_cli_errors import assert_one_error_line, run

FILES = [t.filename for t in (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS, S.TRUTH,
                              S.DUPLICATES)]
NAMES = list(FAMILIES)


def small(name: str):
    sizes = {"clips": 400, "generations": 120, "dim": 16}
    if name != "real":
        sizes["creators"] = 30
    return sized(name, **sizes)


def _bytes(root: Path) -> dict[str, bytes]:
    return {f: (root / f).read_bytes() for f in FILES}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name in NAMES:
        out[name] = tmp_path_factory.mktemp(name)
        make_family(out[name], name, FAMILIES[name].tune_seed, small(name))
    return out


def _unit(df: pl.DataFrame, table: S.Table) -> np.ndarray:
    x = embedding_matrix(df, "x", table).astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("name", NAMES)
def test_family_writes_valid_contract_tables(made: dict[str, Path], name: str) -> None:
    root = made[name]
    assert sorted(p.name for p in root.iterdir()) == sorted(FILES)
    ds = load_dataset(root)  # the contract readers: ids, embeddings, creators known
    truth = read_table(root / S.TRUTH.filename, S.TRUTH)
    sums = truth.group_by(S.GENERATION_ID).agg(pl.col(S.WEIGHT).sum())[S.WEIGHT]
    assert np.allclose(sums.to_numpy(), 1.0) and (truth[S.WEIGHT] > 0).all()
    assert truth[S.CLIP_ID].is_in(ds.clips[S.CLIP_ID].implode()).all()
    assert truth[S.GENERATION_ID].is_in(ds.generations[S.GENERATION_ID].implode()).all()
    joined = truth.join(ds.clips.select(S.CLIP_ID, S.CREATOR_ID), on=S.CLIP_ID)
    assert (joined[S.CREATOR_ID] == joined[f"{S.CREATOR_ID}_right"]).all()
    dups = pl.read_parquet(root / S.DUPLICATES.filename)
    assert dups[S.CLIP_ID].is_in(ds.clips[S.CLIP_ID].implode()).all()
    assert dups[S.DUPLICATE_OF].is_in(ds.clips[S.CLIP_ID].implode()).all()
    # some generations are sourced, some novel
    assert 0 < truth[S.GENERATION_ID].n_unique() < ds.generations.height


@pytest.mark.parametrize("name", NAMES)
def test_planted_sources_resemble_their_generations(made: dict[str, Path], name: str) -> None:
    root = made[name]
    clips = read_table(root / S.CLIPS.filename, S.CLIPS)
    gens = read_table(root / S.GENERATIONS.filename, S.GENERATIONS)
    truth = read_table(root / S.TRUTH.filename, S.TRUTH).sort(
        [S.GENERATION_ID, S.WEIGHT], descending=[False, True]).unique(
        S.GENERATION_ID, keep="first", maintain_order=True)
    c, g = _unit(clips, S.CLIPS), _unit(gens, S.GENERATIONS)
    gi = gens.with_row_index().join(truth, on=S.GENERATION_ID)["index"].to_numpy()
    ci = clips.with_row_index().select("index", S.CLIP_ID).join(
        truth, on=S.CLIP_ID).sort(S.GENERATION_ID)["index"].to_numpy()
    to_source = (g[gi] * c[ci]).sum(axis=1)
    to_any = (g[gi] @ c.T).mean(axis=1)
    assert np.median(to_source - to_any) > 0.15


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    for name in NAMES:
        make_family(tmp_path / f"{name}-a", name, 5, small(name))
        make_family(tmp_path / f"{name}-b", name, 5, small(name))
        make_family(tmp_path / f"{name}-c", name, 6, small(name))
        assert _bytes(tmp_path / f"{name}-a") == _bytes(tmp_path / f"{name}-b"), name
        a = (tmp_path / f"{name}-a" / "clips.parquet").read_bytes()
        assert a != (tmp_path / f"{name}-c" / "clips.parquet").read_bytes(), name


def test_default_family_is_make_samples_and_the_committed_sample(tmp_path: Path) -> None:
    make_family(tmp_path / "fam", "linear", 2026)  # LinearParams: data/samples' sizes
    committed = _bytes(SAMPLES)
    for name, data in _bytes(tmp_path / "fam").items():
        assert data == committed[name], f"{name} differs from data/samples/{name}"
    params = small("linear")
    make_family(tmp_path / "small", "linear", 3, params)
    make_samples(tmp_path / "direct", creators=params.creators, clips=params.clips,
                 generations=params.generations, dim=params.dim, seed=3)
    assert _bytes(tmp_path / "small") == _bytes(tmp_path / "direct")


def test_anisotropic_cosines_are_all_high(made: dict[str, Path]) -> None:
    c = _unit(read_table(made["anisotropic"] / S.CLIPS.filename, S.CLIPS), S.CLIPS)
    other = _unit(read_table(made["topics"] / S.CLIPS.filename, S.CLIPS), S.CLIPS)
    assert (c @ c.T).mean() > 0.6 > (other @ other.T).mean()


def test_duplicate_uploaders_post_near_copies(made: dict[str, Path]) -> None:
    root = made["duplicates"]
    clips = read_table(root / S.CLIPS.filename, S.CLIPS).with_row_index()
    dups = pl.read_parquet(root / S.DUPLICATES.filename)
    assert dups.height >= 10
    rows = dups.join(clips.select("index", S.CLIP_ID, S.CREATOR_ID), on=S.CLIP_ID).join(
        clips.select(pl.col("index").alias("orig"), pl.col(S.CLIP_ID).alias(S.DUPLICATE_OF),
                     pl.col(S.CREATOR_ID).alias("orig_creator")), on=S.DUPLICATE_OF)
    assert (rows[S.CREATOR_ID] == rows["orig_creator"]).all()  # their own clips
    c = _unit(clips, S.CLIPS)
    cos = (c[rows["index"].to_numpy()] * c[rows["orig"].to_numpy()]).sum(axis=1)
    assert cos.min() > 0.9


def test_topics_novel_generations_sit_inside_dense_regions(made: dict[str, Path]) -> None:
    root = made["topics"]
    c = _unit(read_table(root / S.CLIPS.filename, S.CLIPS), S.CLIPS)
    gens = read_table(root / S.GENERATIONS.filename, S.GENERATIONS)
    truth = read_table(root / S.TRUTH.filename, S.TRUTH)
    novel = ~gens[S.GENERATION_ID].is_in(truth[S.GENERATION_ID].implode()).to_numpy()
    best = (_unit(gens, S.GENERATIONS) @ c.T).max(axis=1)
    # a novel generation is as close to its nearest clip as clips are to each other
    cc = c @ c.T
    np.fill_diagonal(cc, -1)
    assert np.median(best[novel]) > np.median(cc.max(axis=1)) - 0.1


def test_sized_rejects_bad_sizes() -> None:
    with pytest.raises(ResidualsError, match="`creators`: not a size of family 'real'"):
        sized("real", creators=3)
    with pytest.raises(ResidualsError, match="clips=5: expected >= `creators`"):
        sized("topics", creators=10, clips=5)
    with pytest.raises(ResidualsError, match="dim=1: expected >= 2"):
        sized("nonlinear", dim=1)
    with pytest.raises(ResidualsError, match="dim=2000: expected <= 1024"):
        sized("real", dim=2000, clips=3000)


# ---- residuals samples make --family ----------------------------------------------------------

def test_cli_makes_a_family(tmp_path: Path) -> None:
    out = tmp_path / "dup"
    args = ["samples", "make", "--out", str(out), "--seed", "4", "--family", "duplicates",
            "--creators", "30", "--clips", "400", "--generations", "120", "--dim", "16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "family duplicates" in result.output
    ref = tmp_path / "ref"
    make_family(ref, "duplicates", 4, small("duplicates"))
    assert _bytes(out) == _bytes(ref)


@pytest.mark.parametrize(("flags", "message"), [
    (["--family", "cubist"], "--family 'cubist': unknown family; expected one of linear, "
                             "topics, nonlinear, duplicates, anisotropic, real"),
    (["--family", "real", "--creators", "4"], "--creators: not a size of family 'real'"),
    (["--family", "topics", "--segments"], "--segments: only for --family linear, not 'topics'"),
    (["--family", "topics", "--creators", "10", "--clips", "5"],
     "--clips 5: expected >= --creators (10)"),
])
def test_cli_bad_family_flags_are_one_line(tmp_path: Path, flags: list[str],
                                           message: str) -> None:
    out = tmp_path / "out"
    proc = run("samples", "make", "--out", out, "--seed", "1", *flags)
    assert_one_error_line(proc, message)
    assert not out.exists()


@pytest.mark.parametrize("name", ["topics", "real"])
def test_residuals_attribute_runs_on_a_family(made: dict[str, Path], name: str,
                                              tmp_path: Path) -> None:
    root, out = made[name], tmp_path / "attributions.parquet"
    proc = run("attribute", "--clips", root / S.CLIPS.filename, "--generations",
               root / S.GENERATIONS.filename, "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    att = read_table(out, S.ATTRIBUTIONS)
    sums = att.group_by(S.GENERATION_ID).agg(pl.col(S.WEIGHT).sum())[S.WEIGHT].to_numpy()
    assert att[S.GENERATION_ID].n_unique() == 120
    assert np.all((np.abs(sums - 1) < 1e-9) | (sums == 0))
