"""``residuals samples make``: write a synthetic dataset with planted truth.

Rule: this module only parses flags and prints; the data come from
:func:`residuals.samples.make_samples` (family ``linear``, the default) or
:func:`residuals.families.make_family` (the other families), and the summary
is read back from the written files' Parquet metadata (row counts), so it
reports what is on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from contract import schema as S
from contract.errors import ResidualsError
from residuals.commands._files import flag_names

_FILES = (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS, S.TRUTH, S.DUPLICATES)
_LINEAR_ONLY = ("--accounts", "--segments", "--row-group-size")
#: Parameters of :mod:`residuals.samples` and :mod:`residuals.families` and their flags.
FLAGS = {"name": "--family", "creators": "--creators", "clips": "--clips",
         "generations": "--generations", "dim": "--dim", "accounts": "--accounts",
         "row_group_size": "--row-group-size", "out": "--out", "seed": "--seed",
         "prev": "--next-period"}


def make(  # noqa: UP045 (typer needs Optional)
    out: Annotated[Path, typer.Option("--out", help="Output directory (created if missing).")],
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Random seed; same seed, same bytes (required unless --media).")] = None,
    family: Annotated[str, typer.Option(
        "--family", help="Data family: linear, topics, nonlinear, duplicates, anisotropic, "
                         "real.")] = "linear",
    creators: Annotated[Optional[int], typer.Option(
        "--creators", help="Number of creators [default: the family's].")] = None,
    clips: Annotated[Optional[int], typer.Option(
        "--clips", help="Number of clips (>= creators) [default: the family's].")] = None,
    generations: Annotated[Optional[int], typer.Option(
        "--generations", help="Number of generations [default: the family's].")] = None,
    dim: Annotated[Optional[int], typer.Option(
        "--dim", help="Embedding dimension d [default: the family's].")] = None,
    accounts: Annotated[Optional[int], typer.Option(
        "--accounts", help="Number of paying accounts [default: generations // 25]; "
                           "family linear only.")] = None,
    segments: Annotated[bool, typer.Option(
        "--segments", help="Give each clip 1-4 segment rows; family linear only.")] = False,
    row_group_size: Annotated[Optional[int], typer.Option(
        "--row-group-size", help="Rows per Parquet row group [default: 100000]; "
                                 "family linear only.")] = None,
    media: Annotated[bool, typer.Option(
        "--media", help="Write real sample videos with planted reuse instead.")] = False,
    next_period: Annotated[Optional[Path], typer.Option(
        "--next-period", help="Continue the sample in this directory (made with the same "
                              "--seed): same creators and clips, the next month's generations "
                              "and revenue; family linear only.")] = None,
) -> None:
    """Write creators, clips, generations, accounts, truth and duplicates Parquet files."""
    from rich.console import Console

    from residuals.families import make_family, sized
    from residuals.samples import make_samples

    if media:
        from residuals.commands.ingest import print_media_samples

        print_media_samples(out)
        return
    if seed is None:
        raise ResidualsError("--seed: required (unless --media)")
    if next_period is not None:
        _make_next(out, next_period, seed, family, row_group_size,
                   given=(creators, clips, generations, dim, accounts, segments or None))
        return
    with flag_names(FLAGS):
        params = sized(family, creators=creators, clips=clips, generations=generations,
                       dim=dim)
        if family == "linear":
            make_samples(out, creators=params.creators, clips=params.clips,
                         generations=params.generations, dim=params.dim, seed=seed,
                         accounts=accounts, segments=segments,
                         row_group_size=100_000 if row_group_size is None else row_group_size)
        else:
            given = (accounts is not None, segments, row_group_size is not None)
            for flag, on in zip(_LINEAR_ONLY, given):
                if on:
                    raise ResidualsError(f"{flag}: only for --family linear, not {family!r}")
            make_family(out, family, seed, params)
    Console().print(f"samples written to {out} (family {family}, seed {seed}, d = {params.dim}"
                    + (", segments" if segments else "") + ")")
    print_files(out)


def _make_next(out: Path, prev: Path, seed: int, family: str, row_group_size: int | None,
               given: tuple[object, ...]) -> None:
    """``--next-period``: the sizes come from the previous period's files."""
    from rich.console import Console

    from residuals.samples import next_period

    if family != "linear":
        raise ResidualsError(f"--next-period: only for --family linear, not {family!r}")
    sizes = ("--creators", "--clips", "--generations", "--dim", "--accounts", "--segments")
    for flag, value in zip(sizes, given):
        if value is not None:
            raise ResidualsError(f"{flag}: not with --next-period (the sizes are those of "
                                 f"{prev})")
    with flag_names(FLAGS):
        period = next_period(prev, out, seed=seed, row_group_size=100_000
                             if row_group_size is None else row_group_size)
    Console().print(f"samples written to {out}: period {period} after {prev} "
                    f"(seed {seed}, same creators and clips)")
    print_files(out)


def print_files(out: Path) -> None:
    """Each written file with its rows (from its Parquet metadata) and bytes."""
    import pyarrow.parquet as pq
    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("file")
    table.add_column("rows", justify="right")
    table.add_column("bytes", justify="right")
    for t in _FILES:
        path = out / t.filename
        table.add_row(t.filename, f"{pq.ParquetFile(path).metadata.num_rows:,}",
                      f"{path.stat().st_size:,}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the ``samples`` command group to the ``residuals`` app."""
    group = typer.Typer(help="Synthetic data in the contract, with planted truth.",
                        no_args_is_help=True)
    group.command("make")(make)
    app.add_typer(group, name="samples")
