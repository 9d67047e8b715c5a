"""Validated readers and atomic writers for the contract tables.

Rule: every table that enters Residuals passes through :func:`read_table` (or,
for data streamed in row groups, :func:`validate_frame` per batch), and any
violation raises :class:`~contract.errors.ContractError` naming the file, the
row (0-based, with its id when known), the column, and expected versus found.
Every file Residuals writes goes through :func:`atomic_output`, so a failed
run leaves nothing half-written.

The checks every reader enforces (README, "Data contract"): required columns
present with the right kind; no nulls in required columns; ids unique and
non-empty; embeddings finite, the same length ``d`` in every row and file, with
non-zero norm; every ``clips.creator_id`` in ``creators``; amounts integers
>= 0; the table not empty.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from contract import schema as S
from contract.errors import ContractError, ResidualsError, first_line

_STR_TYPES = (pl.String, pl.Categorical, pl.Enum)


def _kind_ok(kind: str, dtype: pl.DataType) -> bool:
    if kind == S.STR:
        return isinstance(dtype, _STR_TYPES)
    if kind == S.BOOL:
        return dtype == pl.Boolean
    if kind == S.INT:
        return dtype.is_integer()
    if kind == S.FLOAT:
        return dtype.is_float() or dtype.is_integer()
    if kind == S.DATE:
        return dtype == pl.Date or isinstance(dtype, pl.Datetime)
    if kind == S.TIMESTAMP:
        return isinstance(dtype, pl.Datetime) or dtype == pl.Date
    if kind == S.EMB:
        return isinstance(dtype, (pl.Array, pl.List)) and (
            dtype.inner.is_float() or dtype.inner.is_integer()
        )
    raise AssertionError(f"unknown column kind {kind!r}")


_KIND_NAMES = {
    S.STR: "a string", S.BOOL: "a boolean", S.INT: "an integer", S.FLOAT: "a number",
    S.DATE: "a date", S.TIMESTAMP: "a timestamp", S.EMB: "a list of floats",
}


def _first(mask: pl.Series) -> int | None:
    """Index of the first True in a boolean series, or None."""
    idx = mask.fill_null(False).arg_true()
    return int(idx[0]) if len(idx) else None


def _short(value: object, limit: int = 40) -> str:
    """``repr`` of a found value, cut to ``limit`` characters."""
    text = repr(value.to_list() if isinstance(value, pl.Series) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _ident(df: pl.DataFrame, table: S.Table, row: int) -> str | None:
    if not table.key or table.key[0] not in df.columns:
        return None
    value = df[table.key[0]][row]
    return None if value is None or value == "" else f"{table.key[0]} {value!r}"


def open_parquet(path: str | Path, table: S.Table, *, embeddings: bool = True) -> pl.DataFrame:
    """Read a Parquet file, turning I/O and format failures into ContractErrors.

    With ``embeddings=False`` the ``embedding`` column is not read at all, which
    keeps a large catalogue cheap for readers that never use it.
    """
    path = Path(path)
    if not path.exists():
        raise ContractError(path, f"file not found (expected the {table.name} table)")
    if path.is_dir():
        raise ContractError(path, "is a directory, expected a Parquet file")
    try:
        if embeddings:
            return pl.read_parquet(path)
        columns = [c for c in pl.read_parquet_schema(path) if c != S.EMBEDDING]
        return pl.read_parquet(path, columns=columns)
    except Exception as exc:  # polars raises several types for corrupt files
        raise ContractError(path, f"is not a readable Parquet file ({first_line(exc, 160)})"
                            ) from None


def validate_frame(
    df: pl.DataFrame,
    table: S.Table,
    file: str | Path,
    *,
    row_offset: int = 0,
    dim: int | None = None,
    dim_source: str | None = None,
    allow_empty: bool = False,
) -> pl.DataFrame:
    """Check one frame (a whole file, or one batch of it) against ``table``.

    Returns the frame with string-like id columns cast to ``pl.String`` and
    integer columns to ``Int64``. Does not check cross-batch uniqueness when
    called per batch: the caller does that.
    """
    file = str(file)
    missing = [c for c in table.required if c not in df.columns]
    if missing:
        raise ContractError(
            file,
            f"missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (found: {', '.join(df.columns) or 'none'})",
            column=missing[0],
        )
    if df.height == 0 and not allow_empty:
        raise ContractError(file, f"the {table.name} table is empty (0 rows)")

    for col in df.columns:
        kind = table.kind(col)
        if kind is None:
            continue
        dtype = df.schema[col]
        if dtype == pl.Null and col not in table.required:
            continue
        if not _kind_ok(kind, dtype):
            if kind == S.INT and dtype.is_float():
                vals = df[col]
                # NaN == NaN and inf == floor(inf) in polars: test finiteness too.
                bad = _first(vals.is_not_null() & (~vals.is_finite() | (vals != vals.floor())))
                if bad is not None:
                    raise ContractError(
                        file, f"is {vals[bad]!r}, expected an integer number of minor units",
                        row=row_offset + bad, column=col, ident=_ident(df, table, bad),
                    )
            # Name the first value as an example of what was found.
            first = _first(df[col].is_not_null())
            example = "" if first is None else f", found {_short(df[col][first])}"
            raise ContractError(
                file, f"has type {dtype}, expected {_KIND_NAMES[kind]}{example}",
                row=None if first is None else row_offset + first, column=col,
                ident=None if first is None else _ident(df, table, first),
            )
        if col in table.required:
            bad = _first(df[col].is_null())
            if bad is not None:
                raise ContractError(
                    file, "is null, expected a value", row=row_offset + bad, column=col,
                    ident=_ident(df, table, bad),
                )

    casts = [
        pl.col(c).cast(pl.String) for c in df.columns
        if table.kind(c) == S.STR and df.schema[c] != pl.String
    ] + [pl.col(c).cast(pl.Int64) for c in df.columns if table.kind(c) == S.INT]
    if casts:
        df = df.with_columns(casts)
    check_text_limits(df, table, file, row_offset=row_offset)

    _check_keys(df, table, file, row_offset)
    for col in table.rules.non_negative:
        bad = _first(df[col] < 0) if col in df.columns else None
        if bad is not None:
            raise ContractError(file, f"is {df[col][bad]}, expected an amount >= 0",
                                row=row_offset + bad, column=col,
                                ident=_ident(df, table, bad))

    if table.rules.provenance:
        check_provenance(df, file, row_offset=row_offset)
    if S.EMBEDDING in table.required and df.height:
        embedding_matrix(df, file, table, row_offset=row_offset, dim=dim, dim_source=dim_source)
    return df


def _check_keys(df: pl.DataFrame, table: S.Table, file: str, row_offset: int) -> None:
    """Ids are non-empty and unique: the key, or with a segment column present the key
    plus the segment, with one creator per key."""
    for col in table.key:
        bad = _first(df[col].str.strip_chars() == "")
        if bad is not None:
            raise ContractError(file, "is empty, expected a non-empty id",
                                row=row_offset + bad, column=col)
    segments = table.rules.segments
    if segments is not None and segments[1] in df.columns:
        _check_segments(df, *segments, file, row_offset)
    elif table.key:
        keycols = list(table.key)
        key = df.select(pl.struct(keycols)).to_series() if len(keycols) > 1 else df[keycols[0]]
        bad = _first(~key.is_first_distinct())
        if bad is not None:
            same = pl.all_horizontal([pl.col(c) == df[c][bad] for c in keycols])
            first = _first(df.select(same).to_series())
            shown = key[bad] if len(keycols) == 1 else tuple(key[bad].values())
            raise ContractError(
                file, f"duplicate id {shown!r} (first at row {row_offset + first}), "
                "expected unique ids", row=row_offset + bad, column=keycols[-1],
            )


def _check_segments(df: pl.DataFrame, key: str, segment: str, file: str,
                    row_offset: int) -> None:
    """(key, segment) is unique and every row of a key names one creator."""
    bad = _first(~df.select(pl.struct(key, segment)).to_series().is_first_distinct())
    if bad is not None:
        raise ContractError(file, f"segment {df[segment][bad]!r} of clip "
                            f"{df[key][bad]!r} appears twice, expected unique segments",
                            row=row_offset + bad, column=segment)
    creators_per_key = df.group_by(key).agg(pl.col(S.CREATOR_ID).n_unique().alias("n"))
    multi = creators_per_key.filter(pl.col("n") > 1)
    if multi.height:
        clip = multi[key].sort()[0]
        bad = _first(df[key] == clip)
        raise ContractError(file, f"segments of clip {clip!r} name different creators, "
                            "expected one creator per clip", row=row_offset + (bad or 0),
                            column=S.CREATOR_ID)


def check_text_limits(df: pl.DataFrame, table: S.Table, file: str | Path, *,
                      row_offset: int = 0) -> None:
    """Stored text columns (:data:`contract.schema.TEXT_LIMITS`) hold at most their
    limit of characters and no NUL, so SQLite and PostgreSQL accept the same rows."""
    for col, limit in S.TEXT_LIMITS.items():
        if table.kind(col) != S.STR or col not in df.columns or df.schema[col] != pl.String:
            continue
        values = df[col]
        bad = _first(values.str.len_chars() > limit)
        if bad is not None:
            raise ContractError(file, f"has {values.str.len_chars()[bad]} characters, expected "
                                f"at most {limit}", row=row_offset + bad, column=col)
        bad = _first(values.str.contains("\x00", literal=True))
        if bad is not None:
            raise ContractError(file, f"contains a NUL character ({_short(values[bad])}), "
                                "expected text without control character 0",
                                row=row_offset + bad, column=col)


def url_domain(url: str) -> str | None:
    """The host of an http(s) URL, lower case, without a leading ``www.``; None if it does not parse."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host or "." not in host.strip("."):
        return None
    return host.removeprefix("www.")


