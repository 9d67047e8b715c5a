"""``residuals attribute``: the file it writes, and one-line errors that leave no file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from attribution.dask_engine import CONNECT_TIMEOUT
from contract import schema as S
from contract.io import check_attribution_weights, read_table
from residuals.cli import main
from tests.attribution.engine_data import clips_frame, gens_frame, random_emb, write


def run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    clips = write(clips_frame(random_emb(rng, 60, 8)), tmp_path / "clips.parquet", 16)
    gens = write(gens_frame(random_emb(rng, 20, 8)), tmp_path / "gens.parquet", 16)
    return clips, gens


def args(clips: Path, gens: Path, out: Path, *extra: str) -> list[str]:
    return ["attribute", "--clips", str(clips), "--generations", str(gens), "--out", str(out),
            *extra]


def test_writes_attributions(files, tmp_path, capsys) -> None:
    out = tmp_path / "a.parquet"
    code, err = run(args(*files, out, "--k", "4", "--depth", "4", "--method", "softmax"),
                    capsys)
    assert code == 0, err
    table = read_table(out, S.ATTRIBUTIONS)
    per_generation = table.group_by(S.GENERATION_ID).len()["len"]
    assert per_generation.len() == 20 and per_generation.max() <= 4 < table[S.RANK].max() + 1
    check_attribution_weights(table, str(out))
    assert f"{table.height} attributions (softmax, k = 4, depth = 4)" in err


def test_default_k_depth_and_method(files, tmp_path, capsys) -> None:
    from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
    from attribution.scorer import default_method

    out = tmp_path / "a.parquet"
    code, err = run(args(*files, out), capsys)
    assert code == 0, err
    table = read_table(out, S.ATTRIBUTIONS)
    check_attribution_weights(table, str(out))
    assert table.group_by(S.GENERATION_ID).len()["len"].max() <= DEFAULT_K
    assert table[S.GENERATION_ID].n_unique() == 20  # every generation has a row
    depth = min(60, DEFAULT_DEPTH)  # clamped to the 60 clips
    assert table[S.RANK].max() <= depth
    assert f"({default_method()}, k = {DEFAULT_K}, depth = {depth})" in err
    conf = table.group_by(S.GENERATION_ID).agg(pl.col(S.CONFIDENCE).n_unique().alias("n"),
                                               pl.col(S.CONFIDENCE).first())
    assert (conf["n"] == 1).all() and conf[S.CONFIDENCE].is_between(0, 1).all()


def test_a_file_without_confidence_is_still_valid(files, tmp_path, capsys) -> None:
    out = tmp_path / "a.parquet"
    assert run(args(*files, out), capsys)[0] == 0
    old = tmp_path / "old.parquet"
    pl.read_parquet(out).drop(S.CONFIDENCE).write_parquet(old)
    check_attribution_weights(read_table(old, S.ATTRIBUTIONS), str(old))


def test_same_bytes_every_run_and_scheduler(files, tmp_path, capsys) -> None:
    outs = [tmp_path / f"{name}.parquet" for name in ("a", "b", "c")]
    for out, extra in zip(outs, ([], ["--workers", "1"], ["--scheduler", "sync",
                                                           "--block-size", "3"])):
        assert run(args(*files, out, *extra), capsys)[0] == 0
    assert outs[0].read_bytes() == outs[1].read_bytes() == outs[2].read_bytes()


def _expect_error(argv: list[str], out: Path, capsys, pattern: str) -> None:
    code, err = run(argv, capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert pattern in lines[0], lines[0]
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*")), "temporary file left behind"


def test_dimension_mismatch(files, tmp_path, capsys) -> None:
    clips, _ = files
    gens = write(gens_frame(np.ones((3, 5), np.float32)), tmp_path / "g5.parquet", 16)
    out = tmp_path / "a.parquet"
    _expect_error(args(clips, gens, out), out, capsys, "has 5 values, expected 8")


def test_nan_and_zero_vectors(files, tmp_path, capsys) -> None:
    clips, _ = files
    emb = np.ones((4, 8), np.float32)
    emb[2, 3] = np.nan
    gens = write(gens_frame(emb), tmp_path / "gnan.parquet", 16)
    out = tmp_path / "a.parquet"
    _expect_error(args(clips, gens, out), out, capsys, "row 2 (generation_id 'g002')")
    emb[2] = 0.0
    gens = write(gens_frame(emb), tmp_path / "gzero.parquet", 16)
    _expect_error(args(clips, gens, out), out, capsys, "zero norm")
    cemb = random_emb(np.random.default_rng(1), 40, 8)
    cemb[33] = 0.0
    bad_clips = write(clips_frame(cemb), tmp_path / "czero.parquet", 16)
    _expect_error(args(bad_clips, files[1], out), out, capsys, "row 33 (clip_id 'c033')")


@pytest.mark.parametrize("flag,value,msg", [
    ("--k", "0", "--k 0: expected an integer >= 1"),
    ("--k", "61", "--k 61: larger than the catalogue"),
    ("--depth", "0", "--depth 0: expected an integer >= 1"),
    ("--block-size", "0", "--block-size 0: expected an integer >= 1"),
])
def test_bad_k_depth_and_block_size(files, tmp_path, capsys, flag, value, msg) -> None:
    out = tmp_path / "a.parquet"
    _expect_error(args(*files, out, flag, value), out, capsys, msg)


def test_unknown_method(files, tmp_path, capsys) -> None:
    out = tmp_path / "a.parquet"
    _expect_error(args(*files, out, "--method", "magic"), out, capsys, "unknown weighting method")


def test_unreachable_scheduler_is_quick(files, tmp_path, capsys) -> None:
    out = tmp_path / "a.parquet"
    _expect_error(args(*files, out, "--scheduler", "tcp://127.0.0.1:9"), out, capsys,
                  f"cannot reach a Dask scheduler within {CONNECT_TIMEOUT:.0f} s")


def test_scheduler_from_environment(files, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    out = tmp_path / "a.parquet"
    _expect_error(args(*files, out), out, capsys, "--scheduler tcp://127.0.0.1:9")


def test_bad_scheduler_value(files, tmp_path, capsys) -> None:
    out = tmp_path / "a.parquet"
    _expect_error(args(*files, out, "--scheduler", "nowhere"), out, capsys,
                  "expected 'threads', 'local' or an address")


def test_unwritable_output(files, tmp_path, capsys) -> None:
    out = tmp_path / "missing" / "a.parquet"
    _expect_error(args(*files, out), out, capsys, "does not exist")
    afile = tmp_path / "afile"
    afile.write_text("x")
    out = afile / "a.parquet"
    _expect_error(args(*files, out), out, capsys, "does not exist")
    out = tmp_path / "adir"
    out.mkdir()
    code, err = run(args(*files, out), capsys)
    assert code == 1 and "it is a directory" in err and out.is_dir()


def test_missing_input_file(files, tmp_path, capsys) -> None:
    out = tmp_path / "a.parquet"
    _expect_error(args(tmp_path / "nope.parquet", files[1], out), out, capsys, "file not found")


def test_sample_data_with_segments_matches_brute_force(tmp_path, capsys) -> None:
    from attribution.reference import brute_force_topk
    from contract.io import embedding_matrix
    from residuals.samples import make_samples

    make_samples(tmp_path, creators=8, clips=60, generations=15, dim=8, seed=3, segments=True,
                 row_group_size=40)
    clips_path, gens_path = tmp_path / S.CLIPS.filename, tmp_path / S.GENERATIONS.filename
    out = tmp_path / "a.parquet"
    code, err = run(args(clips_path, gens_path, out, "--k", "4", "--method", "softmax"), capsys)
    assert code == 0, err
    got = read_table(out, S.ATTRIBUTIONS)
    clips = read_table(clips_path, S.CLIPS).sort(S.CLIP_ID, S.SEGMENT_ID)  # catalogue order
    gens = read_table(gens_path, S.GENERATIONS)
    groups = clips[S.CLIP_ID].rank("dense").to_numpy() - 1
    ref = brute_force_topk(embedding_matrix(gens, "g", S.GENERATIONS),
                           embedding_matrix(clips, "c", S.CLIPS), 4, groups)
    rows = ref.idx.ravel()
    assert got[S.CLIP_ID].to_list() == clips[S.CLIP_ID].gather(rows).to_list()
    assert got[S.SEGMENT_ID].to_list() == clips[S.SEGMENT_ID].gather(rows).to_list()
    np.testing.assert_array_equal(got[S.SIMILARITY].to_numpy(), ref.topk.sim.ravel())


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), None])
def test_a_confidence_outside_0_1_is_refused(files, tmp_path, capsys, value) -> None:
    from contract.errors import ContractError

    out = tmp_path / "a.parquet"
    assert run(args(*files, out), capsys)[0] == 0
    table = pl.read_parquet(out)
    bad = table.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(value))
                             .otherwise(pl.col(S.CONFIDENCE)).cast(pl.Float64)
                             .alias(S.CONFIDENCE))
    with pytest.raises(ContractError, match="row 3, column confidence: .*expected a confidence"):
        check_attribution_weights(bad, "a.parquet")
