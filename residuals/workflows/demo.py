"""The demo: the whole pipeline on one data directory, as ``make demo`` runs it.

Rule: the demo holds no logic of its own; it calls the workflows of the
commands it stands for, in order: :func:`~residuals.workflows.attribution.attribute`
(into a work directory beside copies of the contract tables, so the batch
manifest names inputs that stay put), :func:`~residuals.workflows.payout.run_batch`,
:func:`~residuals.workflows.payout.verify_ledger`, a summary read back from the
ledger, and demo logins. It prints nothing: each step's result goes to a
:class:`DemoReport`. Running it twice is safe: the batch is recognised and not
posted again.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
from contract import schema as S
from contract.errors import ResidualsError
from residuals.workflows.attribution import Attributed, attribute, capped, catalogue_size
from residuals.workflows.payout import BatchResult, BatchRun, Verified, run_batch, verify_ledger

DEFAULT_PERIOD = "2026-10"


@dataclass(frozen=True)
class DemoRun:
    """The demo's inputs: a data directory, a ledger, a policy, a period, a work directory."""

    data: Path
    db: str
    policy: Path
    period: str = DEFAULT_PERIOD
    work: Path = Path("data/demo")
    method: str | None = None
    scheduler: str | None = None


@dataclass(frozen=True)
class BatchSummary:
    """The standing batch of a period: its row, totals, top earners and Gini."""

    batch: dict[str, Any]
    allocated: int
    creators_earning: int
    creators_paid: int
    carried: int
    gini: float
    top: pl.DataFrame


class DemoReport(Protocol):
    """Receives each step of :func:`demo` as it happens (the command prints them)."""

    def stage(self, n: int, text: str) -> None: ...
    def attributed(self, path: Path, done: Attributed | None) -> None: ...
    def posted(self, result: BatchResult) -> None: ...
    def verified(self, result: Verified) -> None: ...
    def summarised(self, summary: BatchSummary) -> None: ...
    def logins(self, logins: list[tuple[str, str, str]]) -> None: ...


def prepare_workdir(data: Path, work: Path) -> Path:
    """Copy the contract tables of ``data`` into ``work`` (attributions are computed there).

    When any table differs from the copy already there, the work directory's
    attributions are removed so they are computed again from the new inputs.
    """
    work.mkdir(parents=True, exist_ok=True)
    changed = False
    for table in (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS):
        src = data / table.filename
        if not src.is_file():
            raise ResidualsError(f"{src}: file not found (expected the {table.name} table)")
        dst = work / table.filename
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)
            changed = True
    if changed:  # attributions computed from other inputs are stale
        (work / S.ATTRIBUTIONS.filename).unlink(missing_ok=True)
    return work


def batch_summary(db: str, period: str, top: int = 10) -> BatchSummary:
    """The standing batch of ``period`` read back from the ledger: totals, top payouts, Gini."""
    from ledger.fairness import gini
    from ledger.store.engine import open_store, read_session
    from ledger.store.read import batch_lines, batches, display_names

    engine = open_store(db)
    try:
        with read_session(engine) as s:
            all_batches = batches(s)
            standing = all_batches.filter((pl.col(S.PERIOD) == period) & ~pl.col(S.SUPERSEDED))
            if standing.height == 0:
                raise ResidualsError(f"no batch for period {period} in {db}")
            batch = standing.row(0, named=True)
            lines = batch_lines(s, batch[S.BATCH_ID]).join(
                display_names(s), on=S.CREATOR_ID, how="left")
    finally:
        engine.dispose()
    earned = lines.filter(pl.col(S.ALLOCATED_MINOR) > 0)
    return BatchSummary(
        batch=batch, allocated=int(lines[S.ALLOCATED_MINOR].sum()),
        creators_earning=earned.height, creators_paid=int((lines[S.PAID_MINOR] > 0).sum()),
        carried=int(lines[S.CARRIED_OUT_MINOR].sum()),
        gini=gini(lines[S.ALLOCATED_MINOR].cast(pl.Float64)),
        top=lines.sort([S.ALLOCATED_MINOR, S.CREATOR_ID], descending=[True, False]).head(top),
    )


def demo_logins(db: str, creators: list[str]) -> list[tuple[str, str, str]]:
    """Create (or keep) the demo users and return their logins."""
    from dashboard.auth import create_demo_users
    from ledger.store.engine import open_store, write_session

    engine = open_store(db)
    try:
        with write_session(engine) as s, s.begin():
            return create_demo_users(s, creators)
    finally:
        engine.dispose()


def demo(run: DemoRun, report: DemoReport) -> BatchSummary:
    """Attribute, post the period's batch, verify the ledger, summarise it, create logins.

    Returns the summary; raises when the summary breaks conservation (before any login
    is created).
    """
    workdir = prepare_workdir(run.data, run.work / run.period)
    report.stage(1, f"attribution: generations of {run.data} against its clips")
    path = workdir / S.ATTRIBUTIONS.filename
    done = None
    if not path.exists():
        clips = workdir / S.CLIPS.filename
        k, depth = capped(DEFAULT_K, DEFAULT_DEPTH, catalogue_size(clips))
        done = attribute(clips, workdir / S.GENERATIONS.filename, path, method=run.method,
                         k=k, depth=depth, scheduler=run.scheduler)
    report.attributed(path, done)
    report.stage(2, f"payout batch for {run.period} under {run.policy}")
    report.posted(run_batch(BatchRun(period=run.period, policy_path=run.policy, data=workdir,
                                     out=workdir, db=run.db, method=run.method)))
    report.stage(3, "ledger verify")
    report.verified(verify_ledger(run.db, recompute=True))
    report.stage(4, "summary")
    summary = batch_summary(run.db, run.period)
    report.summarised(summary)
    b = summary.batch
    if summary.allocated + b[S.WITHHELD_MINOR] != b[S.POOL_MINOR]:
        raise ResidualsError(f"batch {b[S.BATCH_ID][:12]}: allocated + withheld != pool")
    report.stage(5, "dashboard logins")
    report.logins(demo_logins(run.db, summary.top[S.CREATOR_ID].head(2).to_list()))
    return summary