def _unparsed_urls(df: pl.DataFrame) -> list[str]:
    """The distinct ``source_url`` values that :func:`url_domain` cannot parse."""
    if S.SOURCE_URL not in df.columns or df.schema[S.SOURCE_URL] != pl.String:
        return []
    return [u for u in df[S.SOURCE_URL].drop_nulls().unique().to_list() if url_domain(u) is None]


_LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"  # a BCP 47 tag such as "en" or "pt-BR"


def check_provenance(df: pl.DataFrame, file: str | Path, *, row_offset: int = 0,
                     today: date | None = None) -> None:
    """The provenance columns of ``clips`` that are present hold allowed values.

    ``source_type`` and ``opt_out_signal`` are one of their listed values,
    ``source_url`` an http(s) URL with a host, ``language`` a BCP 47 tag,
    ``acquired_at`` and ``opt_out_observed_at`` not after ``today``, and an
    ``opt_out_observed_at`` only beside an ``opt_out_signal``. Nulls are allowed.
    """
    today = today or date.today()
    checks: list[tuple[str, pl.Expr, str]] = [
        (S.SOURCE_TYPE, ~pl.col(S.SOURCE_TYPE).is_in(S.SOURCE_TYPES),
         f"expected one of {', '.join(S.SOURCE_TYPES)}"),
        (S.OPT_OUT_SIGNAL, ~pl.col(S.OPT_OUT_SIGNAL).is_in(S.OPT_OUT_SIGNALS),
         f"expected one of {', '.join(S.OPT_OUT_SIGNALS)}"),
        (S.LANGUAGE, ~pl.col(S.LANGUAGE).str.contains(_LANGUAGE),
         "expected a language tag such as 'en' or 'pt-BR'"),
        (S.SOURCE_URL, pl.col(S.SOURCE_URL).is_in(_unparsed_urls(df)),
         "expected an http(s) URL with a host name"),
        (S.ACQUIRED_AT, pl.col(S.ACQUIRED_AT).cast(pl.Date) > today,
         f"is in the future, expected a date on or before {today}"),
        (S.OPT_OUT_OBSERVED_AT, pl.col(S.OPT_OUT_OBSERVED_AT).cast(pl.Date) > today,
         f"is in the future, expected a date on or before {today}"),
    ]
    for col, bad_expr, expected in checks:
        if col not in df.columns or df.schema[col] == pl.Null:
            continue
        present = df[col].is_not_null()
        bad = _first(present & df.select(bad_expr.fill_null(True)).to_series())
        if bad is not None:
            shown = "" if "future" in expected else f"is {_short(df[col][bad])}, "
            raise ContractError(file, f"{shown}{expected}", row=row_offset + bad, column=col,
                                ident=_ident(df, S.CLIPS, bad))
    if S.OPT_OUT_OBSERVED_AT in df.columns:
        orphan = df[S.OPT_OUT_OBSERVED_AT].is_not_null()
        if S.OPT_OUT_SIGNAL in df.columns:
            orphan &= df[S.OPT_OUT_SIGNAL].is_null()
        bad = _first(orphan)
        if bad is not None:
            raise ContractError(file, "has a date but no opt_out_signal, expected both or "
                                "neither", row=row_offset + bad, column=S.OPT_OUT_OBSERVED_AT)


