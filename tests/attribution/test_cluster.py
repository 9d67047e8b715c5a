"""A real ``dask scheduler`` and two ``dask worker`` processes give the same bytes as threads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.attribution.engine_data import clips_frame, gens_frame, random_emb, write
from tests.conftest import need
from tests.dask_cluster import dask_cluster

pytestmark = pytest.mark.cluster

BIN = Path(sys.executable).parent


def _attribute(clips: Path, gens: Path, out: Path, *extra: str) -> None:
    env = dict(os.environ)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    subprocess.run([str(BIN / "residuals"), "attribute", "--clips", str(clips),
                    "--generations", str(gens), "--out", str(out), "--k", "5",
                    "--block-size", "40", *extra],
                   check=True, env=env, timeout=120, capture_output=True)


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

    with dask_cluster(tmp_path) as address:
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
    with dask_cluster(tmp_path) as address:
        procs = [subprocess.Popen(_command(c, g, out, "--scheduler", address), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for c, g, _, out in runs]
        for p in procs:
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err.decode()
    for _, _, threads, remote in runs:
        assert remote.read_bytes() == threads.read_bytes()
    assert runs[0][2].read_bytes() != runs[1][2].read_bytes()
