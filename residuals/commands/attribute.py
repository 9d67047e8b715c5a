"""``residuals attribute``: score generations against clips, write attributions.

Rule: this module only parses flags, shows progress and prints; the work is
:func:`residuals.workflows.attribution.attribute`. The output is written
atomically (temporary name, then rename), so a failed run leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
from contract.errors import ResidualsError
from residuals.commands._files import refuse_overwrite


def attribute(
    clips: Annotated[Path, typer.Option(
        "--clips", help="Clips Parquet file (streamed by row group).")],
    generations: Annotated[Path, typer.Option("--generations", help="Generations Parquet file.")],
    out: Annotated[Path, typer.Option("--out", help="Attributions Parquet file to write.")],
    method: Annotated[Optional[str], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--method", help="Weighting method [default: the project default].")] = None,
    k: Annotated[int, typer.Option(
        "--k", help="Clips written per generation at most: every clip with a positive "
        "weight, up to K (the K largest, renormalised).")] = DEFAULT_K,
    depth: Annotated[int, typer.Option(
        "--depth", help="Candidates the weighting sees per generation (search depth).")
    ] = DEFAULT_DEPTH,
    scheduler: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--scheduler", help="'threads' (default), 'local' (start a LocalCluster) or "
        "tcp://HOST:PORT of an existing cluster [env: DASK_SCHEDULER_ADDRESS].")] = None,
    workers: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--workers", help="Threads, here or in the LocalCluster's worker process "
        "[default: cores]; an existing cluster uses all its workers.")] = None,
    block_size: Annotated[int, typer.Option(
        "--block-size", help="Generations per block.")] = 2048,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Write the top-k clips of every generation with their influence weights."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from residuals.workflows.attribution import attribute as run_attribute

    if scheduler is None:
        scheduler = os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if scheduler is not None and scheduler not in ("threads", "local", "sync") \
            and "://" not in scheduler:
        raise ResidualsError(f"--scheduler {scheduler!r}: expected 'threads', 'local' or "
                             "an address like tcp://HOST:PORT")
    refuse_overwrite([("--out", out)], [("--clips", clips), ("--generations", generations)])
    if out.exists() and out.is_dir():
        raise ResidualsError(f"{out}: cannot write, it is a directory")
    if not out.parent.is_dir():
        raise ResidualsError(f"{out}: cannot write, directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):  # fail before the work, not after it
        raise ResidualsError(f"{out}: cannot write, directory {out.parent} is not writable")
    console = Console(stderr=True)
    _release_memory_promptly()
    if workers is not None and workers < 1:
        raise ResidualsError(f"--workers {workers}: expected an integer >= 1")
    show = not quiet and console.is_terminal
    with Progress(TextColumn("attribute"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, disable=not show) as bar, _flags():
        task = bar.add_task("attribute", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        done = run_attribute(clips, generations, out, method=method, k=k, depth=depth,
                             scheduler=scheduler, workers=workers, block_size=block_size,
                             progress=progress, announce=console.print)
    print_attributed(console, done)


def print_attributed(console: Any, done: Any) -> None:
    """The summary ``residuals attribute`` prints of an :class:`Attributed`."""
    console.print(f"{done.rows:,} attributions ({done.method}, k = {done.k}, depth = "
                  f"{done.depth}) written to {done.path}")
    if done.inexact:
        console.print(f"note: {done.inexact:,} generations still have candidates above the "
                      f"method's threshold at rank {done.k}; their {done.method} weights are "
                      "not exact (more similar clips may exist beyond the list): raise --depth")


#: Library parameter -> the flag that sets it (errors name the flag here).
FLAGS = {"k": "--k", "depth": "--depth", "method": "--method", "workers": "--workers",
         "block_size": "--block-size", "scheduler": "--scheduler"}


@contextlib.contextmanager
def _flags() -> Iterator[None]:
    """Re-raise a library ``ParameterError`` (``depth=0: ...``) naming the flag
    (``--depth 0: ...``)."""
    from contract.errors import ParameterError

    try:
        yield
    except ParameterError as exc:
        if exc.name not in FLAGS:
            raise
        raise ResidualsError(f"{FLAGS[exc.name]} {exc.value}: {exc.expected}") from None


def _release_memory_promptly() -> None:
    """Use the system allocator for Arrow buffers in this process.

    Clip partitions are read, scored and dropped one after another; Arrow's
    default pool and glibc's adaptive mmap threshold keep freed buffers
    cached, which shows up as resident memory growing with the catalogue.
    """
    import ctypes
    import sys

    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    if sys.platform.startswith("linux"):
        # glibc raises its mmap threshold after large frees, after which freed
        # score buffers stay in the heap; pin it so big buffers are unmapped.
        try:
            ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD = 1 MiB
        except (OSError, AttributeError):
            pass


def register(app: typer.Typer) -> None:
    """Add the ``attribute`` command to the ``residuals`` app."""
    app.command("attribute")(attribute)
