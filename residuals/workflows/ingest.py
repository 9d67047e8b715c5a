"""The ingest flow: video files (and a manifest) to a ``clips`` or ``generations`` table.

Rule: nothing is written until every file has been decoded and the table has
passed the data contract; then the rejects report and the table are each
written atomically, the table with fixed Parquet settings so that the same
files give the same bytes.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from contract import schema as S
from contract.errors import ResidualsError
from contract.io import atomic_output, validate_frame
from ingest import manifest as M
from ingest.encoders import load_encoder
from ingest.pipeline import FileResult, Item, ProgressFn, Settings, run

KINDS = ("clips", "generations")
#: Rows per row group of written tables (fixed: same bytes everywhere).
ROW_GROUP_SIZE = 65_536


@dataclass(frozen=True)
class IngestResult:
    """What one ingest run wrote and what it turned away."""

    out: Path
    rejects_path: Path
    kind: str
    encoder: str
    dim: int
    files: int
    rows: int
    shots: int
    frames: int
    rejects: list[tuple[str, str]] = field(default_factory=list)


def rejects_path(out: Path) -> Path:
    """Where the rejects report of ``out`` goes: ``<stem>.rejects.csv`` beside it."""
    return out.with_name(out.stem + ".rejects.csv")


def _files(videos: Path, manifest: Path | None, kind: str
           ) -> tuple[pl.DataFrame, list[tuple[str, str]]]:
    if manifest is not None:
        return M.read_manifest(manifest, videos, kind).sort(M.PATH), []
    rels, unsupported = M.scan(videos)
    if not rels and not unsupported:
        raise ResidualsError(f"{videos}: no video files found (extensions: "
                             f"{', '.join(sorted(M.VIDEO_EXTENSIONS))})")
    return M.default_manifest(rels, kind), unsupported


def _pooled(r: FileResult) -> np.ndarray:
    """A video's vector: its unit shot vectors averaged, weighted by shot length."""
    norms = np.linalg.norm(r.vectors, axis=1, keepdims=True)
    unit = np.divide(r.vectors, norms, out=np.zeros_like(r.vectors), where=norms > 0)
    w = np.maximum(r.t_end - r.t_start, 1e-6)
    return (w @ unit / w.sum()).astype(np.float32)


def build_table(meta: pl.DataFrame, good: list[FileResult], kind: str) -> pl.DataFrame:
    """Contract rows: one per shot (clips, as segments) or one per video (generations)."""
    ident = M.ID_COLUMN[kind]
    paths = [r.rel for r in good]
    if kind == "clips":
        n = np.array([len(r.vectors) for r in good])
        base = pl.DataFrame({
            M.PATH: np.repeat(np.array(paths, dtype=object), n).tolist(),
            S.SEGMENT_ID: [f"shot-{j:03d}" for r in good for j in range(len(r.vectors))],
            S.T_START: np.concatenate([r.t_start for r in good]),
            S.T_END: np.concatenate([r.t_end for r in good]),
            S.DURATION_S: np.repeat([r.duration_s for r in good], n),
        }, schema_overrides={M.PATH: pl.String})
        mat = np.concatenate([r.vectors for r in good])
    else:
        base = pl.DataFrame({M.PATH: paths}, schema={M.PATH: pl.String})
        mat = np.stack([_pooled(r) for r in good])
    table = base.join(meta, on=M.PATH, how="left", maintain_order="left")
    emb = pl.Series(S.EMBEDDING, mat.astype(np.float32)).cast(pl.Array(pl.Float32, mat.shape[1]))
    first = [ident, S.CREATOR_ID] if kind == "clips" else [ident]
    rest = [c for c in table.columns if c not in (*first, M.PATH)]
    return table.with_columns(emb).select(*first, *rest, S.EMBEDDING)


def _write(table: pl.DataFrame, out: Path, rejects: list[tuple[str, str]]) -> Path:
    import pyarrow.parquet as pq

    report = rejects_path(out)
    with atomic_output(report) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([M.PATH, S.REASON])
        writer.writerows(sorted(rejects))
    with atomic_output(out) as tmp:
        pq.write_table(table.to_arrow(), tmp, row_group_size=ROW_GROUP_SIZE,
                       compression="zstd", write_statistics=True)
    return report


def ingest(videos: Path, out: Path, *, manifest: Path | None = None, kind: str = "clips",
           encoder: str = "builtin", scheduler: str | None = None, workers: int | None = None,
           strict: bool = False, settings: Settings | None = None,
           progress: ProgressFn | None = None) -> IngestResult:
    """Decode, cut and encode the videos under ``videos``; write the ``kind`` table to ``out``.

    Ids and creators come from ``manifest`` (a CSV) or from the paths (see
    :mod:`ingest.manifest`). A file that cannot be decoded is listed in the
    rejects report beside ``out`` and skipped; with ``strict=True`` any
    reject is an error and nothing is written.
    """
    if kind not in KINDS:
        raise ResidualsError(f"kind={kind!r}: expected one of {', '.join(KINDS)}")
    videos, out = Path(videos), Path(out)
    enc = load_encoder(encoder)
    meta, rejects = _files(videos, manifest, kind)
    captions = (meta[S.CAPTION].to_list() if S.CAPTION in meta.columns
                else [None] * meta.height)
    items = [Item(rel, cap) for rel, cap in zip(meta[M.PATH].to_list(), captions, strict=True)]
    results = run(videos, items, enc, settings or Settings(), scheduler=scheduler,
                  workers=workers, progress=progress)
    good = [r for r in results if r.reason is None]
    rejects = sorted(rejects + [(r.rel, r.reason) for r in results if r.reason is not None])
    if strict and rejects:
        rel, reason = rejects[0]
        raise ResidualsError(f"{videos / rel}: {reason} (strict: {len(rejects)} file(s) "
                             "rejected, nothing written)")
    if not good:
        raise ResidualsError(f"{videos}: no video file could be decoded ({len(rejects)} "
                             f"rejected; first: {rejects[0][0]}: {rejects[0][1]})")
    table = build_table(meta, good, kind)
    table = validate_frame(table, S.TABLES[kind], out)
    report = _write(table, out, rejects)
    return IngestResult(out, report, kind, enc.name, enc.dim, len(good), table.height,
                        sum(len(r.vectors) for r in good), sum(r.n_frames for r in good),
                        rejects)


def make_media_samples(out: Path) -> dict[str, int]:
    """Write the real sample videos with planted reuse (:mod:`ingest.media_samples`)."""
    from ingest.media_samples import make_media

    Path(out).mkdir(parents=True, exist_ok=True)
    return make_media(out)
