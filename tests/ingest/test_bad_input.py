"""Bad input: one line naming file, row and column; rejects listed; nothing half-written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contract.errors import ResidualsError
from ingest.media_samples import CLIPS_DIR
from residuals.workflows.ingest import ingest

BIN = Path(sys.executable).parent


@pytest.fixture
def videos(media: Path, tmp_path: Path) -> Path:
    root = tmp_path / "videos"
    shutil.copytree(media / CLIPS_DIR / "ana", root / "ana")
    return root


def _manifest(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.csv"
    path.write_text(body)
    return path


def _fails(videos: Path, out: Path, message: str, **kw: object) -> None:
    with pytest.raises(ResidualsError) as err:
        ingest(videos, out, **kw)  # type: ignore[arg-type]
    for part in message.split(" ... "):
        assert part in str(err.value)
    assert "\n" not in str(err.value)
    assert not out.exists() and not out.with_name(out.stem + ".rejects.csv").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


@pytest.mark.parametrize(("row", "message"), [
    ("ana/clip-00.mp4,ana,bogus,,", "m.csv, row 0 ... column source_type: is 'bogus'"),
    ("ana/clip-00.mp4,ana,crawled,not a url,", "m.csv, row 0 ... column source_url: is 'not a url'"),
    ("ana/clip-00.mp4,ana,crawled,https://x.org/a,2999-01-01",
     "m.csv, row 0 ... column acquired_at: is in the future"),
    ("ana/clip-00.mp4,ana,crawled,https://x.org/a,2025-02-30",
     "m.csv, row 0 ... column acquired_at: is '2025-02-30', expected a date"),
    ("ana/missing.mp4,ana,user,,",
     "m.csv, row 0, column path: is 'ana/missing.mp4', file not found"),
    ("../etc/passwd,ana,user,,", "column path: is '../etc/passwd', expected a path inside"),
])
def test_bad_manifest_rows(videos: Path, tmp_path: Path, row: str, message: str) -> None:
    manifest = _manifest(tmp_path, "path,creator_id,source_type,source_url,acquired_at\n"
                         + row + "\n")
    _fails(videos, tmp_path / "c.parquet", message, manifest=manifest)


def test_unreadable_and_incomplete_manifests(videos: Path, tmp_path: Path) -> None:
    _fails(videos, tmp_path / "c.parquet", "manifest file not found",
           manifest=tmp_path / "nope.csv")
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b'path,creator_id\n"unterminated,\xff\xfe\n')
    _fails(videos, tmp_path / "c.parquet", "bin.csv", manifest=bad)
    _fails(videos, tmp_path / "c.parquet", "missing required column creator_id",
           manifest=_manifest(tmp_path, "path\nana/clip-00.mp4\n"))
    _fails(videos, tmp_path / "c.parquet", "column colour: unknown column",
           manifest=_manifest(tmp_path, "path,creator_id,colour\nana/clip-00.mp4,a,red\n"))


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _fails(tmp_path / "empty", tmp_path / "c.parquet", "no video files found")


def test_corrupt_and_unsupported_files_are_rejected_with_reasons(videos: Path,
                                                                 tmp_path: Path) -> None:
    (videos / "ana" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
    (videos / "ana" / "notes.docx").write_bytes(b"PK")
    good = (videos / "ana" / "clip-00.mp4").read_bytes()
    (videos / "ana" / "truncated.mp4").write_bytes(good[: len(good) // 3])
    res = ingest(videos, tmp_path / "c.parquet")
    reasons = dict(res.rejects)
    assert "cannot open as a video" in reasons["ana/broken.mp4"]
    assert reasons["ana/notes.docx"] == "unsupported file type '.docx'"
    assert res.files == 3 + ("ana/truncated.mp4" not in reasons)
    report = (tmp_path / "c.rejects.csv").read_text().splitlines()
    assert report[0] == "path,reason" and len(report) == 1 + len(res.rejects)
    _fails(videos, tmp_path / "strict.parquet", "ana/broken.mp4: cannot open", strict=True)


def test_cli_prints_one_line_and_exits_1(videos: Path, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "path,creator_id,source_type\nana/clip-00.mp4,ana,stolen\n")
    proc = subprocess.run([str(BIN / "residuals"), "ingest", "--videos", str(videos), "--out",
                           str(tmp_path / "c.parquet"), "--manifest", str(manifest)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    expected = (f"error: {manifest}, row 0 (clip_id 'ana/clip-00.mp4'), column source_type: "
                "is 'stolen', expected one of licensed, public_dataset, crawled, user, "
                "synthetic, other")
    assert proc.stderr.strip().splitlines() == [expected]
