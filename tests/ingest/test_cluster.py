"""Ingest on a real ``dask scheduler`` with two ``dask worker`` processes gives the same bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.media_samples import CLIPS_DIR, CLIPS_MANIFEST
from tests.conftest import need
from tests.dask_cluster import dask_cluster

pytestmark = pytest.mark.cluster

BIN = Path(sys.executable).parent


def _ingest(media: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    clips = media / CLIPS_DIR
    return subprocess.run([str(BIN / "residuals"), "ingest", "--videos", str(clips), "--out",
                           str(out), "--manifest", str(clips / CLIPS_MANIFEST), *extra],
                          check=True, env=env, timeout=180, capture_output=True, text=True)


def test_external_cluster_local_cluster_and_threads_write_same_bytes(
        media: Path, ingested: Path, tmp_path: Path) -> None:
    need((BIN / "dask").exists(), "the dask command-line tool beside the Python interpreter")
    local, remote = tmp_path / "local.parquet", tmp_path / "remote.parquet"
    _ingest(media, local, "--scheduler", "local", "--workers", "2")
    with dask_cluster(tmp_path) as address:
        from distributed import Client

        proc = _ingest(media, remote, "--scheduler", address)
        with Client(address, timeout=10) as client:  # both workers ran ingest tasks
            ran = client.run(lambda dask_worker: sum(
                1 for t in dask_worker.state.log if "ingest-file" in str(t)))
    expected = (ingested / "clips.parquet").read_bytes()
    assert local.read_bytes() == expected
    assert remote.read_bytes() == expected
    assert "20 clips rows from 10 files" in proc.stdout
    assert len(ran) == 2 and all(n > 0 for n in ran.values())


def test_unreachable_scheduler_names_the_flag(media: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    proc = subprocess.run([str(BIN / "residuals"), "ingest", "--videos",
                           str(media / CLIPS_DIR), "--out", str(tmp_path / "c.parquet"),
                           "--scheduler", "tcp://127.0.0.1:9"],
                          check=False, env=env, timeout=120, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: --scheduler 'tcp://127.0.0.1:9': cannot reach")
    assert not (tmp_path / "c.parquet").exists()
