"""The clip catalogue: ids in memory, embeddings read partition by partition.

Rule: a catalogue holds every clip's ids (small) but never all embeddings at
once. Embeddings stay in their Parquet file and are read one partition (a run
of consecutive row groups) at a time, by whichever process scores that
partition; a catalogue built from an in-memory frame slices its matrix
instead. Every batch is validated with :func:`contract.io.validate_frame`
when the catalogue is opened; ids (or ``(clip_id, segment_id)`` pairs) are
checked unique across batches. Catalogue index ``i`` is the position of a
row in ``(clip_id, segment_id)`` order, the tie-break order of the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from attribution.search import normalize
from contract import schema as S
from contract.errors import ContractError, ResidualsError, first_line
from contract.io import embedding_matrix, validate_frame

#: Target rows per partition when grouping row groups.
PARTITION_ROWS = 131_072

#: Rows validated at a time when a catalogue is opened (bounds its memory).
VALIDATE_ROWS = 16_384

#: Parquet reads are streamed through a buffer of this size, without
#: pre-buffering whole column chunks (pre-buffered ranges stay cached).
READ_BUFFER = 1 << 20


@dataclass(frozen=True)
class Partition:
    """One unit of work: a run of catalogue rows and where their embeddings live.

    Attributes
    ----------
    keys : int64 (p,)
        Catalogue index of each row, in stored order.
    path : str or None
        Parquet file holding the rows (``None`` when ``matrix`` holds them).
    row_groups : tuple of int
        Row groups of ``path`` making up this partition.
    matrix : float32 (p, d) or None
        The raw embeddings, for catalogues built from a frame.
    groups : int64 (p,) or None
        Clip number of each row, in stored order, when the catalogue has segments.
    """

    keys: np.ndarray
    path: str | None = None
    row_groups: tuple[int, ...] = ()
    matrix: np.ndarray | None = None
    groups: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(len(self.keys))


@dataclass(frozen=True)
class Catalogue:
    """Validated clip ids in catalogue order plus the partitions of their embeddings.

    Attributes
    ----------
    ids : pl.DataFrame
        ``clip_id``, ``creator_id`` (and ``segment_id`` when present), row ``i``
        being catalogue index ``i``.
    dim : int
        Embedding length.
    partitions : tuple of Partition
        Disjoint, covering all rows.
    source : str
        The file (or name) the clips came from, for error messages.
    """

    ids: pl.DataFrame
    dim: int
    partitions: tuple[Partition, ...]
    source: str

    @property
    def segments(self) -> bool:
        return S.SEGMENT_ID in self.ids.columns

    @property
    def n_rows(self) -> int:
        return self.ids.height

    @property
    def n_clips(self) -> int:
        return self.ids[S.CLIP_ID].n_unique() if self.segments else self.ids.height


def _embeddings_from_arrow(column: pa.ChunkedArray | pa.Array, d: int) -> np.ndarray:
    """A (list or fixed-size list) embedding column as a float32 (n, d) matrix, no row loop."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = arr.flatten()
    values = flat.to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(values.reshape(len(arr), d), dtype=np.float32)


