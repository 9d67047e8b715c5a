"""The catalogue: validated per row group, ids unique across batches, read per partition."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from attribution.catalogue import catalogue_from_frame, gather, load_partition, open_catalogue
from attribution.search import normalize
from contract import schema as S
from contract.errors import ContractError
from tests.attribution.engine_data import clips_frame, random_emb, write


def _ids(n: int) -> list[str]:
    rng = np.random.default_rng(n)
    return [f"c{i:03d}" for i in rng.permutation(n)]  # stored order != id order


def test_partitions_cover_rows_in_catalogue_order(tmp_path) -> None:
    rng = np.random.default_rng(0)
    emb = random_emb(rng, 50, 4)
    df = clips_frame(emb, ids=_ids(50))
    cat = open_catalogue(write(df, tmp_path / "c.parquet", 7), partition_rows=15)
    assert cat.n_rows == cat.n_clips == 50 and cat.dim == 4 and not cat.segments
    assert cat.ids[S.CLIP_ID].to_list() == sorted(df[S.CLIP_ID].to_list())
    assert [p.row_groups for p in cat.partitions] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    seen = []
    for part in cat.partitions:
        vecs, keys, groups = load_partition(part, cat.dim)
        assert groups is None and (np.diff(keys) > 0).all()
        # catalogue index i is clip cat.ids[i]; its vector is that clip's stored row
        stored = df.with_row_index("r").filter(
            pl.col(S.CLIP_ID).is_in(cat.ids[S.CLIP_ID].gather(keys).implode()))
        by_id = dict(zip(stored[S.CLIP_ID].to_list(), stored["r"].to_list()))
        rows = [by_id[c] for c in cat.ids[S.CLIP_ID].gather(keys).to_list()]
        np.testing.assert_array_equal(vecs, normalize(emb)[rows])
        seen.extend(keys.tolist())
    assert sorted(seen) == list(range(50))


def test_partition_reads_only_its_row_groups(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    path = write(clips_frame(random_emb(rng, 40, 3)), tmp_path / "c.parquet", 10)
    cat = open_catalogue(path, partition_rows=10)
    calls: list[list[int]] = []
    real = pq.ParquetFile.read_row_groups

    def spy(self, row_groups, *args, **kwargs):
        calls.append(list(row_groups))
        return real(self, row_groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    for part in cat.partitions:
        load_partition(part, cat.dim)
    assert calls == [[0], [1], [2], [3]]


def test_frame_and_file_catalogues_agree(tmp_path) -> None:
    rng = np.random.default_rng(2)
    df = clips_frame(random_emb(rng, 30, 5), ids=_ids(30))
    a = open_catalogue(write(df, tmp_path / "c.parquet", 4), partition_rows=8)
    b = catalogue_from_frame(df, partition_rows=11)
    assert a.ids.equals(b.ids)
    va = np.concatenate([load_partition(p, 5)[0] for p in a.partitions])
    ka = np.concatenate([load_partition(p, 5)[1] for p in a.partitions])
    vb = np.concatenate([load_partition(p, 5)[0] for p in b.partitions])
    kb = np.concatenate([load_partition(p, 5)[1] for p in b.partitions])
    np.testing.assert_array_equal(va[np.argsort(ka)], vb[np.argsort(kb)])


def test_duplicate_id_across_row_groups_names_row(tmp_path) -> None:
    rng = np.random.default_rng(3)
    ids = [f"c{i:02d}" for i in range(12)]
    ids[10] = "c01"
    path = write(clips_frame(random_emb(rng, 12, 3), ids=ids), tmp_path / "c.parquet", 4)
    with pytest.raises(ContractError, match=r"c\.parquet, row 10, column clip_id: .*'c01'"):
        open_catalogue(path)


def test_bad_embedding_in_later_row_group_names_absolute_row(tmp_path) -> None:
    rng = np.random.default_rng(4)
    emb = random_emb(rng, 12, 3)
    emb[9, 1] = np.nan
    path = write(clips_frame(emb), tmp_path / "c.parquet", 4)
    with pytest.raises(ContractError, match=r"row 9 .*column embedding: value 1 is nan"):
        open_catalogue(path)
    emb[9] = 0.0
    path = write(clips_frame(emb), tmp_path / "c.parquet", 4)
    with pytest.raises(ContractError, match=r"row 9 .*zero norm"):
        open_catalogue(path)


def test_dimension_change_between_row_groups(tmp_path) -> None:
    a = clips_frame(np.ones((4, 3), np.float32), ids=[f"a{i}" for i in range(4)])
    b = clips_frame(np.ones((4, 2), np.float32), ids=[f"b{i}" for i in range(4)])
    path = tmp_path / "c.parquet"
    with pq.ParquetWriter(path, a.with_columns(
            pl.col(S.EMBEDDING).cast(pl.List(pl.Float32))).to_arrow().schema) as w:
        for df in (a, b):
            w.write_table(df.with_columns(pl.col(S.EMBEDDING).cast(pl.List(pl.Float32))).to_arrow())
    with pytest.raises(ContractError, match=r"row 4 .*has 2 values, expected 3"):
        open_catalogue(path)


def test_missing_empty_and_not_parquet(tmp_path) -> None:
    with pytest.raises(ContractError, match="file not found"):
        open_catalogue(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ContractError, match="not a readable Parquet file"):
        open_catalogue(bad)
    empty = clips_frame(np.ones((1, 2), np.float32)).clear()
    with pytest.raises(ContractError, match="empty"):
        open_catalogue(write(empty, tmp_path / "e.parquet", 10))


def test_segments_groups_and_uniqueness(tmp_path) -> None:
    rng = np.random.default_rng(5)
    ids = ["b", "a", "b", "c", "a", "b"]
    segs = ["s1", "s0", "s0", "s0", "s1", "s2"]
    df = clips_frame(random_emb(rng, 6, 3), ids=ids, segments=segs)
    cat = open_catalogue(write(df, tmp_path / "c.parquet", 2), partition_rows=2)
    assert cat.segments and cat.n_rows == 6 and cat.n_clips == 3
    assert cat.ids.select(S.CLIP_ID, S.SEGMENT_ID).rows() == [
        ("a", "s0"), ("a", "s1"), ("b", "s0"), ("b", "s1"), ("b", "s2"), ("c", "s0")]
    groups = np.concatenate([load_partition(p, 3)[2] for p in cat.partitions])
    keys = np.concatenate([load_partition(p, 3)[1] for p in cat.partitions])
    assert dict(zip(keys.tolist(), groups.tolist())) == {0: 0, 1: 0, 2: 1, 3: 1, 4: 1, 5: 2}
    dup = clips_frame(random_emb(rng, 4, 3), ids=["a", "b", "c", "a"],
                      segments=["s0", "s0", "s0", "s0"])
    with pytest.raises(ContractError, match=r"row 3, column segment_id: segment 's0' of clip 'a'"):
        open_catalogue(write(dup, tmp_path / "d.parquet", 2))


def test_gather_returns_requested_vectors(tmp_path) -> None:
    rng = np.random.default_rng(6)
    emb = random_emb(rng, 20, 4)
    cat = catalogue_from_frame(clips_frame(emb), partition_rows=6)
    wanted = np.array([[3, 19, -1], [7, 0, 3]])
    got = np.zeros((6, 4), np.float32)
    filled = np.zeros(6, bool)
    for part in cat.partitions:
        pos, vecs = gather(part, 4, wanted)
        got[pos] = vecs
        assert not filled[pos].any()
        filled[pos] = True
    assert filled.tolist() == [True, True, False, True, True, True]
    np.testing.assert_array_equal(got[[0, 1, 3, 4, 5]], normalize(emb)[[3, 19, 7, 0, 3]])


def test_partitions_name_the_file_absolutely(tmp_path, monkeypatch) -> None:
    """Workers of a cluster may run elsewhere: a relative --clips path must not leak."""
    rng = np.random.default_rng(7)
    write(clips_frame(random_emb(rng, 10, 3)), tmp_path / "c.parquet", 5)
    monkeypatch.chdir(tmp_path)
    cat = open_catalogue("c.parquet")
    assert cat.source == "c.parquet"
    assert all(p.path == str(tmp_path / "c.parquet") for p in cat.partitions)


def test_unreadable_partition_is_one_line_error(tmp_path) -> None:
    from contract.errors import ResidualsError

    rng = np.random.default_rng(8)
    path = write(clips_frame(random_emb(rng, 10, 3)), tmp_path / "c.parquet", 5)
    cat = open_catalogue(path)
    path.unlink()
    with pytest.raises(ResidualsError, match="every Dask worker must see the clips file"):
        load_partition(cat.partitions[0], cat.dim)
