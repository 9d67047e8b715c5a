"""``residuals users add|list|revoke|reset-password|unlock|remove``: dashboard logins.

Rule: a password never appears in the database or in output, only its argon2
hash; it comes from ``--password``, from standard input when that is not a
terminal (one line), or from a hidden prompt asked twice. All checks happen
before anything is written, and every command is one database transaction
that locks the user's row (SQLite: the write lock), so a login of the same
user waits for it and then sees the change. An unknown user is one
``error:`` line and exit 1.
"""

from __future__ import annotations

import sys

import typer

from contract.errors import ResidualsError
from residuals.commands._files import DbOpt

users_app = typer.Typer(help="Dashboard logins (admin, economist, creator).", no_args_is_help=True)


def _read_password(password: str | None) -> str:
    if password is not None:
        return password
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ResidualsError("password: standard input was empty, expected one line")
        return line
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _engine(db: str | None):
    from dashboard import config
    from ledger.store import open_store

    return open_store(config.check_url(db) if db else config.db_url())


@users_app.command("add")
def add(
    username: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option(..., "--role", help="admin, economist or creator."),
    creator: str = typer.Option(None, "--creator", help="The creator_id a creator user sees."),
    password: str = typer.Option(
        None, "--password", help="Password (default: one line from stdin, or a hidden prompt)."),
    db: DbOpt = None,
) -> None:
    """Add a dashboard user with a hashed password."""
    from sqlalchemy.orm import Session

    from dashboard.auth import add_user, check_role

    check_role(role, creator)
    secret = _read_password(password)
    engine = _engine(db)
    with Session(engine) as session, session.begin():
        add_user(session, username, secret, role, creator)
    typer.echo(f"added {role} user {username.strip()!r}"
               + (f" for creator {creator!r}" if creator else ""))


@users_app.command("list")
def list_users(
    db: DbOpt = None,
) -> None:
    """List dashboard users and their roles (never their passwords)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from dashboard.models import User as user_cls

    with Session(_engine(db)) as session:
        rows = session.execute(
            select(user_cls.username, user_cls.role, user_cls.creator_id).order_by(user_cls.username)
        ).all()
    for username, role, creator_id in rows:
        typer.echo(f"{username}\t{role}\t{creator_id or ''}")


@users_app.command("revoke")
def revoke(
    username: str = typer.Argument(..., help="Login name whose sessions end."),
    db: DbOpt = None,
) -> None:
    """End every dashboard session of a user (they must log in again)."""
    from dashboard.auth import revoke_user_sessions

    n = _change(db, revoke_user_sessions, username)
    typer.echo(f"ended {n} session(s) of {username.strip()!r}")


def _change(db: str | None, change, *args):  # noqa: ANN001, ANN202 - a dashboard.auth function
    """Run ``change(session, *args)`` in one login-locking transaction; return its result."""
    from dashboard.auth import login_session

    engine = _engine(db)
    try:
        with login_session(engine) as session, session.begin():
            return change(session, *args)
    finally:
        engine.dispose()


@users_app.command("reset-password")
def reset_password(
    username: str = typer.Argument(..., help="Login name."),
    password: str = typer.Option(
        None, "--password", help="New password (default: one line from stdin, or a hidden prompt)."),
    db: DbOpt = None,
) -> None:
    """Set a new password and end every session of the user."""
    from dashboard.auth import reset_password as reset

    secret = _read_password(password)
    n = _change(db, reset, username, secret)
    typer.echo(f"new password for {username.strip()!r}; ended {n} session(s)")


@users_app.command("unlock")
def unlock(
    username: str = typer.Argument(..., help="Login name."),
    source: str = typer.Option(None, "--source", help="Only this source address "
                               "(default: every address)."),
    db: DbOpt = None,
) -> None:
    """Forget the user's recent failed logins, so no address has to wait."""
    from dashboard.auth import unlock_user

    n = _change(db, unlock_user, username, source)
    typer.echo(f"cleared failed logins of {username.strip()!r} from {n} address(es)")


@users_app.command("remove")
def remove(
    username: str = typer.Argument(..., help="Login name."),
    db: DbOpt = None,
) -> None:
    """Delete a user; their sessions stop working at once (login attempts stay as audit)."""
    from dashboard.auth import remove_user

    n = _change(db, remove_user, username)
    typer.echo(f"removed user {username.strip()!r} and {n} session(s)")


def register(app: typer.Typer) -> None:
    """Add the ``users`` command group to the CLI."""
    app.add_typer(users_app, name="users")