def load_partition(part: Partition, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read one partition: unit-norm embeddings sorted by catalogue index.

    Returns
    -------
    emb : float32 (p, d)
        Unit-norm rows in ascending catalogue index.
    keys : int64 (p,)
        Their catalogue indices (ascending).
    groups : int64 (p,) or None
        Their clip numbers (non-decreasing) when the catalogue has segments.
    """
    if part.matrix is not None:
        raw = part.matrix
    else:
        try:
            pf = pq.ParquetFile(part.path, pre_buffer=False, buffer_size=READ_BUFFER)
            table = pf.read_row_groups(list(part.row_groups), columns=[S.EMBEDDING])
        except OSError as exc:  # e.g. a cluster worker that does not see the file
            raise ResidualsError(
                f"{part.path}: cannot read row groups {list(part.row_groups)} "
                f"({first_line(exc, 160)}); "
                "every Dask worker must see the clips file at this path") from None
        raw = _embeddings_from_arrow(table.column(S.EMBEDDING), dim)
    emb = normalize(raw)
    del raw
    if np.all(part.keys[1:] > part.keys[:-1]):  # stored in catalogue order already
        return emb, part.keys, part.groups
    order = np.argsort(part.keys, kind="stable")
    groups = part.groups[order] if part.groups is not None else None
    return emb[order], part.keys[order], groups


def _canonical(ids: pl.DataFrame, file: str) -> tuple[pl.DataFrame, np.ndarray, np.ndarray | None]:
    """Sort ids into catalogue order, check uniqueness across the whole file.

    ``ids`` is in stored order. Returns the sorted ids, the catalogue index of
    each stored row, and the clip number of each stored row (segments only).
    Sorting an index and comparing neighbours keeps this to a few copies of
    the id columns, whatever the number of clips.
    """
    segments = S.SEGMENT_ID in ids.columns
    keycols = [S.CLIP_ID, S.SEGMENT_ID] if segments else [S.CLIP_ID]
    order = ids.select(pl.arg_sort_by(keycols).alias("o"))["o"].to_numpy().astype(np.int64)
    ordered = ids[order]
    clip = ordered[S.CLIP_ID]
    same_clip = np.r_[False, (clip[1:] == clip[:-1]).to_numpy()]
    dup = same_clip
    if segments:
        seg = ordered[S.SEGMENT_ID]
        dup = same_clip & np.r_[False, (seg[1:] == seg[:-1]).to_numpy()]
    if dup.any():
        at = int(np.flatnonzero(dup)[0])
        what = (f"segment {ordered[S.SEGMENT_ID][at]!r} of clip {clip[at]!r}"
                if segments else f"duplicate id {clip[at]!r}")
        row = int(max(order[at], order[at - 1]))
        raise ContractError(file, f"{what} appears twice, expected unique ids",
                            row=row, column=keycols[-1])
    keys = np.empty(len(order), dtype=np.int64)
    keys[order] = np.arange(len(order), dtype=np.int64)
    groups = None
    if segments:
        creator = ordered[S.CREATOR_ID]
        differs = same_clip & np.r_[False, (creator[1:] != creator[:-1]).to_numpy()]
        if differs.any():
            at = int(np.flatnonzero(differs)[0])
            first = int(np.flatnonzero(clip == clip[at])[0])
            row = int(order[first:at + 1].min())
            raise ContractError(file, f"segments of clip {clip[at]!r} name different creators, "
                                "expected one creator per clip", row=row, column=S.CREATOR_ID)
        clip_no = np.cumsum(~same_clip) - 1
        groups = clip_no[keys]
    return ordered, keys, groups


def _id_columns(df: pl.DataFrame) -> list[str]:
    cols = [S.CLIP_ID, S.CREATOR_ID]
    return cols + [S.SEGMENT_ID] if S.SEGMENT_ID in df.columns else cols


def open_catalogue(
    path: str | Path,
    *,
    partition_rows: int = PARTITION_ROWS,
    dim: int | None = None,
    dim_source: str | None = None,
) -> Catalogue:
    """Validate a clips Parquet file batch by batch and plan its partitions.

    Only one row group's data is in memory at a time; what is kept is the id
    columns. Partitions are runs of consecutive row groups of about
    ``partition_rows`` rows (a row group is never split).
    """
    path = Path(path)
    file = str(path)
    if not path.exists():
        raise ContractError(path, "file not found (expected the clips table)")
    if path.is_dir():
        raise ContractError(path, "is a directory, expected a Parquet file")
    try:
        pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise ContractError(path, f"is not a readable Parquet file ({first_line(exc, 160)})"
                            ) from None
    meta = pf.metadata
    if meta.num_rows == 0:
        raise ContractError(file, "the clips table is empty (0 rows)")
    id_frames: list[pl.DataFrame] = []
    offset = 0
    for batch in pf.iter_batches(batch_size=VALIDATE_ROWS):
        df = pl.from_arrow(batch)
        assert isinstance(df, pl.DataFrame)
        df = validate_frame(df, S.CLIPS, file, row_offset=offset, dim=dim,
                            dim_source=dim_source)
        if dim is None:
            dim = _dim_of(df)
            dim_source = file
        id_frames.append(df.select(_id_columns(df)))
        offset += df.height
        del df
    ids = pl.concat(id_frames, how="vertical_relaxed")
    del id_frames
    ordered, keys, groups = _canonical(ids, file)
    del ids
    resolved = str(path.resolve())  # workers elsewhere must find the same file
    parts: list[Partition] = []
    run: list[int] = []
    run_start = run_rows = start = 0
    for rg in range(meta.num_row_groups):
        n = meta.row_group(rg).num_rows
        if n == 0:
            continue
        if run and run_rows + n > partition_rows:
            parts.append(_file_partition(resolved, run, keys, groups, run_start, start))
            run, run_start, run_rows = [], start, 0
        run.append(rg)
        run_rows += n
        start += n
    if run:
        parts.append(_file_partition(resolved, run, keys, groups, run_start, start))
    assert dim is not None
    return Catalogue(ordered, dim, tuple(parts), file)


def _file_partition(file: str, run: list[int], keys: np.ndarray, groups: np.ndarray | None,
                    lo: int, hi: int) -> Partition:
    return Partition(keys[lo:hi].copy(), path=file, row_groups=tuple(run),
                     groups=None if groups is None else groups[lo:hi].copy())


def _dim_of(df: pl.DataFrame) -> int:
    dtype = df.schema[S.EMBEDDING]
    if isinstance(dtype, pl.Array):
        return int(dtype.size)
    return int(df[S.EMBEDDING].list.len()[0])


def catalogue_from_frame(
    clips: pl.DataFrame,
    *,
    source: str = "clips",
    partition_rows: int = PARTITION_ROWS,
    dim: int | None = None,
) -> Catalogue:
    """A catalogue over an in-memory clips frame (validated here), partitioned by rows."""
    clips = validate_frame(clips, S.CLIPS, source, dim=dim)
    matrix = embedding_matrix(clips, source, S.CLIPS, dim=dim)
    ordered, keys, groups = _canonical(clips.select(_id_columns(clips)), source)
    parts = tuple(
        Partition(keys[lo:lo + partition_rows].copy(), matrix=matrix[lo:lo + partition_rows],
                  groups=None if groups is None else groups[lo:lo + partition_rows].copy())
        for lo in range(0, len(keys), partition_rows)
    )
    return Catalogue(ordered, matrix.shape[1], parts, source)


def gather(part: Partition, dim: int, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm embeddings of the catalogue indices in ``wanted`` that lie in ``part``.

    Returns ``(positions, vectors)``: positions into ``wanted`` (flat) and the
    matching (m, d) float32 rows. Used for the second pass of methods that
    need candidate embeddings.
    """
    emb, keys, _ = load_partition(part, dim)
    flat = wanted.ravel()
    pos = np.searchsorted(keys, flat)
    pos_c = np.minimum(pos, len(keys) - 1)
    hit = (flat >= 0) & (keys[pos_c] == flat)
    where = np.flatnonzero(hit)
    return where, emb[pos_c[where]]
