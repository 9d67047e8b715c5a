"""What the commands check about the files they write, before writing any.

Rule: a command names every file it will write and every file it reads, and
:func:`refuse_overwrite` refuses (one line naming both flags) an output that
is an input, however it is spelled: the same path, another spelling of it, a
symbolic link on either side, or a hard link. A ledger is only created once
the batch to post is known to be valid (:mod:`residuals.workflows.store`).
Library errors name parameters; :func:`flag_names` spells them as the
command's flags.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from contract.errors import ResidualsError

Named = tuple[str, Path]
"""A file and the flag it came from: ``("--clips", Path("data/clips.parquet"))``."""


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (symbolic links resolved; hard links too)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def refuse_overwrite(outputs: Iterable[Named], inputs: Iterable[Named]) -> None:
    """Raise :class:`ResidualsError` when an output is one of the inputs."""
    sources = list(inputs)
    for out_flag, out in outputs:
        for in_flag, src in sources:
            if same_file(out, src):
                raise ResidualsError(f"{out_flag} {out}: is the file read as {in_flag} "
                                     f"({src}); choose an output that is not an input")


def data_inputs(data: Path) -> list[Named]:
    """The contract tables of a data directory (``--data``) as inputs."""
    from contract import schema as S

    tables = (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS, S.ATTRIBUTIONS)
    return [("--data", data / t.filename) for t in tables]


def check_output_dir(flag: str, out: Path) -> None:
    """A directory the command writes into exists and is writable (checked before any work)."""
    if not out.is_dir():
        raise ResidualsError(f"{flag} {out}: directory does not exist")
    if not os.access(out, os.W_OK):
        raise ResidualsError(f"{flag} {out}: directory is not writable")


def ledger_inputs(url: str | None) -> list[Named]:
    """The ledger's own files as inputs (a SQLite file and its -wal/-shm), for
    :func:`refuse_overwrite`."""
    from residuals.workflows.store import sqlite_file

    path = sqlite_file(url)
    if path is None:
        return []
    return [("--db", Path(f"{path}{suffix}")) for suffix in ("", "-wal", "-shm")]


DB_HELP = "Ledger database URL [default: $RESIDUALS_DB or sqlite:///data/demo.db]."

DbOpt = Annotated[Optional[str], typer.Option("--db", help=DB_HELP)]  # noqa: UP045
"""The ``--db`` option every ledger command takes (``db: DbOpt = None``)."""

LEDGER_FLAGS = {"url": "--db"}
"""The ledger's parameter every command spells ``--db`` (translated by ``residuals.cli``)."""


def with_flags(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with its parameters spelled as flags: a leading ``name=value`` becomes
    ``--flag value`` and a backquoted `` `name` `` becomes ``--flag``."""
    for name, flag in flags.items():
        if message.startswith(f"{name}="):
            message = f"{flag} {message[len(name) + 1:]}"
        message = message.replace(f"`{name}`", flag)
    return message


@contextmanager
def flag_names(flags: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a workflow's error with its parameters spelled as the command's flags
    (:func:`with_flags`)."""
    try:
        yield
    except ResidualsError as exc:
        msg = with_flags(str(exc), flags)
        if msg == str(exc):
            raise
        raise ResidualsError(msg) from None
