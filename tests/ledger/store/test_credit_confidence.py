"""The confidence of the clips that earned a share: computed, stored, digested, verified.

A planted case with and without the attributions' ``confidence`` column; a
format 2 ledger (posted before the column existed, migrated) that still
verifies; and a confidence forged with raw SQL that ``ledger verify`` catches.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from contract import schema as S
from ledger.store import open_store, read_session, write_session
from ledger.store import posting
from ledger.store.engine import _alembic_config
from ledger.store.read import creator_clip_earnings
from ledger.store.statements import RESEMBLANCE, clip_table
from ledger.store.verify import verify
from residuals.workflows.payout import clip_credits
from tests.ledger.store.kit import allocator, request, write_dataset
from tests.ledger.store.test_store_cli import POLICY, cli, run
from tests.ledger.store.test_store_forgery import drop_triggers

AMOUNTS = {"alice": 6000, "bob": 4000}


def planted(with_confidence: bool) -> pl.DataFrame:
    """Clip a1 earns from g1 (weight 0.6, confidence 0.9) and g2 (0.2, 0.7); b1 from g2
    (0.8, 0.7); a2 from g3 (0.4, no confidence recorded)."""
    df = pl.DataFrame({
        S.GENERATION_ID: ["g1", "g2", "g2", "g3"],
        S.CLIP_ID: ["a1", "a1", "b1", "a2"],
        S.CREATOR_ID: ["alice", "alice", "bob", "alice"],
        S.WEIGHT: [0.6, 0.2, 0.8, 0.4],
        S.CONFIDENCE: [0.9, 0.7, 0.7, None],
    })
    return df if with_confidence else df.drop(S.CONFIDENCE)


def test_clip_confidence_is_the_weight_weighted_mean() -> None:
    got = clip_credits(planted(True))
    assert got[S.CLIP_ID].to_list() == ["a1", "a2", "b1"]
    conf = dict(zip(got[S.CLIP_ID].to_list(), got[S.CONFIDENCE].to_list()))
    assert conf["a1"] == pytest.approx((0.6 * 0.9 + 0.2 * 0.7) / 0.8)  # 0.85: strong
    assert conf["b1"] == pytest.approx(0.7)
    assert conf["a2"] is None  # no generation of a2 recorded a confidence


def test_without_the_column_no_confidence() -> None:
    got = clip_credits(planted(False))
    assert S.CONFIDENCE not in got.columns
    assert got[S.WEIGHT].to_list() == pytest.approx([0.8, 0.4, 0.8])


def test_labels_follow_the_documented_thresholds() -> None:
    clips = pl.DataFrame({S.CONFIDENCE: [0.8, 0.7999, 0.5, 0.4999, None]},
                         schema={S.CONFIDENCE: pl.Float64})
    assert clip_table(clips)[RESEMBLANCE].to_list() == [
        "resembles strongly", "resembles weakly", "resembles weakly", "no clear resemblance",
        None]


def post(engine: Engine, period: str, credits: pl.DataFrame | None) -> None:
    req = request(list(AMOUNTS), period=period, pool=sum(AMOUNTS.values()), tag=period)
    if credits is not None:
        req = posting.BatchRequest(**{**req.__dict__, "clip_credits": credits})
    with write_session(engine) as s, s.begin():
        post_batch = posting.post_batch
        post_batch(s, req, allocator(AMOUNTS))


def violations(engine: Engine) -> list[str]:
    with read_session(engine) as s:
        return [str(v) for v in verify(s).violations]


@pytest.mark.parametrize("with_confidence", [True, False])
def test_posted_confidence_reads_back_and_verifies(db_url: str, with_confidence: bool) -> None:
    engine = open_store(db_url)
    post(engine, "P1", clip_credits(planted(with_confidence)))
    with read_session(engine) as s:
        clips = creator_clip_earnings(s, "alice")
        fmt = s.execute(text("SELECT manifest FROM batches")).scalar_one()
    fmt = (json.loads(fmt) if isinstance(fmt, str) else fmt)["format"]
    assert fmt == posting.MANIFEST_FORMAT == 3
    conf = dict(zip(clips[S.CLIP_ID].to_list(), clips[S.CONFIDENCE].to_list()))
    if with_confidence:
        assert conf["a1"] == pytest.approx(0.85) and conf["a2"] is None
        assert clip_table(clips)[RESEMBLANCE].to_list() == ["resembles strongly", None]
    else:
        assert conf == {"a1": None, "a2": None}
    assert violations(engine) == []
    engine.dispose()


def test_forged_confidence_is_caught(db_url: str) -> None:
    engine = open_store(db_url)
    post(engine, "P1", clip_credits(planted(True)))
    post(engine, "P2", clip_credits(planted(False)))
    with pytest.raises(DBAPIError):  # the append-only trigger is still on the table
        with engine.begin() as conn:
            conn.execute(text("UPDATE batch_clip_credits SET confidence = 0.99"))
    assert violations(engine) == []
    drop_triggers(engine)
    with engine.begin() as conn:  # weak to strong in P1; a confidence where P2 had none
        conn.execute(text("UPDATE batch_clip_credits SET confidence = 0.99 "
                          "WHERE clip_id IN ('b1', 'a2')"))
    found = violations(engine)
    assert len([v for v in found if "credits_sha256" in v]) == 2, found
    engine.dispose()


def test_format_2_ledger_migrated_still_verifies(db_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch posted as before the column (format 2 manifest, credits without
    confidence), the column dropped and added again by the migration, then a
    format 3 batch with confidence: both verify, and the table stays append-only."""
    engine = open_store(db_url)
    monkeypatch.setattr(posting, "MANIFEST_FORMAT", 2)
    post(engine, "P1", clip_credits(planted(False)))
    monkeypatch.undo()
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0006")
    with engine.connect() as conn:
        cols = conn.execute(text("SELECT * FROM batch_clip_credits")).keys()
    assert S.CONFIDENCE not in cols
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
    with pytest.raises(DBAPIError):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM batch_clip_credits"))
    post(engine, "P2", clip_credits(planted(True)))
    with engine.connect() as conn:
        formats = [json.loads(m)["format"] if isinstance(m, str) else m["format"]
                   for m in conn.execute(text("SELECT manifest FROM batches ORDER BY seq"))
                   .scalars()]
    assert formats == [2, 3]
    assert violations(engine) == []
    drop_triggers(engine)  # a confidence planted on the format 2 batch, which never had one
    with engine.begin() as conn:
        conn.execute(text("UPDATE batch_clip_credits SET confidence = 0.9 WHERE batch_id = "
                          "(SELECT batch_id FROM batches WHERE seq = 1)"))
    found = violations(engine)
    assert any("format 2 never recorded" in v for v in found), found
    engine.dispose()


def test_statement_clips_csv_names_the_resemblance(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """End to end: attributions with confidence -> batch run -> statement clips CSV."""
    data = tmp_path / "data"
    write_dataset(data, 6, confidence=True)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    assert run(capsys, data, db, tmp_path, policy=POLICY)[0] == 0
    code, _out, err = cli(capsys, "statement", "--creator", "c0000001", "--db", db,
                          "--out", tmp_path)
    assert code == 0, err
    clips = pl.read_csv(tmp_path / "statement-c0000001-clips.csv")
    assert clips[S.CLIP_ID].to_list() == ["k0000001"]
    assert clips[S.CONFIDENCE].to_list() == pytest.approx([0.825])
    assert clips[RESEMBLANCE].to_list() == ["resembles strongly"]
    code, _out, err = cli(capsys, "statement", "--creator", "c0000002", "--db", db,
                          "--out", tmp_path)
    clips = pl.read_csv(tmp_path / "statement-c0000002-clips.csv")
    assert clips[S.CONFIDENCE].to_list() == pytest.approx([0.475])
    assert clips[RESEMBLANCE].to_list() == ["no clear resemblance"]
