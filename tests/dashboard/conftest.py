"""Fixtures for the dashboard: a ledger database built from the committed sample data.

Two periods are posted (the second with 10% more revenue) so that trends have
two points; ``CREATOR_A`` and ``CREATOR_B`` are two paid creators whose rows
must never meet. Users come from :func:`dashboard.auth.create_demo_users`.
"""

from __future__ import annotations

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
    root: Path  # holds the payouts-PERIOD.csv files written by ``batch run``
    data_dirs: dict[str, Path]
    logins: dict[str, tuple[str, str]]  # username -> (password, role)
    creator_a: str
    creator_b: str


def post_period(url: str, data_dir: Path, period: str, policy_path: Path, out: Path) -> None:
    """Post one period's batch with ``residuals batch run`` (in-process)."""
    from typer.testing import CliRunner

    from residuals.cli import app

    result = CliRunner().invoke(app, [
        "batch", "run", "--period", period, "--policy", str(policy_path), "--data",
        str(data_dir), "--db", url, "--out", str(out)])
    assert result.exit_code == 0, result.output


def make_data_dir(out: Path, revenue_factor: float) -> Path:
    """The committed sample with its attributions computed, revenue scaled by a factor."""
    from attribution.scorer import write_attributions
    from contract.io import attribution_sources, load_dataset
    from residuals.workflows.attribution import attribution_for

    out.mkdir(parents=True)
    for name in (S.CREATORS, S.CLIPS, S.GENERATIONS):
        shutil.copy(SAMPLES / name.filename, out / name.filename)
    accounts = pl.read_parquet(SAMPLES / S.ACCOUNTS.filename)
    accounts.with_columns((pl.col(S.REVENUE_MINOR) * revenue_factor).round(0).cast(pl.Int64)
                          ).write_parquet(out / S.ACCOUNTS.filename)
    cached = out.parent / "attributions.parquet"
    if not cached.exists():
        write_attributions(attribution_for(load_dataset(out)), cached, attribution_sources(
            out / S.CLIPS.filename, out / S.GENERATIONS.filename))
    shutil.copy(cached, out / S.ATTRIBUTIONS.filename)
    return out


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> DemoDb:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from dashboard.auth import create_demo_users
    from ledger.store import models, open_store

    root = tmp_path_factory.mktemp("dashboard-db")
    url = f"sqlite:///{root / 'ledger.db'}"
    dirs = {}
    for i, period in enumerate(PERIODS):
        dirs[period] = make_data_dir(root / period, 1.0 + 0.1 * i)
        post_period(url, dirs[period], period, POLICY, root)
    # Two creators who were paid in the last period and whose names do not contain each other.
    engine = open_store(url)
    with Session(engine) as session:
        rows = session.execute(
            select(models.Statement.creator_id)
            .join(models.Batch, models.Batch.batch_id == models.Statement.batch_id)
            .where(models.Batch.period == PERIODS[-1], models.Statement.paid_minor > 0)
            .order_by(models.Statement.paid_minor.desc(), models.Statement.creator_id)
        ).scalars().all()
    a, b = rows[1], rows[2]
    with Session(engine) as session, session.begin():
        logins = create_demo_users(session, [a, b])
    engine.dispose()
    return DemoDb(url, root, dirs, {u: (p, r) for u, p, r in logins}, a, b)


@pytest.fixture(autouse=True)
def _forget_chosen_languages(request):  # type: ignore[no-untyped-def]
    """A language picked in the sidebar is stored with the login: forget every choice made
    in the shared ledger after each test, so the next test's logins start in English."""
    yield
    if "demo_db" not in request.fixturenames:
        return
    from sqlalchemy import create_engine, text

    from dashboard.models import USERS

    engine = create_engine(request.getfixturevalue("demo_db").url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {USERS} SET language = NULL WHERE language IS NOT NULL"))
    finally:
        engine.dispose()


# The ledger store's PostgreSQL fixtures: the same login tests run on both backends.
from tests.ledger.store.conftest import db_url, pg_server  # noqa: E402,F401