def embedding_matrix(
    df: pl.DataFrame,
    file: str | Path,
    table: S.Table,
    *,
    row_offset: int = 0,
    dim: int | None = None,
    dim_source: str | None = None,
) -> np.ndarray:
    """The ``embedding`` column as a C-contiguous float32 ``(n, d)`` matrix, validated.

    Checks every row has ``d`` values (``dim`` if given, else the first row's),
    no value is null, NaN or infinite, and no row has zero norm.
    """
    file = str(file)
    col = df[S.EMBEDDING]
    if isinstance(col.dtype, pl.Array):
        d = col.dtype.size
        if dim is not None and d != dim:
            raise ContractError(
                file, f"has {d} values, expected {dim}"
                + (f" (the dimension of {dim_source})" if dim_source else ""),
                row=row_offset, column=S.EMBEDDING, ident=_ident(df, table, 0))
        flat = col.explode()
    else:
        lengths = col.list.len()
        d = dim if dim is not None else int(lengths[0])
        bad = _first(lengths != d)
        if bad is not None:
            expected = f"expected {d}" + (
                f" (the dimension of {dim_source})" if dim is not None and dim_source
                else " (the length of row %d)" % row_offset if dim is None else "")
            raise ContractError(file, f"has {lengths[bad]} values, {expected}",
                                row=row_offset + bad, column=S.EMBEDDING,
                                ident=_ident(df, table, bad))
        flat = col.explode()
    if d == 0:
        raise ContractError(file, "has 0 values, expected a non-empty embedding",
                            row=row_offset, column=S.EMBEDDING, ident=_ident(df, table, 0))
    mat = flat.cast(pl.Float32).to_numpy().reshape(df.height, d)
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    finite = np.isfinite(mat)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise ContractError(file, f"value {c} is {float(mat[r, c])}, expected a finite number",
                            row=row_offset + int(r), column=S.EMBEDDING,
                            ident=_ident(df, table, int(r)))
    norms = np.einsum("ij,ij->i", mat, mat, dtype=np.float64)
    zero = np.flatnonzero(norms == 0.0)
    if len(zero):
        r = int(zero[0])
        raise ContractError(file, "has zero norm, expected a non-zero vector",
                            row=row_offset + r, column=S.EMBEDDING, ident=_ident(df, table, r))
    return mat


