"""Validated readers: every bad input is one ContractError naming file, row/id, column,
expected and found; good inputs in every accepted shape read to the same thing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import schema as S
from contract.errors import ContractError, ResidualsError
from contract.io import (
    atomic_output,
    check_attribution_weights,
    embedding_matrix,
    load_dataset,
    parquet_embedding_dim,
    read_table,
    validate_frame,
    write_parquet,
)
from tests.conftest import SAMPLES

D = 4


def _emb(rows: list[list[float]], fixed: bool = True) -> pl.Series:
    dtype = pl.Array(pl.Float32, len(rows[0])) if fixed else pl.List(pl.Float32)
    return pl.Series(S.EMBEDDING, rows, dtype=dtype)


def creators_df() -> pl.DataFrame:
    return pl.DataFrame({S.CREATOR_ID: ["u1", "u2"], S.DISPLAY_NAME: ["Ann", "Bob"],
                         S.OPTED_OUT: [False, True]})


def clips_df(fixed: bool = True) -> pl.DataFrame:
    emb = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]]
    return pl.DataFrame({S.CLIP_ID: ["c1", "c2", "c3"], S.CREATOR_ID: ["u1", "u1", "u2"]}
                        ).with_columns(_emb(emb, fixed))


def gens_df(fixed: bool = True) -> pl.DataFrame:
    emb = [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 2.0]]
    return pl.DataFrame({S.GENERATION_ID: ["g1", "g2"]}).with_columns(_emb(emb, fixed))


def accounts_df() -> pl.DataFrame:
    return pl.DataFrame({S.ACCOUNT_ID: ["a1", "a2"], S.REVENUE_MINOR: [100, 250]})


def write_dir(root: Path, **override: pl.DataFrame) -> Path:
    """A valid tiny data directory, with any table replaced by ``override``."""
    root.mkdir(parents=True, exist_ok=True)
    tables = {"creators": creators_df(), "clips": clips_df(), "generations": gens_df(),
              "accounts": accounts_df(), **override}
    for name, df in tables.items():
        df.write_parquet(root / S.TABLES[name].filename)
    return root


def raises(fn, *args, **kwargs) -> ContractError:
    with pytest.raises(ContractError) as info:
        fn(*args, **kwargs)
    return info.value


def assert_names(err: ContractError, file: Path | str, *fragments: str,
                 row: int | None = None, column: str | None = None) -> None:
    """The one-line message names the file, row and column, plus each fragment."""
    msg = str(err)
    assert "\n" not in msg
    assert str(file) in msg and err.file == str(file)
    if row is not None:
        assert err.row == row and f"row {row}" in msg
    if column is not None:
        assert err.column == column and f"column {column}" in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


# ---- each bad input ---------------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "file not found", "expected the clips table")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    err = raises(read_table, tmp_path, S.CLIPS)
    assert_names(err, tmp_path, "is a directory", "expected a Parquet file")


def test_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    clips_df().drop(S.CREATOR_ID).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "missing required column creator_id",
                 f"found: {S.CLIP_ID}, {S.EMBEDDING}", column=S.CREATOR_ID)


def test_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "creators.parquet"
    creators_df().with_columns(pl.col(S.OPTED_OUT).cast(pl.String)).write_parquet(path)
    err = raises(read_table, path, S.CREATORS)
    assert_names(err, path, "(creator_id 'u1')", "has type String", "expected a boolean",
                 "found 'false'", row=0, column=S.OPTED_OUT)


def test_wrong_type_embedding_of_strings(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    clips_df().with_columns(pl.Series(S.EMBEDDING, [["a"], ["b"], ["c"]])).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "(clip_id 'c1')", "has type List(String)",
                 "expected a list of floats", "found ['a']", row=0, column=S.EMBEDDING)


def test_wrong_type_optional_column(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    clips_df().with_columns(pl.Series(S.DURATION_S, [None, "long", "x"])).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "(clip_id 'c2')", "has type String", "expected a number",
                 "found 'long'", row=1, column=S.DURATION_S)


def test_null_in_required_column(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    clips_df().with_columns(pl.Series(S.CREATOR_ID, ["u1", None, "u2"])).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "'c2'", "is null, expected a value", row=1, column=S.CREATOR_ID)


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_id(tmp_path: Path, blank: str) -> None:
    path = tmp_path / "clips.parquet"
    clips_df().with_columns(pl.Series(S.CLIP_ID, ["c1", blank, "c3"])).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "is empty, expected a non-empty id", row=1, column=S.CLIP_ID)


def test_duplicate_id(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    clips_df().with_columns(pl.Series(S.CLIP_ID, ["c1", "c2", "c1"])).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "duplicate id 'c1'", "first at row 0", "expected unique ids",
                 row=2, column=S.CLIP_ID)


@pytest.mark.parametrize("fixed", [True, False])
@pytest.mark.parametrize(("value", "shown"), [(float("nan"), "nan"), (float("inf"), "inf"),
                                              (float("-inf"), "-inf")])
def test_non_finite_embedding_value(tmp_path: Path, fixed: bool, value: float,
                                    shown: str) -> None:
    path = tmp_path / "clips.parquet"
    emb = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.5, 0.5, value, 0.5]]
    clips_df().with_columns(_emb(emb, fixed)).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "(clip_id 'c3')", f"value 2 is {shown}", "expected a finite number",
                 row=2, column=S.EMBEDDING)


def test_null_inside_embedding(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    emb = pl.Series(S.EMBEDDING, [[1.0, 0.0], [None, 1.0], [0.5, 0.5]], dtype=pl.List(pl.Float32))
    clips_df().with_columns(emb).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "(clip_id 'c2')", "value 0 is nan", "expected a finite number",
                 row=1, column=S.EMBEDDING)


@pytest.mark.parametrize("fixed", [True, False])
def test_zero_norm_embedding(tmp_path: Path, fixed: bool) -> None:
    path = tmp_path / "generations.parquet"
    gens_df().with_columns(_emb([[1.0, 0, 0, 0], [0.0, 0, 0, 0]], fixed)).write_parquet(path)
    err = raises(read_table, path, S.GENERATIONS)
    assert_names(err, path, "(generation_id 'g2')", "has zero norm", "expected a non-zero vector",
                 row=1, column=S.EMBEDDING)


def test_embedding_length_differs_between_rows(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    emb = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.5]]
    clips_df().with_columns(_emb(emb, fixed=False)).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "(clip_id 'c2')", "has 3 values", "expected 4 (the length of row 0)",
                 row=1, column=S.EMBEDDING)


def test_empty_embedding(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    clips_df().with_columns(pl.Series(S.EMBEDDING, [[], [], []], dtype=pl.List(pl.Float32))
                            ).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "has 0 values", "expected a non-empty embedding", row=0,
                 column=S.EMBEDDING)


@pytest.mark.parametrize("fixed", [True, False])
def test_embedding_length_differs_between_files(tmp_path: Path, fixed: bool) -> None:
    gens = pl.DataFrame({S.GENERATION_ID: ["g1", "g2"]}).with_columns(
        _emb([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], fixed))
    root = write_dir(tmp_path, generations=gens)
    err = raises(load_dataset, root)
    assert_names(err, root / "generations.parquet", "(generation_id 'g1')", "has 3 values",
                 f"expected 4 (the dimension of {root / 'clips.parquet'})",
                 row=0, column=S.EMBEDDING)


def test_embedding_length_differs_between_files_later_row(tmp_path: Path) -> None:
    gens = pl.DataFrame({S.GENERATION_ID: ["g1", "g2"]}).with_columns(
        _emb([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], fixed=False))
    path = tmp_path / "generations.parquet"
    gens.write_parquet(path)
    err = raises(read_table, path, S.GENERATIONS, dim=4, dim_source="clips.parquet")
    assert_names(err, path, "(generation_id 'g2')", "has 3 values",
                 "expected 4 (the dimension of clips.parquet)", row=1, column=S.EMBEDDING)


def test_clip_whose_creator_is_unknown(tmp_path: Path) -> None:
    clips = clips_df().with_columns(pl.Series(S.CREATOR_ID, ["u1", "u1", "nobody"]))
    root = write_dir(tmp_path, clips=clips)
    err = raises(load_dataset, root)
    assert_names(err, root / "clips.parquet", "(clip_id 'c3')",
                 "creator 'nobody' is not in creators.parquet", row=2, column=S.CREATOR_ID)


def test_negative_revenue(tmp_path: Path) -> None:
    path = tmp_path / "accounts.parquet"
    accounts_df().with_columns(pl.Series(S.REVENUE_MINOR, [100, -5])).write_parquet(path)
    err = raises(read_table, path, S.ACCOUNTS)
    assert_names(err, path, "(account_id 'a2')", "is -5", "expected an amount >= 0",
                 row=1, column=S.REVENUE_MINOR)


@pytest.mark.parametrize(("value", "shown"), [(12.5, "12.5"), (float("nan"), "nan"),
                                              (float("inf"), "inf")])
def test_non_integer_revenue(tmp_path: Path, value: float, shown: str) -> None:
    path = tmp_path / "accounts.parquet"
    accounts_df().with_columns(pl.Series(S.REVENUE_MINOR, [100.0, value])).write_parquet(path)
    err = raises(read_table, path, S.ACCOUNTS)
    assert_names(err, path, "(account_id 'a2')", f"is {shown}",
                 "expected an integer number of minor units", row=1, column=S.REVENUE_MINOR)


def test_integral_float_revenue_is_still_the_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "accounts.parquet"
    accounts_df().with_columns(pl.col(S.REVENUE_MINOR).cast(pl.Float64)).write_parquet(path)
    err = raises(read_table, path, S.ACCOUNTS)
    assert_names(err, path, "(account_id 'a1')", "has type Float64", "expected an integer",
                 "found 100.0", row=0, column=S.REVENUE_MINOR)


@pytest.mark.parametrize("name", ["creators", "clips", "generations", "accounts"])
def test_empty_table(tmp_path: Path, name: str) -> None:
    frames = {"creators": creators_df(), "clips": clips_df(), "generations": gens_df(),
              "accounts": accounts_df()}
    root = write_dir(tmp_path, **{name: frames[name].clear()})
    err = raises(load_dataset, root)
    assert_names(err, root / f"{name}.parquet", f"the {name} table is empty (0 rows)")


@pytest.mark.parametrize("content", [b"", b"clip_id,creator_id\nc1,u1\n", b"PAR1garbagePAR1"])
def test_file_that_is_not_parquet(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "clips.parquet"
    path.write_bytes(content)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "is not a readable Parquet file")


def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    clips_df().write_parquet(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "is not a readable Parquet file")


def test_data_directory_missing(tmp_path: Path) -> None:
    with pytest.raises(ResidualsError, match="data directory not found"):
        load_dataset(tmp_path / "nope")


def test_row_offset_counts_from_the_start_of_the_file() -> None:
    batch = clips_df().with_columns(pl.Series(S.CLIP_ID, ["c1", "", "c3"]))
    err = raises(validate_frame, batch, S.CLIPS, "clips.parquet", row_offset=1000)
    assert_names(err, "clips.parquet", row=1001, column=S.CLIP_ID)


def test_parquet_embedding_dim_bad_inputs(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    assert_names(raises(parquet_embedding_dim, path), path, "file not found")
    path.write_text("not parquet")
    assert_names(raises(parquet_embedding_dim, path), path, "is not a readable Parquet file")
    clips_df().drop(S.EMBEDDING).write_parquet(path)
    assert_names(raises(parquet_embedding_dim, path), path, "missing required column embedding",
                 column=S.EMBEDDING)
    clips_df().clear().write_parquet(path)
    assert parquet_embedding_dim(path) is None


# ---- segments -------------------------------------------------------------------------------

def segments_df() -> pl.DataFrame:
    return pl.DataFrame({
        S.CLIP_ID: ["c1", "c1", "c2"], S.CREATOR_ID: ["u1", "u1", "u2"],
        S.SEGMENT_ID: ["s0", "s1", "s0"], S.T_START: [0.0, 2.0, 0.0], S.T_END: [2.0, 4.0, 3.0],
    }).with_columns(_emb([[1.0, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 0, 1.0, 0]]))


def test_segments_share_a_clip_id(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    segments_df().write_parquet(path)
    df = read_table(path, S.CLIPS)
    assert df.height == 3 and df[S.CLIP_ID].to_list() == ["c1", "c1", "c2"]


def test_duplicate_segment(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    segments_df().with_columns(pl.Series(S.SEGMENT_ID, ["s0", "s0", "s0"])).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "segment 's0' of clip 'c1' appears twice", "expected unique segments",
                 row=1, column=S.SEGMENT_ID)


def test_segments_of_one_clip_name_different_creators(tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    segments_df().with_columns(pl.Series(S.CREATOR_ID, ["u1", "u2", "u2"])).write_parquet(path)
    err = raises(read_table, path, S.CLIPS)
    assert_names(err, path, "segments of clip 'c1' name different creators",
                 "expected one creator per clip", row=0, column=S.CREATOR_ID)


# ---- happy paths ------------------------------------------------------------------------------

def test_plain_and_fixed_size_lists_read_to_the_same_matrix(tmp_path: Path) -> None:
    clips_df(fixed=True).write_parquet(tmp_path / "fixed.parquet")
    clips_df(fixed=False).write_parquet(tmp_path / "plain.parquet")
    fixed = read_table(tmp_path / "fixed.parquet", S.CLIPS)
    plain = read_table(tmp_path / "plain.parquet", S.CLIPS)
    a = embedding_matrix(fixed, "fixed", S.CLIPS)
    b = embedding_matrix(plain, "plain", S.CLIPS)
    assert a.dtype == np.float32 and a.flags.c_contiguous and a.shape == (3, D)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.array(clips_df()[S.EMBEDDING].to_list(), np.float32))
    assert parquet_embedding_dim(tmp_path / "fixed.parquet") == D
    assert parquet_embedding_dim(tmp_path / "plain.parquet") == D


def test_float64_and_integer_embeddings_are_accepted(tmp_path: Path) -> None:
    df = clips_df().with_columns(
        pl.Series(S.EMBEDDING, [[1, 0], [0, 2], [3, 3]], dtype=pl.List(pl.Int64)))
    m = embedding_matrix(validate_frame(df, S.CLIPS, "x"), "x", S.CLIPS)
    np.testing.assert_array_equal(m, np.array([[1, 0], [0, 2], [3, 3]], np.float32))


def test_optional_columns_absent_and_present(tmp_path: Path) -> None:
    root = write_dir(tmp_path / "bare")
    bare = load_dataset(root)
    assert bare.dim == D and bare.attributions is None
    assert set(bare.clips.columns) == {S.CLIP_ID, S.CREATOR_ID, S.EMBEDDING}
    full = clips_df().with_columns(
        pl.Series(S.DURATION_S, [1.5, 2.0, 3.0]), pl.Series(S.LICENSE, ["a", "b", "a"]),
        pl.Series(S.CAPTION, ["x", "y", "z"]), pl.Series("extra_column", [1, 2, 3]))
    rich = load_dataset(write_dir(tmp_path / "rich", clips=full))
    assert rich.clips.columns == full.columns


def test_all_null_optional_column_is_accepted(tmp_path: Path) -> None:
    df = clips_df().with_columns(pl.lit(None).alias(S.CAPTION))
    assert validate_frame(df, S.CLIPS, "x").height == 3


def test_categorical_ids_and_narrow_ints_are_normalised() -> None:
    df = accounts_df().with_columns(pl.col(S.ACCOUNT_ID).cast(pl.Categorical),
                                    pl.col(S.REVENUE_MINOR).cast(pl.Int16))
    out = validate_frame(df, S.ACCOUNTS, "accounts.parquet")
    assert out.schema[S.ACCOUNT_ID] == pl.String and out.schema[S.REVENUE_MINOR] == pl.Int64


def test_committed_sample_is_valid() -> None:
    ds = load_dataset(SAMPLES)
    assert ds.dim == 64
    assert (ds.clips.height, ds.generations.height, ds.creators.height) == (6000, 3000, 300)
    assert ds.clips.schema[S.EMBEDDING] == pl.Array(pl.Float32, 64)


# ---- attribution weights ----------------------------------------------------------------------

def attributions(weights: list[float]) -> pl.DataFrame:
    n = len(weights)
    return pl.DataFrame({S.GENERATION_ID: ["g1"] * 2 + ["g2"] * (n - 2),
                         S.CLIP_ID: [f"c{i}" for i in range(n)], S.WEIGHT: weights})


def test_attribution_weights_sum_to_one_or_zero() -> None:
    check_attribution_weights(attributions([0.25, 0.75, 0.0, 0.0]), "a.parquet")
    err = raises(check_attribution_weights, attributions([0.5, 0.75, 0.0, 1.0]), "a.parquet")
    assert_names(err, "a.parquet", "generation_id 'g1'", "weights sum to 1.25", "expected 1 or 0",
                 column=S.WEIGHT)
    err = raises(check_attribution_weights, attributions([1.5, -0.5, 1.0, 0.0]), "a.parquet")
    assert_names(err, "a.parquet", "is -0.5", "expected a weight >= 0", row=1, column=S.WEIGHT)


# ---- atomic output ------------------------------------------------------------------------------

def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_atomic_output_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert _leftovers(tmp_path) == []


def test_atomic_output_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_bytes(b"new")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == ["out.parquet"]


def test_atomic_output_success_replaces(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_bytes(b"old")
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new" and _leftovers(tmp_path) == ["out.parquet"]


def test_atomic_output_refuses_missing_directory_and_directory_target(tmp_path: Path) -> None:
    with pytest.raises(ResidualsError, match="does not exist"), \
            atomic_output(tmp_path / "no" / "out.parquet"):
        pass
    with pytest.raises(ResidualsError, match="it is a directory"), atomic_output(tmp_path):
        pass
    assert _leftovers(tmp_path) == []


def test_atomic_output_refuses_read_only_directory(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Permission bits do not stop root, so the access check itself is stubbed.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ResidualsError, match="is not writable"), \
            atomic_output(tmp_path / "out.parquet"):
        pass
    assert _leftovers(tmp_path) == []


def test_write_parquet_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "accounts.parquet"
    write_parquet(accounts_df(), target)
    assert read_table(target, S.ACCOUNTS).equals(accounts_df())
    assert _leftovers(tmp_path) == ["accounts.parquet"]


# ---- property: one planted defect is reported at its row ------------------------------------------

DEFECTS = {
    "nan": ("value 1 is nan", S.EMBEDDING),
    "inf": ("value 1 is inf", S.EMBEDDING),
    "zero": ("has zero norm", S.EMBEDDING),
    "short": ("has 2 values", S.EMBEDDING),
    "empty_id": ("is empty", S.CLIP_ID),
    "null_creator": ("is null", S.CREATOR_ID),
}


@given(n=st.integers(2, 60), d=st.integers(3, 9), row=st.data(),
       defect=st.sampled_from(sorted(DEFECTS)), fixed=st.booleans(), offset=st.integers(0, 10**6))
def test_a_planted_defect_is_reported_at_its_row(n: int, d: int, row: st.DataObject, defect: str,
                                                 fixed: bool, offset: int) -> None:
    r = row.draw(st.integers(0 if defect != "short" else 1, n - 1))
    emb = np.random.default_rng(n * d).standard_normal((n, d)).astype(np.float32) + 3.0
    rows = emb.tolist()
    creators: list[str | None] = ["u1"] * n
    ids = [f"c{i}" for i in range(n)]
    if defect in ("nan", "inf"):
        rows[r][1] = float(defect)
    elif defect == "zero":
        rows[r] = [0.0] * d
    elif defect == "short":
        rows[r] = rows[r][:2]
        fixed = False
    elif defect == "empty_id":
        ids[r] = ""
    else:
        creators[r] = None
    df = pl.DataFrame({S.CLIP_ID: ids, S.CREATOR_ID: creators}).with_columns(
        pl.Series(S.EMBEDDING, rows, dtype=pl.Array(pl.Float32, d) if fixed
                  else pl.List(pl.Float32)))
    err = raises(validate_frame, df, S.CLIPS, "clips.parquet", row_offset=offset)
    fragment, column = DEFECTS[defect]
    assert_names(err, "clips.parquet", fragment, row=offset + r, column=column)


def test_duplicate_composite_key_names_both_rows(tmp_path: Path) -> None:
    """attributions are keyed by (generation_id, clip_id): a repeated pair is an error."""
    from contract import schema as S
    from contract.errors import ContractError
    from contract.io import read_table

    df = pl.DataFrame({
        S.GENERATION_ID: ["g1", "g1", "g2", "g1"], S.CLIP_ID: ["c1", "c2", "c1", "c1"],
        S.CREATOR_ID: ["a", "a", "a", "a"], S.RANK: [1, 2, 1, 3],
        S.SIMILARITY: [0.9, 0.8, 0.7, 0.6], S.WEIGHT: [0.5, 0.5, 1.0, 0.0],
    })
    path = tmp_path / "attributions.parquet"
    df.write_parquet(path)
    with pytest.raises(ContractError) as err:
        read_table(path, S.ATTRIBUTIONS)
    msg = str(err.value)
    assert "row 3" in msg and "first at row 0" in msg and "column clip_id" in msg
    assert "('g1', 'c1')" in msg


# ---- spreadsheet formulas in CSVs meant for people -------------------------------

@given(st.text(max_size=12))
def test_spreadsheet_safe_never_leaves_a_formula(value: str) -> None:
    from contract.io import FORMULA_PREFIXES, spreadsheet_safe

    out = spreadsheet_safe(pl.DataFrame({"t": [value], "n": [-3]}))
    cell = out["t"][0]
    assert out["n"].to_list() == [-3]
    if cell.startswith(FORMULA_PREFIXES):  # only plain numbers may keep a sign
        float(cell)
    assert cell in (value, "'" + value)


def test_spreadsheet_safe_keeps_numbers_and_plain_text() -> None:
    from contract.io import spreadsheet_safe

    df = pl.DataFrame({"t": ["=1+2", "-1.50", "plain", "@x", "\tx", "\rx", "+x", None]})
    assert spreadsheet_safe(df)["t"].to_list() == [
        "'=1+2", "-1.50", "plain", "'@x", "'\tx", "'\rx", "'+x", None]


# ---- text limits: the same rows on SQLite and PostgreSQL -------------------------

@pytest.mark.parametrize(("column", "value", "found"), [
    (S.CREATOR_ID, "c" * (S.MAX_ID_CHARS + 1), "201 characters"),
    (S.CREATOR_ID, "a\x00b", "NUL"),
    (S.DISPLAY_NAME, "n" * (S.MAX_NAME_CHARS + 1), "401 characters"),
    (S.DISPLAY_NAME, "a\x00b", "NUL"),
])
def test_text_limits(tmp_path: Path, column: str, value: str, found: str) -> None:
    creators = creators_df().with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(value)).otherwise(pl.col(column))
        .alias(column))
    root = write_dir(tmp_path, creators=creators)
    err = raises(read_table, root / "creators.parquet", S.CREATORS)
    assert err.row == 1 and err.column == column and found in str(err)
    assert "\n" not in str(err)
