"""``residuals dashboard``: start the Streamlit app on a ledger database.

Rule: this command only checks its flags and starts ``streamlit run`` on
``dashboard/app.py``; the database URL (and an optional data directory) reach
the app through the environment variables :data:`dashboard.config.DB_ENV` and
:data:`dashboard.config.DATA_ENV`, which the app reads on every run. Problems
with the database itself (empty, unreachable, older schema) are shown on the
page, not here, so that the dashboard can say what to do about them.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import typer

from contract.errors import ResidualsError


def _check_port(host: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ResidualsError(f"--port {port}: expected a TCP port between 1 and 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ResidualsError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror})")


def streamlit_command(port: int, host: str, headless: bool) -> list[str]:
    """The ``streamlit run`` command line that serves the dashboard."""
    from dashboard import config

    return [
        sys.executable, "-m", "streamlit", "run", str(config.APP_PATH),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", "true" if headless else "false",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--theme.base", "light",
        "--client.toolbarMode", "viewer",
    ]


def dashboard(
    db: str = typer.Option(None, "--db", help="Ledger database URL (default $RESIDUALS_DB, else sqlite:///data/demo.db)."),
    port: int = typer.Option(8501, "--port", help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    data: Path = typer.Option(
        None, "--data", help="Data directory for the Training data page and the Policy lab "
        "(default: the directory recorded in the latest batch's manifest)."),
    headless: bool = typer.Option(False, "--headless", help="Do not open a browser."),
) -> None:
    """Start the dashboard: creators' shares, batches, the policy lab, the training-data manifest."""
    from dashboard import config

    url = config.check_url(db) if db else config.db_url()
    if data is not None and not data.is_dir():
        raise ResidualsError(f"--data {data}: not a directory")
    _check_port(host, port)
    env = dict(os.environ)
    env[config.DB_ENV] = url
    if data is not None:
        env[config.DATA_ENV] = str(data.resolve())
    typer.echo(f"Residuals dashboard on http://{host}:{port} (database {config.redact(url)})",
               err=True)
    cmd = streamlit_command(port, host, headless)
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server (exec), so that a signal to this process reaches it directly.
    os.execve(cmd[0], cmd, env)


def register(app: typer.Typer) -> None:
    """Add ``residuals dashboard`` to the CLI."""
    app.command("dashboard")(dashboard)