def read_table(
    path: str | Path,
    table: S.Table,
    *,
    dim: int | None = None,
    dim_source: str | None = None,
    embeddings: bool = True,
) -> pl.DataFrame:
    """Read and validate one contract table from a Parquet file.

    ``embeddings=False`` reads and validates every column but ``embedding``.
    """
    df = open_parquet(path, table, embeddings=embeddings)
    if not embeddings and S.EMBEDDING in table.required:
        required = {k: v for k, v in table.required.items() if k != S.EMBEDDING}
        table = S.Table(table.name, required=required, optional=table.optional, key=table.key)
    return validate_frame(df, table, path, dim=dim, dim_source=dim_source)


def embedding_dim(df: pl.DataFrame) -> int:
    """``d`` of a validated frame's embedding column."""
    dtype = df.schema[S.EMBEDDING]
    if isinstance(dtype, pl.Array):
        return dtype.size
    return int(df[S.EMBEDDING].list.len()[0])


def parquet_embedding_dim(path: str | Path) -> int | None:
    """``d`` from a Parquet file's first row without reading the whole file."""
    if not Path(path).is_file():
        raise ContractError(path, "file not found, expected a Parquet file")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise ContractError(path, f"is not a readable Parquet file ({first_line(exc, 160)})"
                            ) from None
    if S.EMBEDDING not in pf.schema_arrow.names:
        raise ContractError(path, f"missing required column {S.EMBEDDING} (found: "
                            f"{', '.join(pf.schema_arrow.names) or 'none'})", column=S.EMBEDDING)
    if pf.metadata.num_rows == 0:
        return None
    first = next(pf.iter_batches(batch_size=1, columns=[S.EMBEDDING]))
    value = first.column(0)[0]
    if not value.is_valid:
        raise ContractError(path, "is null, expected a value", row=0, column=S.EMBEDDING)
    return len(value)


