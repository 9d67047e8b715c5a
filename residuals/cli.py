"""The ``residuals`` console script.

Rule: every user-caused failure is a :class:`contract.ResidualsError`, printed
as one line on stderr with exit status 1; usage errors exit 2 (click's
convention); nothing else is caught, so a real bug still shows its traceback.
"""

from __future__ import annotations

import importlib
import sys

import click
import typer

from contract.errors import ResidualsError

app = typer.Typer(
    name="residuals",
    help="Pay the creators whose clips trained a generative video model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Each module exposes register(app). Keep one line per module.
COMMAND_MODULES = [
    "residuals.commands.samples",
    "residuals.commands.attribute",
    "residuals.commands.policy",
    "residuals.commands.batch",
    "residuals.commands.ledger",
    "residuals.commands.users",
    "residuals.commands.dashboard",
    "residuals.commands.demo",
    "residuals.commands.ingest",
    "residuals.commands.transparency",
]

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:  # a command group not written yet
        if _exc.name != _name:
            raise
        continue
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning ResidualsError into one line and exit 1."""
    try:
        result = app(args=argv, standalone_mode=False)
    except ResidualsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # python -m residuals.cli
    main()
