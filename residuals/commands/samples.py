"""``residuals samples make``: write a synthetic dataset with planted truth.

Rule: this module only parses flags and prints; the data come from
:func:`residuals.samples.make_samples`, and the summary is read back from the
written files' Parquet metadata (row counts), so it reports what is on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from contract import schema as S
from contract.errors import ResidualsError

_FILES = (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS, S.TRUTH, S.DUPLICATES)


def make(
    out: Annotated[Path, typer.Option("--out", help="Output directory (created if missing).")],
    creators: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--creators", help="Number of creators.")] = None,
    clips: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--clips", help="Number of clips (>= creators).")] = None,
    generations: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--generations", help="Number of generations.")] = None,
    dim: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--dim", help="Embedding dimension d.")] = None,
    seed: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--seed", help="Random seed; same seed, same bytes.")] = None,
    accounts: Annotated[Optional[int], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--accounts", help="Number of paying accounts [default: generations // 25].")] = None,
    segments: Annotated[bool, typer.Option(
        "--segments", help="Give each clip 1-4 segment rows.")] = False,
    row_group_size: Annotated[int, typer.Option(
        "--row-group-size", help="Rows per Parquet row group.")] = 100_000,
    media: Annotated[bool, typer.Option(
        "--media", help="Write real sample videos with planted reuse instead.")] = False,
) -> None:
    """Write creators, clips, generations, accounts, truth and duplicates Parquet files."""
    import pyarrow.parquet as pq
    from rich.console import Console
    from rich.table import Table

    from residuals.samples import make_samples

    if media:
        from residuals.commands.ingest import print_media_samples

        print_media_samples(out)
        return
    for flag, value in (("--creators", creators), ("--clips", clips),
                        ("--generations", generations), ("--dim", dim), ("--seed", seed)):
        if value is None:
            raise ResidualsError(f"{flag}: required (unless --media)")
    make_samples(out, creators=creators, clips=clips, generations=generations, dim=dim,
                 seed=seed, accounts=accounts, segments=segments,
                 row_group_size=row_group_size)
    console = Console()
    console.print(f"samples written to {out} (seed {seed}, d = {dim}"
                  + (", segments" if segments else "") + ")")
    table = Table()
    table.add_column("file")
    table.add_column("rows", justify="right")
    table.add_column("bytes", justify="right")
    for t in _FILES:
        path = out / t.filename
        table.add_row(t.filename, f"{pq.ParquetFile(path).metadata.num_rows:,}",
                      f"{path.stat().st_size:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``samples`` command group to the ``residuals`` app."""
    group = typer.Typer(help="Synthetic data in the contract, with planted truth.",
                        no_args_is_help=True)
    group.command("make")(make)
    app.add_typer(group, name="samples")
