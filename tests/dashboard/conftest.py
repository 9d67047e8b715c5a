"""Fixtures for the dashboard: a ledger database built from the committed sample data.

Two periods are posted (the second with 10% more revenue) so that trends have
two points; ``CREATOR_A`` and ``CREATOR_B`` are two paid creators whose rows
must never meet. Users come from :func:`dashboard.auth.create_demo_users`.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from contract import schema as S
from tests.conftest import ROOT, SAMPLES

POLICY = ROOT / "policies" / "default.toml"
PERIODS = ("2026-09", "2026-10")


@dataclass(frozen=True)
class DemoDb:
    """A posted ledger and the logins of its users."""

    url: str
    data_dirs: dict[str, Path]
    logins: dict[str, tuple[str, str]]  # username -> (password, role)
    creator_a: str
    creator_b: str


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def post_period(url: str, data_dir: Path, period: str, policy_path: Path) -> None:
    """Post one period's batch the way ``residuals batch run`` does (allocate, then post)."""
    from contract.io import load_dataset
    from ledger.allocate import from_dataset, allocate
    from ledger.policy import load_policy
    from ledger.store import open_store, write_session
    from ledger.store.posting import BatchLines, BatchRequest, post_batch

    ds = load_dataset(data_dir)
    policy = load_policy(policy_path)
    attributions = ds.attributions
    credits = attributions.group_by(S.CREATOR_ID, S.CLIP_ID).agg(pl.col(S.WEIGHT).sum())
    from ledger.allocate import pool_from

    pool, currency = pool_from(policy, ds.accounts)
    request = BatchRequest(
        period=period, currency=currency, pool_minor=pool, policy_name=policy.name,
        policy_text=policy.text,
        input_hashes={p.name: _sha(p) for p in sorted(data_dir.glob("*.parquet"))},
        creators=ds.creators.select(S.CREATOR_ID, S.DISPLAY_NAME), clip_credits=credits,
        context={"data_dir": str(data_dir)},
    )

    def allocator(carried: pl.DataFrame) -> BatchLines:
        alloc = allocate(policy, from_dataset(ds, attributions, carried), pool_minor=pool,
                         currency=currency, batch_id=request.batch_id)
        return BatchLines(alloc.frame, alloc.withheld_minor)

    engine = open_store(url)
    with write_session(engine) as session, session.begin():
        post_batch(session, request, allocator)
    engine.dispose()


def make_data_dir(out: Path, revenue_factor: float) -> Path:
    """The committed sample with its attributions computed, revenue scaled by a factor."""
    from contract.io import load_dataset
    from residuals.pipeline import attribution_for

    out.mkdir(parents=True)
    for name in (S.CREATORS, S.CLIPS, S.GENERATIONS):
        shutil.copy(SAMPLES / name.filename, out / name.filename)
    accounts = pl.read_parquet(SAMPLES / S.ACCOUNTS.filename)
    accounts.with_columns((pl.col(S.REVENUE_MINOR) * revenue_factor).round(0).cast(pl.Int64)
                          ).write_parquet(out / S.ACCOUNTS.filename)
    cached = out.parent / "attributions.parquet"
    if not cached.exists():
        attribution_for(load_dataset(out)).write_parquet(cached)
    shutil.copy(cached, out / S.ATTRIBUTIONS.filename)
    return out


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> DemoDb:
    from sqlalchemy.orm import Session

    from dashboard.auth import create_demo_users
    from ledger.store import open_store

    root = tmp_path_factory.mktemp("dashboard-db")
    url = f"sqlite:///{root / 'ledger.db'}"
    dirs = {}
    for i, period in enumerate(PERIODS):
        dirs[period] = make_data_dir(root / period, 1.0 + 0.1 * i)
        post_period(url, dirs[period], period, POLICY)
    # Two creators who were paid in the last period and whose names do not contain each other.
    engine = open_store(url)
    with Session(engine) as session:
        from ledger.store.read import creator_statement  # noqa: F401 - documents the source
        from ledger.store import models

        from sqlalchemy import select

        rows = session.execute(
            select(models.Statement.creator_id)
            .join(models.Batch, models.Batch.batch_id == models.Statement.batch_id)
            .where(models.Batch.period == PERIODS[-1], models.Statement.paid_minor > 0)
            .order_by(models.Statement.paid_minor.desc())
        ).scalars().all()
    a, b = rows[1], rows[2]
    with Session(engine) as session, session.begin():
        logins = create_demo_users(session, [a, b])
    engine.dispose()
    return DemoDb(url, dirs, {u: (p, r) for u, p, r in logins}, a, b)
