"""Which files to ingest, and their ids, creators and metadata.

Rule: files are found under the videos directory (hidden files and side
files such as CSV manifests skipped; anything else with a non-video extension
is a reject), in sorted order of their POSIX path relative to the directory.
Without a manifest a file's id is that relative path, and a clip's creator is
the name of its first-level folder, or the file's stem when it lies directly
in the directory. A manifest is a CSV with ``path`` (relative to the videos
directory) and, for clips, ``creator_id``, plus any optional contract or
provenance column; every value is checked here, before anything is decoded,
and an error names the manifest, its row (0 = first data row) and column.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from contract import schema as S
from contract.errors import ContractError, ResidualsError, first_line
from contract.io import check_provenance

#: Extensions tried as video.
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
                              ".ts", ".flv", ".wmv", ".ogv", ".gif"})
#: Extensions of side files that lie beside videos and are not ingested.
SIDE_EXTENSIONS = frozenset({".csv", ".tsv", ".toml", ".json", ".txt", ".md", ".parquet"})
PATH = "path"
#: Manifest columns allowed for each kind of table (besides ``path``).
MANIFEST_COLUMNS = {
    "clips": (S.CLIP_ID, S.CREATOR_ID, S.CAPTION, S.LICENSE, *S.PROVENANCE),
    "generations": (S.GENERATION_ID, S.ACCOUNT_ID, S.CREATED_AT, S.PROMPT),
}
ID_COLUMN = {"clips": S.CLIP_ID, "generations": S.GENERATION_ID}
_DATES = (S.ACQUIRED_AT, S.OPT_OUT_OBSERVED_AT)


def scan(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Video files under ``root`` (relative POSIX paths, sorted) and unsupported ones."""
    if not root.is_dir():
        raise ResidualsError(f"{root}: videos directory not found")
    videos, unsupported = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        ext = path.suffix.lower()
        if ext in VIDEO_EXTENSIONS:
            videos.append(rel.as_posix())
        elif ext not in SIDE_EXTENSIONS:
            unsupported.append((rel.as_posix(), f"unsupported file type {ext or '(none)'!r}"))
    return videos, unsupported


def default_manifest(rels: list[str], kind: str) -> pl.DataFrame:
    """Ids from paths and, for clips, creators from first-level folders."""
    frame = pl.DataFrame({PATH: rels, ID_COLUMN[kind]: rels}, schema={PATH: pl.String,
                                                                    ID_COLUMN[kind]: pl.String})
    if kind == "clips":
        creators = [r.split("/", 1)[0] if "/" in r else Path(r).stem for r in rels]
        frame = frame.with_columns(pl.Series(S.CREATOR_ID, creators, pl.String))
    return frame


def _fail_at(file: Path, mask: pl.Series, frame: pl.DataFrame, column: str, message: str) -> None:
    bad = mask.fill_null(False).arg_true()
    if len(bad):
        row = int(bad[0])
        value = frame[column][row] if column in frame.columns else None
        shown = f"is {value!r}, " if value is not None else ""
        raise ContractError(file, shown + message, row=row, column=column)


def _read_csv(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise ContractError(path, "manifest file not found")
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except Exception as exc:  # noqa: BLE001 (polars raises several types for unreadable CSV)
        raise ContractError(path, f"is not a readable CSV file ({first_line(exc, 160)})"
                            ) from None
    return frame.with_columns(pl.all().str.strip_chars().replace("", None))


def _typed(frame: pl.DataFrame, file: Path) -> pl.DataFrame:
    """Dates and timestamps parsed; an unparsable value names its row and column."""
    for col in (c for c in _DATES if c in frame.columns):
        parsed = frame[col].str.to_date("%Y-%m-%d", strict=False)
        _fail_at(file, frame[col].is_not_null() & parsed.is_null(), frame, col,
                 "expected a date YYYY-MM-DD")
        frame = frame.with_columns(parsed.alias(col))
    if S.CREATED_AT in frame.columns:
        parsed = frame[S.CREATED_AT].str.to_datetime(strict=False, time_zone="UTC")
        _fail_at(file, frame[S.CREATED_AT].is_not_null() & parsed.is_null(), frame,
                 S.CREATED_AT, "expected an ISO 8601 timestamp")
        frame = frame.with_columns(parsed.alias(S.CREATED_AT))
    return frame


def read_manifest(path: Path, root: Path, kind: str) -> pl.DataFrame:
    """Read and check a manifest CSV for files under ``root``; ids default to paths."""
    frame = _read_csv(path)
    required = [PATH] + ([S.CREATOR_ID] if kind == "clips" else [])
    for col in required:
        if col not in frame.columns:
            raise ContractError(path, f"missing required column {col} (found: "
                                f"{', '.join(frame.columns) or 'none'})", column=col)
    allowed = (PATH, *MANIFEST_COLUMNS[kind])
    for col in frame.columns:
        if col not in allowed:
            raise ContractError(path, f"unknown column for {kind}; expected some of "
                                f"{', '.join(allowed)}", column=col)
    if frame.height == 0:
        raise ContractError(path, "has no rows, expected one row per video file")
    for col in required:
        _fail_at(path, frame[col].is_null(), frame, col, "expected a value")
    rel = frame[PATH].str.replace_all("\\\\", "/")
    _fail_at(path, rel.str.starts_with("/") | rel.str.contains(r"(^|/)\.\.(/|$)"), frame, PATH,
             "expected a path inside the videos directory")
    exists = pl.Series([(root / r).is_file() for r in rel.to_list()])
    _fail_at(path, ~exists, frame, PATH, f"file not found under {root}")
    _fail_at(path, rel.is_duplicated() & ~rel.is_first_distinct(), frame, PATH,
             "listed twice, expected one row per file")
    frame = frame.with_columns(rel.alias(PATH))
    ident = ID_COLUMN[kind]
    frame = frame.with_columns(pl.coalesce(ident, PATH).alias(ident) if ident in frame.columns
                               else pl.col(PATH).alias(ident))
    _fail_at(path, frame[ident].is_duplicated() & ~frame[ident].is_first_distinct(), frame,
             ident, "duplicate id, expected unique ids")
    frame = _typed(frame, path)
    if kind == "clips":
        check_provenance(frame, path)
    return frame
