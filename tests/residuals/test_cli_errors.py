"""Bad input through the real ``residuals`` console script: exit status 1, exactly one
``error: `` line on stderr naming file, row (or id) and column, no traceback, and no
output file (nor temporary file) left behind.

Inputs are made by ``residuals samples make`` and then broken one way each.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from contract import schema as S
from tests.conftest import ROOT

DIM = 8
_SCRIPT = Path(sys.executable).parent / "residuals"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "residuals.cli"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def assert_one_error_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    proc = run("samples", "make", "--out", out, "--creators", 6, "--clips", 40,
               "--generations", 12, "--dim", DIM, "--seed", 4)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def data(sample: Path, tmp_path: Path) -> Path:
    """A fresh copy of the sample to break."""
    return Path(shutil.copytree(sample, tmp_path / "data"))


def rewrite(path: Path, change: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    change(pl.read_parquet(path)).write_parquet(path)


def set_value(column: str, row: int, value: object, dtype: pl.DataType | None = None
              ) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def change(df: pl.DataFrame) -> pl.DataFrame:
        values = df[column].to_list()
        values[row] = value
        return df.with_columns(pl.Series(column, values, dtype=dtype or df.schema[column]))
    return change


def set_embedding_value(row: int, index: int, value: float
                        ) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def change(df: pl.DataFrame) -> pl.DataFrame:
        rows = df[S.EMBEDDING].to_list()
        rows[row][index] = value
        return df.with_columns(pl.Series(S.EMBEDDING, rows, dtype=df.schema[S.EMBEDDING]))
    return change


# ---- residuals attribute --clips F --generations F --out F -----------------------------------

def attribute(data: Path, clips: Path | None = None, gens: Path | None = None
              ) -> tuple[subprocess.CompletedProcess[str], Path]:
    pytest.importorskip("residuals.commands.attribute")
    out_dir = data / "out"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / "attributions.parquet"
    proc = run("attribute", "--clips", clips or data / "clips.parquet",
               "--generations", gens or data / "generations.parquet", "--out", out, "--quiet")
    return proc, out


def assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no temporary file either


def test_attribute_works_on_the_unbroken_sample(data: Path) -> None:
    proc, out = attribute(data)
    assert proc.returncode == 0, proc.stderr
    assert pl.read_parquet(out).height > 0


def test_missing_file(data: Path) -> None:
    (data / "clips.parquet").unlink()
    proc, out = attribute(data)
    assert_one_error_line(proc, str(data / "clips.parquet"), "not found")
    assert_nothing_written(out)


def test_missing_column(data: Path) -> None:
    rewrite(data / "clips.parquet", lambda df: df.drop(S.CREATOR_ID))
    proc, out = attribute(data)
    assert_one_error_line(proc, str(data / "clips.parquet"), "column creator_id",
                          "missing required column creator_id", "found: clip_id, embedding")
    assert_nothing_written(out)


def test_wrong_type(data: Path) -> None:
    rewrite(data / "generations.parquet",
            lambda df: df.with_columns(pl.col(S.GENERATION_ID).str.slice(4).cast(pl.Int64)))
    proc, out = attribute(data)
    assert_one_error_line(proc, str(data / "generations.parquet"), "row 0",
                          "column generation_id", "has type Int64", "expected a string",
                          "found 1")
    assert_nothing_written(out)


def test_empty_id(data: Path) -> None:
    rewrite(data / "generations.parquet", set_value(S.GENERATION_ID, 3, ""))
    proc, out = attribute(data)
    assert_one_error_line(proc, str(data / "generations.parquet"), "row 3",
                          "column generation_id", "is empty, expected a non-empty id")
    assert_nothing_written(out)


def test_duplicate_id(data: Path) -> None:
    rewrite(data / "clips.parquet", set_value(S.CLIP_ID, 7, "clip_0002"))
    proc, out = attribute(data)
    assert_one_error_line(proc, str(data / "clips.parquet"), "row 7", "column clip_id",
                          "duplicate id 'clip_0002' (first at row 1)", "expected unique ids")
    assert_nothing_written(out)


@pytest.mark.parametrize(("value", "shown"), [(float("nan"), "nan"), (float("inf"), "inf")])
@pytest.mark.parametrize("table", ["clips", "generations"])
def test_non_finite_embedding_value(data: Path, table: str, value: float, shown: str) -> None:
    path = data / f"{table}.parquet"
    rewrite(path, set_embedding_value(5, 2, value))
    ident = "clip_id 'clip_0006'" if table == "clips" else "generation_id 'gen_0006'"
    proc, out = attribute(data)
    assert_one_error_line(proc, str(path), f"row 5 ({ident})", "column embedding",
                          f"value 2 is {shown}", "expected a finite number")
    assert_nothing_written(out)


@pytest.mark.parametrize("table", ["clips", "generations"])
def test_zero_norm_embedding(data: Path, table: str) -> None:
    path = data / f"{table}.parquet"
    rewrite(path, set_value(S.EMBEDDING, 4, [0.0] * DIM))
    proc, out = attribute(data)
    assert_one_error_line(proc, str(path), "row 4", "column embedding", "has zero norm",
                          "expected a non-zero vector")
    assert_nothing_written(out)


def test_embedding_length_differs_between_rows(data: Path) -> None:
    def shorten(df: pl.DataFrame) -> pl.DataFrame:
        rows = df[S.EMBEDDING].to_list()
        rows[9] = rows[9][:-1]
        return df.with_columns(pl.Series(S.EMBEDDING, rows, dtype=pl.List(pl.Float32)))

    rewrite(data / "clips.parquet", shorten)
    proc, out = attribute(data)
    assert_one_error_line(proc, str(data / "clips.parquet"), "row 9 (clip_id 'clip_0010')",
                          "column embedding", f"has {DIM - 1} values", f"expected {DIM}")
    assert_nothing_written(out)


def test_embedding_length_differs_between_files(data: Path) -> None:
    rewrite(data / "generations.parquet", lambda df: df.with_columns(
        pl.col(S.EMBEDDING).arr.slice(0, DIM - 2).list.to_array(DIM - 2)))
    proc, out = attribute(data)
    assert_one_error_line(proc, str(data / "generations.parquet"), "row 0", "column embedding",
                          f"has {DIM - 2} values", f"expected {DIM}", "clips.parquet")
    assert_nothing_written(out)


@pytest.mark.parametrize("table", ["clips", "generations"])
def test_empty_table(data: Path, table: str) -> None:
    rewrite(data / f"{table}.parquet", lambda df: df.clear())
    proc, out = attribute(data)
    assert_one_error_line(proc, str(data / f"{table}.parquet"), "empty")
    assert_nothing_written(out)


@pytest.mark.parametrize("table", ["clips", "generations"])
def test_file_that_is_not_parquet(data: Path, table: str) -> None:
    path = data / f"{table}.parquet"
    path.write_text("clip_id,creator_id\nclip_0001,creator_0001\n")
    proc, out = attribute(data)
    assert_one_error_line(proc, str(path), "not a readable Parquet file")
    assert_nothing_written(out)


# ---- a data directory (residuals policy compare --data DIR) --------------------------------------

def compare(data: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("residuals.commands.policy")
    before = sorted(p.name for p in data.iterdir())
    proc = run("policy", "compare", "--policy", ROOT / "policies" / "default.toml",
               "--policy", ROOT / "policies" / "attribution.toml", "--data", data)
    assert sorted(p.name for p in data.iterdir()) == before  # wrote nothing
    return proc


def test_clip_whose_creator_is_unknown(data: Path) -> None:
    rewrite(data / "clips.parquet", set_value(S.CREATOR_ID, 11, "creator_9999"))
    assert_one_error_line(compare(data), str(data / "clips.parquet"),
                          "row 11 (clip_id 'clip_0012')", "column creator_id",
                          "creator 'creator_9999' is not in creators.parquet")


def test_negative_revenue(data: Path) -> None:
    rewrite(data / "accounts.parquet", set_value(S.REVENUE_MINOR, 0, -100))
    assert_one_error_line(compare(data), str(data / "accounts.parquet"),
                          "row 0 (account_id 'acct_0001')", "column revenue_minor", "is -100",
                          "expected an amount >= 0")


def test_non_integer_revenue(data: Path) -> None:
    rewrite(data / "accounts.parquet", lambda df: df.with_columns(
        pl.col(S.REVENUE_MINOR).cast(pl.Float64) + 0.5))
    assert_one_error_line(compare(data), str(data / "accounts.parquet"),
                          "row 0 (account_id 'acct_0001')", "column revenue_minor",
                          "expected an integer number of minor units")


def test_missing_table_in_data_directory(data: Path) -> None:
    (data / "accounts.parquet").unlink()
    assert_one_error_line(compare(data), str(data / "accounts.parquet"), "not found")


# ---- residuals samples make: bad flags ---------------------------------------------------------

@pytest.mark.parametrize(("flags", "message"), [
    (["--creators", "10", "--clips", "5"], "--clips 5: expected >= --creators (10)"),
    (["--creators", "10", "--clips", "50", "--dim", "1"], "--dim 1: expected >= 2"),
    (["--creators", "0", "--clips", "50"], "--creators 0: expected >= 1"),
])
def test_samples_make_bad_flags(tmp_path: Path, flags: list[str], message: str) -> None:
    out = tmp_path / "out"
    proc = run("samples", "make", "--out", out, "--generations", 10, "--seed", 1,
               *(["--dim", "8"] if "--dim" not in flags else []), *flags)
    assert_one_error_line(proc, message)
    assert not out.exists()


def test_samples_make_out_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("keep me")
    proc = run("samples", "make", "--out", out, "--creators", 2, "--clips", 4,
               "--generations", 2, "--dim", 4, "--seed", 1)
    assert_one_error_line(proc, str(out), "not a directory")
    assert out.read_text() == "keep me"
