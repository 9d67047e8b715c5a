"""``residuals ingest``: video files to a clips or generations table.

Rule: this module only parses flags, calls
:func:`residuals.workflows.ingest.ingest` and prints; library errors that
name a parameter are reworded to name the flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from contract.errors import ResidualsError


def ingest(
    videos: Annotated[Path, typer.Option("--videos", help="Directory of video files.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet table to write.")],
    manifest: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--manifest", help="CSV with path, creator_id and optional columns.")] = None,
    kind: Annotated[str, typer.Option(
        "--as", help="clips (one row per shot) or generations (one row per video).")] = "clips",
    encoder: Annotated[str, typer.Option(
        "--encoder", help="builtin, a path to a .onnx model, either with +captions.")
    ] = "builtin",
    scheduler: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--scheduler", help="local (LocalCluster) or tcp://host:port [default: threads].")
    ] = None,
    workers: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--workers", help="Threads [default: the cores].")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Fail (writing nothing) if any file is rejected.")] = False,
) -> None:
    """Decode videos, cut shots, encode them and write a contract table."""
    from rich.progress import Progress

    from residuals.workflows.ingest import KINDS
    from residuals.workflows.ingest import ingest as run_ingest

    if kind not in KINDS:
        raise ResidualsError(f"--as {kind!r}: expected one of {', '.join(KINDS)}")
    if workers is not None and workers < 1:
        raise ResidualsError(f"--workers {workers}: expected an integer >= 1")
    with Progress(transient=True) as bar:
        task = bar.add_task("decoding", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            res = run_ingest(videos, out, manifest=manifest, kind=kind, encoder=encoder,
                             scheduler=scheduler, workers=workers, strict=strict,
                             progress=progress)
        except ResidualsError as exc:
            raise ResidualsError(str(exc).replace("scheduler=", "--scheduler ")
                                 .replace("strict:", "--strict:")) from None
    typer.echo(f"{res.out}: {res.rows} {res.kind} rows from {res.files} files "
               f"({res.shots} shots, {res.frames} frames; encoder {res.encoder}, d = {res.dim})")
    typer.echo(f"{res.rejects_path}: {len(res.rejects)} rejected")
    for rel, reason in res.rejects[:10]:
        typer.echo(f"  {rel}: {reason}")


def register(app: typer.Typer) -> None:
    """Add the ``ingest`` command to the ``residuals`` app."""
    app.command("ingest")(ingest)


def print_media_samples(out: Path) -> None:
    """``residuals samples make --media``: write the sample videos and say what was written."""
    from ingest.media_samples import CLIPS_DIR, CLIPS_MANIFEST, GENERATIONS_DIR
    from residuals.workflows.ingest import make_media_samples

    counts = make_media_samples(out)
    typer.echo(f"media samples written to {out}: {counts['clips']} clips in "
               f"{out / CLIPS_DIR} (manifest {CLIPS_MANIFEST}), {counts['generations']} "
               f"generations in {out / GENERATIONS_DIR}, {counts['truth']} planted reuses "
               "in truth.parquet")
