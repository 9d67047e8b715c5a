"""The ``residuals`` console script.

Rule: every user-caused failure is a :class:`contract.ResidualsError`, printed
as one line on stderr with exit status 1 (the ledger's ``url`` spelled ``--db``); a usage error (unknown command or
flag, missing or malformed value) is one line naming the flag as typed, with
exit status 2; nothing else is caught, so a real bug still shows its traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from contract.errors import ResidualsError
from residuals.commands import (attribute, batch, claims, creators, dashboard, demo, ingest,
                                ledger, payouts, policy, samples, transparency, users)
from residuals.commands._files import LEDGER_FLAGS, with_flags

PROG = "residuals"

# typer >= 0.29 ships its own copy of click, whose exceptions are not those of
# ``import click``: take them from the module typer's own BadParameter lives in.
_CLICK_ERRORS = importlib.import_module(typer.BadParameter.__module__)
_CLICK_EXCEPTION: type[Exception] = _CLICK_ERRORS.ClickException
_NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(
    getattr(_CLICK_ERRORS, name) for name in ("NoArgsIsHelpError",) if hasattr(_CLICK_ERRORS, name))

app = typer.Typer(
    name=PROG,
    help="Pay the creators whose clips trained a generative video model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Each command module exposes register(app); a module that fails to import fails the CLI.
for _module in (samples, attribute, policy, batch, payouts, creators, ledger, claims, users,
                dashboard, demo, ingest, transparency):
    _module.register(app)


def usage_line(exc: Exception) -> str:
    """A click usage error as one line: its message and where to find help."""
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"error: {message}{hint}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a ResidualsError is one line and exit 1, a usage error
    one line and exit 2."""
    try:
        result = app(args=argv, prog_name=PROG, standalone_mode=False)
    except ResidualsError as exc:
        typer.echo(f"error: {with_flags(str(exc), LEDGER_FLAGS)}", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except _NO_ARGS_IS_HELP as exc:  # a bare command group: its help, as click prints it
        exc.show()  # type: ignore[attr-defined]
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    except _CLICK_EXCEPTION as exc:
        typer.echo(usage_line(exc), err=True)
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # python -m residuals.cli
    main()
