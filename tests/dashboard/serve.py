"""Start ``residuals dashboard`` as a real server process and wait until it serves.

Waiting reads the server's own output for Streamlit's "can now view" line
(a blocking read in a thread, bounded by a deadline), then checks the health
endpoint once: no fixed sleep and no polling interval.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT

READY = "can now view your Streamlit app"
START_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lines(stream, out: queue.Queue, log) -> None:  # type: ignore[no-untyped-def]
    for line in iter(stream.readline, ""):
        if log is not None:
            log.write(line)
            log.flush()
        out.put(line)
    out.put(None)


@contextmanager
def dashboard(db_url: str, *args: str, env: dict[str, str] | None = None,
              log: Path | None = None) -> Iterator[str]:
    """Serve the dashboard on a free port with standard input closed; yields its URL.

    Raises ``RuntimeError`` with the server's output when it exits or does not
    serve within :data:`START_S` seconds.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "residuals", "dashboard", "--db", db_url, "--port", str(port),
         *args],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()  # no terminal, nothing to read: a service or a CI job
    lines: queue.Queue = queue.Queue()
    sink = open(log, "w") if log is not None else None  # noqa: SIM115 - closed below
    threading.Thread(target=_lines, args=(proc.stdout, lines, sink), daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    seen: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=START_S)
            except queue.Empty:
                raise RuntimeError("the dashboard did not serve:\n" + "".join(seen)) from None
            if line is None:
                raise RuntimeError("the dashboard exited:\n" + "".join(seen))
            seen.append(line)
            if READY in line:
                break
        with urllib.request.urlopen(url + "/_stcore/health", timeout=30) as r:
            assert r.status == 200
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: only the dashboard
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if sink is not None:
            sink.close()