def check_creators_known(frame: pl.DataFrame, creators: pl.DataFrame, file: str,
                         table: S.Table = S.CLIPS) -> None:
    """Every ``creator_id`` of ``frame`` (clips, attributions) must exist in ``creators``."""
    known = creators[S.CREATOR_ID]
    bad = _first(~frame[S.CREATOR_ID].is_in(known.implode()))
    if bad is not None:
        raise ContractError(
            file, f"creator {frame[S.CREATOR_ID][bad]!r} is not in creators.parquet",
            row=bad, column=S.CREATOR_ID, ident=_ident(frame, table, bad))


@dataclass(frozen=True)
class Dataset:
    """The validated tables of one data directory (``attributions`` may be absent)."""

    root: Path
    creators: pl.DataFrame
    clips: pl.DataFrame
    generations: pl.DataFrame
    accounts: pl.DataFrame
    attributions: pl.DataFrame | None

    @property
    def dim(self) -> int:
        return embedding_dim(self.clips)

    def path(self, table: S.Table) -> Path:
        return self.root / table.filename


def load_dataset(root: str | Path, *, generations: bool = True,
                 embeddings: bool = True) -> Dataset:
    """Read and cross-check every contract table in a data directory.

    ``embeddings=False`` skips the embedding columns (and so the check that
    clips and generations share ``d``) for readers that only allocate money.
    """
    root = Path(root)
    if not root.is_dir():
        raise ResidualsError(f"{root}: data directory not found")
    creators = read_table(root / S.CREATORS.filename, S.CREATORS)
    clips_path = root / S.CLIPS.filename
    clips = read_table(clips_path, S.CLIPS, embeddings=embeddings)
    check_creators_known(clips, creators, str(clips_path))
    dim = embedding_dim(clips) if embeddings else None
    gens = (
        read_table(root / S.GENERATIONS.filename, S.GENERATIONS, dim=dim,
                   dim_source=str(clips_path), embeddings=embeddings)
        if generations else pl.DataFrame()
    )
    accounts = read_table(root / S.ACCOUNTS.filename, S.ACCOUNTS)
    attr_path = root / S.ATTRIBUTIONS.filename
    attributions = read_table(attr_path, S.ATTRIBUTIONS) if attr_path.exists() else None
    if attributions is not None:
        check_creators_known(attributions, creators, str(attr_path), S.ATTRIBUTIONS)
        check_attribution_weights(attributions, str(attr_path))
        check_attributions_match(attributions, attr_path, clips, clips_path,
                                 gens if generations else None, root / S.GENERATIONS.filename)
    return Dataset(root, creators, clips, gens, accounts, attributions)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_hashes(root: str | Path) -> dict[str, str]:
    """sha256 of each contract table present in a data directory, by file name.

    A batch manifest records these; comparing them later tells whether a
    period's inputs are still the ones it was posted from.
    """
    root = Path(root)
    tables = (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS, S.ATTRIBUTIONS)
    return {t.filename: file_sha256(root / t.filename) for t in tables
            if (root / t.filename).is_file()}


