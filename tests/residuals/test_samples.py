"""The sample generator: same seed, same bytes; valid contract tables; the planted truth
is really in the embeddings; attribution on it is solvable but not trivial."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import residuals.samples as samples
from contract import schema as S
from contract.errors import ResidualsError
from contract.io import embedding_matrix, load_dataset, read_table
from residuals.cli import app
from residuals.samples import make_samples
from tests.conftest import SAMPLES

FILES = [t.filename for t in (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS, S.TRUTH,
                              S.DUPLICATES)]
SMALL = {"creators": 40, "clips": 800, "generations": 400, "dim": 32, "seed": 5}


def _bytes(root: Path) -> dict[str, bytes]:
    return {f: (root / f).read_bytes() for f in FILES}


def _emb(df: pl.DataFrame) -> np.ndarray:
    return embedding_matrix(df, "x", S.CLIPS)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    make_samples(out, **SMALL)
    return out


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("segmented")
    make_samples(out, **SMALL, segments=True)
    return out


# ---- reproducibility ---------------------------------------------------------------------

def test_committed_sample_is_reproduced_byte_for_byte(tmp_path: Path) -> None:
    # The command in data/samples/README.md.
    make_samples(tmp_path, creators=300, clips=6000, generations=3000, dim=64, seed=2026)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    committed = _bytes(SAMPLES)
    for name, data in _bytes(tmp_path).items():
        assert data == committed[name], f"{name} differs from data/samples/{name}"


@pytest.mark.parametrize("segments", [False, True])
def test_same_seed_same_bytes(tmp_path: Path, segments: bool) -> None:
    make_samples(tmp_path / "a", **SMALL, segments=segments)
    make_samples(tmp_path / "b", **SMALL, segments=segments)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")


def test_other_seed_other_data(tmp_path: Path, small: Path) -> None:
    make_samples(tmp_path, **{**SMALL, "seed": 6})
    assert not np.array_equal(_emb(pl.read_parquet(small / "clips.parquet")),
                              _emb(pl.read_parquet(tmp_path / "clips.parquet")))


def test_row_group_size_changes_layout_not_data(tmp_path: Path) -> None:
    # More clips than one random-number block, so blocks and row groups straddle.
    args = {"creators": 12, "clips": samples.BLOCK + 3000, "generations": 300, "dim": 8,
            "seed": 3}
    make_samples(tmp_path / "a", **args, row_group_size=7000)
    make_samples(tmp_path / "b", **args)
    meta = pq.ParquetFile(tmp_path / "a" / "clips.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [7000, 7000, 5384]
    for f in FILES:
        assert pl.read_parquet(tmp_path / "a" / f).equals(pl.read_parquet(tmp_path / "b" / f)), f


# ---- the contract ------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["small", "segmented"])
def test_output_passes_the_contract(fixture: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(fixture)
    ds = load_dataset(root)
    assert ds.dim == SMALL["dim"]
    assert ds.clips.schema[S.EMBEDDING] == pl.Array(pl.Float32, SMALL["dim"])
    assert ds.generations.schema[S.EMBEDDING] == pl.Array(pl.Float32, SMALL["dim"])
    assert ds.creators.height == SMALL["creators"]
    assert ds.clips[S.CLIP_ID].n_unique() == SMALL["clips"]
    assert ds.generations.height == SMALL["generations"]
    assert ds.accounts.height == SMALL["generations"] // 25
    assert ds.accounts.schema[S.REVENUE_MINOR] == pl.Int64
    assert (ds.accounts[S.REVENUE_MINOR] >= 0).all()
    assert ds.generations[S.ACCOUNT_ID].is_in(ds.accounts[S.ACCOUNT_ID].implode()).all()
    for df in (ds.clips, ds.generations):
        np.testing.assert_allclose(np.linalg.norm(_emb(df), axis=1), 1.0, atol=1e-5)
    for col in (S.DURATION_S, S.LICENSE, S.CAPTION):
        assert ds.clips[col].null_count() == 0
    for col in (S.COUNTRY, S.JOINED_AT):
        assert ds.creators[col].null_count() == 0
    for col in (S.CREATED_AT, S.PROMPT):
        assert ds.generations[col].null_count() == 0
    read_table(root / "truth.parquet", S.TRUTH)
    read_table(root / "duplicates.parquet", S.DUPLICATES)


def test_every_creator_has_a_clip_and_catalogues_are_heavy_tailed(small: Path) -> None:
    clips = pl.read_parquet(small / "clips.parquet")
    sizes = clips.group_by(S.CREATOR_ID).len()["len"]
    assert sizes.len() == SMALL["creators"] and sizes.min() >= 1
    assert sizes.max() >= 4 * sizes.median()


def test_opted_out_share(small: Path) -> None:
    creators = pl.read_parquet(small / "creators.parquet")
    assert creators[S.OPTED_OUT].sum() == round(0.05 * SMALL["creators"])


def test_accounts_flag(tmp_path: Path) -> None:
    make_samples(tmp_path, **SMALL, accounts=3)
    gens = pl.read_parquet(tmp_path / "generations.parquet")
    assert pl.read_parquet(tmp_path / "accounts.parquet").height == 3
    assert gens[S.ACCOUNT_ID].n_unique() <= 3


# ---- the planted truth --------------------------------------------------------------------------

def _rows(df: pl.DataFrame, key: str, ids: pl.Series) -> np.ndarray:
    """Row numbers in ``df`` of ``ids`` (an obvious lookup by join)."""
    rows = pl.DataFrame({key: ids}).with_row_index("_i").join(
        df.select(key).with_row_index("_r"), on=key, how="left").sort("_i")["_r"]
    assert rows.null_count() == 0
    return rows.to_numpy().astype(np.int64)


def _by_id(df: pl.DataFrame, key: str, ids: pl.Series) -> np.ndarray:
    """Embeddings of ``ids``, in their order."""
    return _emb(df)[_rows(df, key, ids)]


def test_truth_weights_and_novel_share(small: Path) -> None:
    truth = pl.read_parquet(small / "truth.parquet")
    clips = pl.read_parquet(small / "clips.parquet")
    per_gen = truth.group_by(S.GENERATION_ID).agg(pl.col(S.WEIGHT).sum(), pl.len(),
                                                  pl.col(S.CLIP_ID).n_unique().alias("u"))
    np.testing.assert_allclose(per_gen[S.WEIGHT], 1.0, atol=1e-12)
    assert per_gen["len"].is_between(1, 4).all() and (per_gen["len"] == per_gen["u"]).all()
    assert set(per_gen["len"].unique()) == {1, 2, 3, 4}
    assert SMALL["generations"] - per_gen.height == round(0.15 * SMALL["generations"])
    assert (truth[S.WEIGHT] > 0).all()
    # Each truth row names the creator that owns the clip.
    joined = truth.join(clips.select(S.CLIP_ID, S.CREATOR_ID), on=S.CLIP_ID, suffix="_clip")
    assert joined.height == truth.height
    assert (joined[S.CREATOR_ID] == joined[f"{S.CREATOR_ID}_clip"]).all()


def test_generations_are_the_planted_mixtures(small: Path) -> None:
    """Rebuild each sourced generation from truth, slowly, and compare."""
    truth = pl.read_parquet(small / "truth.parquet")
    clips = pl.read_parquet(small / "clips.parquet")
    gens = pl.read_parquet(small / "generations.parquet")
    src = _by_id(clips, S.CLIP_ID, truth[S.CLIP_ID]) * truth[S.WEIGHT].to_numpy()[:, None]
    g = _rows(gens, S.GENERATION_ID, truth[S.GENERATION_ID])
    summed = np.zeros((gens.height, SMALL["dim"]))
    np.add.at(summed, g, src)
    sourced = np.unique(g)
    summed = summed[sourced] / np.linalg.norm(summed[sourced], axis=1, keepdims=True)
    cos = np.einsum("ij,ij->i", summed, _emb(gens)[sourced])
    # Relative noise 0.15 gives cos ~ 1/sqrt(1 + 0.15^2) = 0.989.
    assert cos.min() > 0.93 and np.median(cos) > 0.98


def test_near_duplicates_copy_their_own_creators_originals(small: Path) -> None:
    dups = pl.read_parquet(small / "duplicates.parquet")
    clips = pl.read_parquet(small / "clips.parquet")
    truth = pl.read_parquet(small / "truth.parquet")
    assert dups.height >= 2 and dups[S.DUPLICATE_OF].n_unique() < dups.height  # several copies
    owner = dict(zip(clips[S.CLIP_ID], clips[S.CREATOR_ID], strict=True))
    assert all(owner[c] == owner[o] for c, o in zip(dups[S.CLIP_ID], dups[S.DUPLICATE_OF],
                                                    strict=True))
    assert not dups[S.DUPLICATE_OF].is_in(dups[S.CLIP_ID].implode()).any()  # originals
    assert not truth[S.CLIP_ID].is_in(dups[S.CLIP_ID].implode()).any()  # sources aren't copies
    cos = np.einsum("ij,ij->i", _by_id(clips, S.CLIP_ID, dups[S.CLIP_ID]),
                    _by_id(clips, S.CLIP_ID, dups[S.DUPLICATE_OF]))
    assert cos.min() > 0.999


def test_near_duplicates_across_random_blocks(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny random-number blocks, so copies sit blocks after their originals.
    monkeypatch.setattr(samples, "BLOCK", 16)
    make_samples(tmp_path, **SMALL)
    clips = pl.read_parquet(tmp_path / "clips.parquet")
    dups = pl.read_parquet(tmp_path / "duplicates.parquet")
    assert dups.height >= 2
    index = dict(zip(clips[S.CLIP_ID], range(clips.height), strict=True))
    rows = np.array([index[c] for c in dups[S.CLIP_ID]])
    orig = np.array([index[c] for c in dups[S.DUPLICATE_OF]])
    assert ((rows // samples.BLOCK) != (orig // samples.BLOCK)).any()
    emb = _emb(clips)
    assert np.einsum("ij,ij->i", emb[rows], emb[orig]).min() > 0.999


def test_segments(segmented: Path) -> None:
    clips = pl.read_parquet(segmented / "clips.parquet")
    truth = pl.read_parquet(segmented / "truth.parquet")
    per_clip = clips.group_by(S.CLIP_ID).agg(pl.len(), pl.col(S.T_START).min(),
                                             pl.col(S.T_END).max(), pl.col(S.DURATION_S).first())
    assert per_clip.height == SMALL["clips"] and per_clip["len"].is_between(1, 4).all()
    assert set(per_clip["len"].unique()) == {1, 2, 3, 4}
    assert (per_clip[S.T_START] == 0).all()
    np.testing.assert_allclose(per_clip[S.T_END], per_clip[S.DURATION_S], atol=1e-3)
    assert (clips[S.T_START] < clips[S.T_END]).all()
    # Segments of one clip are close to each other, far closer than to other clips.
    emb = _emb(clips)
    first = clips.with_row_index("_r").group_by(S.CLIP_ID).agg(pl.col("_r").first())
    lead = dict(zip(first[S.CLIP_ID], first["_r"], strict=True))
    lead_rows = np.array([lead[c] for c in clips[S.CLIP_ID]])
    assert np.einsum("ij,ij->i", emb, emb[lead_rows]).min() > 0.9
    # Truth names a segment that exists.
    assert S.SEGMENT_ID in truth.columns
    assert truth.join(clips, on=[S.CLIP_ID, S.SEGMENT_ID]).height == truth.height


def test_attribution_is_solvable_but_not_trivial() -> None:
    """Exact cosine top-10 recovers most planted sources; novel generations look novel.

    Measured on the committed sample (the figures in data/samples/README.md).
    """
    clips = pl.read_parquet(SAMPLES / "clips.parquet")
    gens = pl.read_parquet(SAMPLES / "generations.parquet")
    truth = pl.read_parquet(SAMPLES / "truth.parquet")
    sim = _emb(gens) @ _emb(clips).T
    top = np.argsort(-sim, axis=1, kind="stable")[:, :10]
    g = _rows(gens, S.GENERATION_ID, truth[S.GENERATION_ID])
    src = _rows(clips, S.CLIP_ID, truth[S.CLIP_ID])
    recall = (top[g] == src[:, None]).any(axis=1).mean()
    assert 0.85 <= recall <= 0.97
    best = sim.max(axis=1)
    sourced = np.zeros(len(best), dtype=bool)
    sourced[np.unique(g)] = True
    assert np.quantile(best[~sourced], 0.99) < 0.55 < np.quantile(best[sourced], 0.01)


# ---- bad arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"creators": 0}, "creators=0: expected >= 1"),
    ({"clips": 10}, "clips=10: expected >= `creators` (40)"),
    ({"generations": 0}, "generations=0: expected >= 1"),
    ({"dim": 1}, "dim=1: expected >= 2"),
    ({"accounts": 0}, "accounts=0: expected >= 1"),
    ({"row_group_size": 0}, "row_group_size=0: expected >= 1"),
])
def test_bad_arguments_write_nothing(tmp_path: Path, change: dict, message: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(ResidualsError) as info:
        make_samples(out, **{**SMALL, **change})
    assert message in str(info.value)
    assert not out.exists()


def test_out_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(ResidualsError, match="exists and is not a directory"):
        make_samples(out, **SMALL)


def test_failure_midway_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(samples, "_topic_names", boom)  # fails after creators are staged
    with pytest.raises(RuntimeError):
        make_samples(tmp_path, **SMALL)
    assert list(tmp_path.iterdir()) == []


# ---- the command -----------------------------------------------------------------------------------

def test_cli_make_writes_the_same_files_and_a_summary(tmp_path: Path, small: Path) -> None:
    args = ["samples", "make", "--out", str(tmp_path)] + [
        x for k, v in SMALL.items() for x in (f"--{k}", str(v))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _bytes(tmp_path) == _bytes(small)
    for f in FILES:
        assert f in result.output
    assert "800" in result.output and "seed 5" in result.output


def test_cli_segments_flag(tmp_path: Path, segmented: Path) -> None:
    args = ["samples", "make", "--out", str(tmp_path), "--segments"] + [
        x for k, v in SMALL.items() for x in (f"--{k}", str(v))]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert _bytes(tmp_path) == _bytes(segmented)


# ---- any small arguments -------------------------------------------------------------------------

@given(creators=st.integers(1, 8), extra_clips=st.integers(0, 40), generations=st.integers(1, 25),
       dim=st.integers(2, 6), seed=st.integers(0, 2**32 - 1), segments=st.booleans(),
       accounts=st.one_of(st.none(), st.integers(1, 5)))
def test_any_small_arguments_give_valid_data(creators: int, extra_clips: int, generations: int,
                                             dim: int, seed: int, segments: bool,
                                             accounts: int | None) -> None:
    clips = creators + extra_clips
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        make_samples(out, creators=creators, clips=clips, generations=generations, dim=dim,
                     seed=seed, accounts=accounts, segments=segments, row_group_size=7)
        ds = load_dataset(out)
        truth = read_table(out / "truth.parquet", S.TRUTH)
        dups = pl.read_parquet(out / "duplicates.parquet")
    assert ds.dim == dim and ds.creators.height == creators
    assert ds.clips[S.CLIP_ID].n_unique() == clips and ds.generations.height == generations
    assert ds.clips[S.CREATOR_ID].n_unique() == creators
    assert ds.accounts.height == (accounts or max(1, generations // 25))
    n_novel = round(0.15 * generations)
    assert truth[S.GENERATION_ID].n_unique() == generations - n_novel
    sums = truth.group_by(S.GENERATION_ID).agg(pl.col(S.WEIGHT).sum())[S.WEIGHT]
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-12)
    assert truth[S.CLIP_ID].is_in(ds.clips[S.CLIP_ID].implode()).all()
    assert not truth[S.CLIP_ID].is_in(dups[S.CLIP_ID].implode()).any()
    assert dups[S.DUPLICATE_OF].is_in(ds.clips[S.CLIP_ID].implode()).all()


# ---- the next period -----------------------------------------------------------------------------

CATALOGUE = ["creators.parquet", "clips.parquet", "duplicates.parquet"]


@pytest.fixture(scope="module")
def following(tmp_path_factory: pytest.TempPathFactory, small: Path) -> Path:
    out = tmp_path_factory.mktemp("following")
    assert samples.next_period(small, out, seed=SMALL["seed"]) == 1
    return out


def test_next_period_keeps_the_catalogue_byte_for_byte(small: Path, following: Path) -> None:
    for name in CATALOGUE:
        assert (following / name).read_bytes() == (small / name).read_bytes(), name
    before, after = (pl.read_parquet(d / "accounts.parquet") for d in (small, following))
    assert after[S.ACCOUNT_ID].to_list() == before[S.ACCOUNT_ID].to_list()
    assert after[S.REVENUE_MINOR].to_list() != before[S.REVENUE_MINOR].to_list()


def test_next_period_has_new_generations_in_the_next_month(small: Path, following: Path) -> None:
    before, after = (read_table(d / "generations.parquet", S.GENERATIONS)
                     for d in (small, following))
    assert after.height == before.height
    assert set(after[S.GENERATION_ID]).isdisjoint(before[S.GENERATION_ID])
    assert after[S.GENERATION_ID][0] == f"gen_{before.height + 1:04d}"
    assert not np.allclose(_emb(after)[:5], _emb(before)[:5])
    assert before[S.CREATED_AT].dt.strftime("%Y-%m").unique().to_list() == ["2026-10"]
    assert after[S.CREATED_AT].dt.strftime("%Y-%m").unique().to_list() == ["2026-11"]
    truth = read_table(following / "truth.parquet", S.TRUTH)
    assert set(truth[S.GENERATION_ID]) <= set(after[S.GENERATION_ID])
    clips = read_table(following / "clips.parquet", S.CLIPS)
    assert set(truth[S.CLIP_ID]) <= set(clips[S.CLIP_ID])


def test_next_period_is_deterministic_and_chains(tmp_path: Path, small: Path,
                                                 following: Path) -> None:
    again = tmp_path / "again"
    samples.next_period(small, again, seed=SMALL["seed"])
    assert _bytes(again) == _bytes(following)
    third = tmp_path / "third"
    assert samples.next_period(following, third, seed=SMALL["seed"]) == 2
    gens = pl.read_parquet(third / "generations.parquet")
    assert gens[S.GENERATION_ID][0] == f"gen_{2 * SMALL['generations'] + 1:04d}"
    assert gens[S.CREATED_AT].dt.strftime("%Y-%m").unique().to_list() == ["2026-12"]


def test_next_period_with_segments(tmp_path: Path, segmented: Path) -> None:
    out = tmp_path / "next"
    samples.next_period(segmented, out, seed=SMALL["seed"])
    assert (out / "clips.parquet").read_bytes() == (segmented / "clips.parquet").read_bytes()
    truth = read_table(out / "truth.parquet", S.TRUTH)
    assert S.SEGMENT_ID in truth.columns


def test_next_period_with_another_seed_writes_nothing(tmp_path: Path, small: Path) -> None:
    out = tmp_path / "next"
    with pytest.raises(ResidualsError, match=r"^seed=6: does not reproduce .*creators.parquet"):
        samples.next_period(small, out, seed=6)
    assert list(out.iterdir()) == []


def test_next_period_of_a_directory_without_a_sample(tmp_path: Path) -> None:
    with pytest.raises(ResidualsError, match=r"^prev='.*': creators.parquet not found"):
        samples.next_period(tmp_path, tmp_path / "next", seed=1)


def test_cli_next_period(tmp_path: Path, small: Path, following: Path) -> None:
    out = tmp_path / "next"
    args = ["samples", "make", "--out", str(out), "--seed", "5", "--next-period", str(small)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _bytes(out) == _bytes(following)
    assert "period 1" in result.output
    bad = CliRunner().invoke(app, [*args[:5], "6", *args[6:]])
    assert str(bad.exception).startswith("--seed 6: does not reproduce")
    sized = CliRunner().invoke(app, [*args, "--creators", "3"])
    assert str(sized.exception).startswith("--creators: not with --next-period")
