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
from residuals.commands._files import DbOpt


def _check_port(host: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ResidualsError(f"--port {port}: expected a TCP port between 1 and 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ResidualsError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror})")


def streamlit_command(port: int, host: str) -> list[str]:
    """The ``streamlit run`` command line that serves the dashboard.

    Always headless (Streamlit then never asks for an e-mail address on
    standard input, so the server starts without a terminal) and without usage
    statistics; error details stay in the server log.
    """
    from dashboard import config

    return [
        sys.executable, "-m", "streamlit", "run", str(config.APP_PATH),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",
        "--server.fileWatcherType", "none",
        "--theme.base", "light",
        "--client.toolbarMode", "viewer",
    ]


def interactive() -> bool:
    """Whether a person is at a terminal (standard input and output are both terminals)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()
    except (ValueError, OSError):  # a closed standard stream
        return False


_OPEN_WHEN_UP = """
import sys, time, urllib.request, webbrowser
url = sys.argv[1]
for _ in range(600):
    try:
        urllib.request.urlopen(url + "/_stcore/health", timeout=1).close()
    except OSError:
        time.sleep(0.2)
    else:
        webbrowser.open(url)
        break
"""


def _open_browser_when_up(url: str) -> None:
    """Open ``url`` in a browser once the server answers (a detached helper process)."""
    import subprocess

    subprocess.Popen([sys.executable, "-c", _OPEN_WHEN_UP, url], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def dashboard(
    db: DbOpt = None,
    port: int = typer.Option(8501, "--port", help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    data: Path = typer.Option(
        None, "--data", help="Data directory for the Training data page and the Policy lab "
        "(default: the directory recorded in the latest batch's manifest)."),
    headless: bool = typer.Option(
        False, "--headless", help="Do not open a browser (one is opened only when run from a "
        "terminal)."),
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
    cmd = streamlit_command(port, host)
    if not headless and interactive():
        _open_browser_when_up(f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}")
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server (exec), so that a signal to this process reaches it directly.
    os.execve(cmd[0], cmd, env)


def register(app: typer.Typer) -> None:
    """Add ``residuals dashboard`` to the CLI."""
    app.command("dashboard")(dashboard)
