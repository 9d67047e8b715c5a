"""Errors that reach a user as one line.

Rule: anything a user can cause (a bad file, a bad flag, an unreachable
database) raises a :class:`ResidualsError` whose ``str`` is a complete,
single-line explanation naming what was wrong and what was expected. The CLI
prints it and exits non-zero; it never prints a traceback for these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ResidualsError(Exception):
    """A user-facing error; ``str(err)`` is the whole message, on one line."""

    def __str__(self) -> str:  # never let a newline split the one line
        return " ".join(super().__str__().split())


class ContractError(ResidualsError):
    """An input that breaks the data contract.

    Parameters
    ----------
    file
        The file (or table name) that holds the problem.
    message
        What was found and what was expected, e.g.
        ``"has 63 values, expected 64"``.
    row
        0-based row index in the file (as ``pl.read_parquet(file)[row]``), if any.
    column
        Column name, if any.
    ident
        The row's id (``clip_id`` etc.) when known; printed next to the row.
    """

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        ident: str | None = None,
    ) -> None:
        self.file = str(file)
        self.message = message
        self.row = row
        self.column = column
        self.ident = ident
        where = [self.file]
        if row is not None:
            where.append(f"row {row}" + (f" ({ident})" if ident else ""))
        elif ident is not None:
            where.append(ident)
        if column is not None:
            where.append(f"column {column}")
        super().__init__(", ".join(where) + ": " + message)


class ParameterError(ResidualsError):
    """A bad argument: ``depth=0: expected an integer >= 1`` (the CLI names the flag instead).

    Attributes
    ----------
    name, value, expected
        The parameter, the value received, and what was expected.
    """

    def __init__(self, name: str, value: Any, expected: str) -> None:
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"{name}={value!r}: {expected}")


def first_line(exc: BaseException | object, limit: int | None = None) -> str:
    """The first line of ``str(exc)`` (its type when empty), at most ``limit`` characters:
    what a user sees of a driver or library error that spans several lines."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return line if limit is None else line[:limit]