ATTRIBUTION_SOURCES_KEY = b"residuals.attribution_sources"
"""Parquet metadata key of an attributions file: JSON ``{file name: sha256}`` of the
clips and generations it was computed from."""
RECOMPUTE_HINT = ("recompute it with `residuals attribute --clips CLIPS --generations "
                  "GENERATIONS --out ATTRIBUTIONS`, or remove it to compute attributions "
                  "in `residuals batch run`")


def attribution_sources(clips: str | Path, generations: str | Path) -> dict[str, str]:
    """sha256 of the clips and generations files, keyed by their contract file names:
    what an attributions file records it was computed from."""
    return {S.CLIPS.filename: file_sha256(clips), S.GENERATIONS.filename: file_sha256(generations)}


def read_attribution_sources(path: str | Path) -> dict[str, str] | None:
    """The sources an attributions file records, or None when it records none."""
    try:
        meta = pq.read_schema(path).metadata or {}
        raw = meta.get(ATTRIBUTION_SOURCES_KEY)
        value = json.loads(raw) if raw is not None else None
    except (OSError, ValueError, pa.ArrowException):
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return None
    return value


def check_attributions_match(attr: pl.DataFrame, attr_path: Path, clips: pl.DataFrame,
                             clips_path: Path, generations: pl.DataFrame | None,
                             generations_path: Path) -> None:
    """An attributions file belongs to its data directory: it records the hashes of these
    clips and generations files, each row's creator owns its clip, and each generation
    exists (when ``generations`` is given). Files that record no sources are refused."""
    recorded = read_attribution_sources(attr_path)
    if recorded is None:
        raise ContractError(attr_path, "records no hashes of the clips and generations it was "
                            f"computed from (written by an older version): {RECOMPUTE_HINT}")
    for path in (clips_path, generations_path):
        want = recorded.get(path.name)
        if want is None or (path.is_file() and file_sha256(path) != want):
            raise ContractError(attr_path, f"was computed from another {path.name} (sha256 "
                                f"{str(want)[:12]}, not the {path} here): {RECOMPUTE_HINT}")
    owners = clips.select(S.CLIP_ID, pl.col(S.CREATOR_ID).alias("owner")).unique(S.CLIP_ID)
    joined = attr.select(S.CLIP_ID, S.CREATOR_ID).join(owners, on=S.CLIP_ID, how="left",
                                                        maintain_order="left")
    bad = _first(joined["owner"].is_null())
    if bad is not None:
        raise ContractError(attr_path, f"clip {joined[S.CLIP_ID][bad]!r} is not in "
                            f"{clips_path.name}", row=bad, column=S.CLIP_ID)
    bad = _first(joined["owner"] != joined[S.CREATOR_ID])
    if bad is not None:
        raise ContractError(attr_path, f"creator {joined[S.CREATOR_ID][bad]!r} does not own "
                            f"clip {joined[S.CLIP_ID][bad]!r} ({clips_path.name} names "
                            f"{joined['owner'][bad]!r})", row=bad, column=S.CREATOR_ID)
    if generations is not None and S.GENERATION_ID in generations.columns:
        bad = _first(~attr[S.GENERATION_ID].is_in(generations[S.GENERATION_ID].implode()))
        if bad is not None:
            raise ContractError(attr_path, f"generation {attr[S.GENERATION_ID][bad]!r} is not "
                                f"in {generations_path.name}", row=bad,
                                column=S.GENERATION_ID)


