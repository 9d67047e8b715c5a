"""A real ``dask scheduler`` and two ``dask worker`` processes give the same bytes as threads."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.attribution.engine_data import clips_frame, gens_frame, random_emb, write
from tests.conftest import need

pytestmark = pytest.mark.cluster

BIN = Path(sys.executable).parent


def _wait_for_file(path: Path, procs: list[subprocess.Popen], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:
                pass  # being written
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{p.args} exited with {p.returncode}")
        time.sleep(0.1)
    raise AssertionError(f"scheduler did not start within {timeout} s")


def _attribute(clips: Path, gens: Path, out: Path, *extra: str) -> None:
    env = dict(os.environ)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    subprocess.run([str(BIN / "residuals"), "attribute", "--clips", str(clips),
                    "--generations", str(gens), "--out", str(out), "--k", "5",
                    "--block-size", "40", *extra],
                   check=True, env=env, timeout=120, capture_output=True)


@contextlib.contextmanager
def _cluster(tmp_path: Path) -> Iterator[str]:
    """A real ``dask scheduler`` and two single-thread ``dask worker`` processes."""
    need((BIN / "dask").exists(), "the dask command-line tool beside the Python interpreter")
    sched_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sched_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = _wait_for_file(sched_file, procs, 30)["address"]
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--host", "127.0.0.1",
                 "--nthreads", "1", "--no-dashboard", "--name", f"w{i}",
                 "--local-directory", str(tmp_path / f"w{i}")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=10) as client:
            client.wait_for_workers(2, timeout=30)
            assert len(client.scheduler_info()["workers"]) == 2
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_external_cluster_local_cluster_and_threads_write_same_bytes(tmp_path: Path) -> None:
    need((BIN / "dask").exists(), "the dask command-line tool beside the Python interpreter")
    rng = np.random.default_rng(0)
    clips = write(clips_frame(random_emb(rng, 3000, 16),
                              ids=[f"c{i:05d}" for i in rng.permutation(3000)]),
                  tmp_path / "clips.parquet", 500)
    gens = write(gens_frame(random_emb(rng, 200, 16)), tmp_path / "gens.parquet", 100)
    threads, local, remote = (tmp_path / f"{n}.parquet" for n in ("threads", "local", "remote"))
    _attribute(clips, gens, threads)
    _attribute(clips, gens, local, "--scheduler", "local", "--workers", "2")

    with _cluster(tmp_path) as address:
        _attribute(clips, gens, remote, "--scheduler", address)
    data = threads.read_bytes()
    assert len(data) > 1000
    assert local.read_bytes() == data
    assert remote.read_bytes() == data


def _command(clips: Path, gens: Path, out: Path, *extra: str) -> list[str]:
    return [str(BIN / "residuals"), "attribute", "--clips", str(clips), "--generations",
            str(gens), "--out", str(out), "--k", "5", "--block-size", "40", "--quiet", *extra]


def test_two_runs_at_once_on_one_cluster_keep_their_own_results(tmp_path: Path) -> None:
    """Same shapes, different data, same moment, one scheduler: no run gets the other's keys."""
    rng = np.random.default_rng(1)
    runs = []
    for name in ("a", "b"):
        clips = write(clips_frame(random_emb(rng, 1200, 16)), tmp_path /
                      f"{name}-clips.parquet", 300)
        gens = write(gens_frame(random_emb(rng, 160, 16)), tmp_path / f"{name}-gens.parquet", 80)
        threads = tmp_path / f"{name}-threads.parquet"
        _attribute(clips, gens, threads)
        runs.append((clips, gens, threads, tmp_path / f"{name}-remote.parquet"))
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    with _cluster(tmp_path) as address:
        procs = [subprocess.Popen(_command(c, g, out, "--scheduler", address), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for c, g, _, out in runs]
        for p in procs:
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err.decode()
    for _, _, threads, remote in runs:
        assert remote.read_bytes() == threads.read_bytes()
    assert runs[0][2].read_bytes() != runs[1][2].read_bytes()