def check_attribution_weights(attr: pl.DataFrame, file: str, tol: float = 1e-6) -> None:
    """Weights are >= 0 and each generation's sum to 1 or to 0, never more; a
    ``confidence``, when present, is in [0, 1]."""
    bad = _first(attr[S.WEIGHT] < 0)
    if bad is not None:
        raise ContractError(file, f"is {attr[S.WEIGHT][bad]}, expected a weight >= 0",
                            row=bad, column=S.WEIGHT)
    sums = attr.group_by(S.GENERATION_ID).agg(pl.col(S.WEIGHT).sum().alias("s"))
    off = sums.filter(((pl.col("s") - 1).abs() > tol) & (pl.col("s").abs() > tol)).sort(
        S.GENERATION_ID)
    if off.height:
        g = off[S.GENERATION_ID][0]
        raise ContractError(file, f"weights sum to {off['s'][0]:.6g}, expected 1 or 0",
                            ident=f"generation_id {g!r}", column=S.WEIGHT)
    if S.CONFIDENCE in attr.columns:  # optional: files written before it stay valid
        bad = _first(~attr[S.CONFIDENCE].is_between(0.0, 1.0).fill_null(False))
        if bad is not None:
            raise ContractError(file, f"is {attr[S.CONFIDENCE][bad]}, expected a confidence "
                                "in [0, 1]", row=bad, column=S.CONFIDENCE)


def umask() -> int:
    """The process's umask, read without changing it where the system shows it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore it
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    The file gets the permissions of any new file (``0666`` less the umask),
    not the private ``0600`` of a temporary file.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ResidualsError(f"{path}: cannot write, directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ResidualsError(f"{path}: cannot write, directory {parent} is not writable")
    if path.is_dir():
        raise ResidualsError(f"{path}: cannot write, it is a directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    tmp_path = Path(tmp)
    try:
        try:
            os.fchmod(fd, 0o666 & ~umask())
        finally:
            os.close(fd)
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection)."""
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


def spreadsheet_safe(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with every text cell that a spreadsheet would run as a formula made inert.

    A string starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return
    gets a leading ``'`` (OWASP's advice), unless it is a plain number such as
    ``-1.50``; numeric columns are untouched. Every CSV meant to be opened by a
    person is written from this (:func:`write_csv_for_people`).
    """
    def safe(col: str) -> pl.Expr:
        c = pl.col(col)
        risky = pl.any_horizontal([c.str.starts_with(p) for p in FORMULA_PREFIXES])
        return (pl.when(risky & ~c.str.contains(_NUMBER)).then(pl.lit("'") + c).otherwise(c)
                .alias(col))

    return df.with_columns([safe(c) for c, t in df.schema.items() if t == pl.String])


def write_csv_for_people(df: pl.DataFrame, path: str | Path) -> None:
    """Write ``df`` as CSV atomically, with formulas neutralised (:func:`spreadsheet_safe`)."""
    with atomic_output(path) as tmp:
        spreadsheet_safe(df).write_csv(tmp)


def write_parquet(df: pl.DataFrame, path: str | Path) -> None:
    """Write a frame atomically (temporary name, then rename)."""
    with atomic_output(path) as tmp:
        df.write_parquet(tmp, statistics=True)
