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
from decimal import Decimal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
from contract import schema as S
from contract.errors import ResidualsError
from residuals.workflows.attribution import Attributed, attribute, capped, catalogue_size
from residuals.workflows.claims import NewClaim, list_claims, open_claim, resolve_claim
from residuals.workflows.disbursement import Exported, export_payouts, import_report
from residuals.workflows.payout import BatchResult, BatchRun, Verified, run_batch, verify_ledger

DEFAULT_PERIOD = "2026-10"
DEFAULT_SEED = 2026
"""The seed ``data/samples`` was made with (the next period is drawn from it)."""
CLAIM_AMOUNT_MINOR = 500
"""What the demo's upheld claim adds, in minor units (5.00 in a two-decimal currency)."""
EXPORT_FORMAT = "csv"


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
    seed: int = DEFAULT_SEED
    periods: int = 2

    @property
    def stages(self) -> int:
        """How many stages the demo reports (the dashboard being the last)."""
        return 9 if self.periods == 2 else 6


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
    def cycled(self, cycle: Cycle) -> None: ...
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


def next_label(period: str) -> str:
    """The period after ``period`` (``YYYY-MM``)."""
    year, month = (int(x) for x in period.split("-"))
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


@dataclass(frozen=True)
class Cycle:
    """The payout cycle between the two periods: who is held, what was exported, what
    the provider reported, and the claim upheld (``None``: done by an earlier run)."""

    period: str
    next_period: str
    currency: str
    held_creator: str
    exported: Exported | None
    export_file: Path
    report_file: Path
    reconciliation: Any  # ledger.store.reports.Reconciliation
    failed_creator: str
    claim_id: int
    claim_creator: str
    claim_amount_minor: int


def set_demo_profiles(db: str, creators: pl.DataFrame) -> int:
    """Give every creator without a profile a complete one (payout method, country,
    accepted tax form), releasing payouts held for want of one (a ledger posted by a
    one-period demo); returns how many were set."""
    from sqlalchemy import select

    from ledger.store import models as M
    from ledger.store.engine import open_store, write_session
    from ledger.store.payout_states import current_states, release_or_hold
    from ledger.store.profiles import set_profiles

    engine = open_store(db)
    try:
        with write_session(engine) as s, s.begin():
            known = set(s.execute(select(M.CreatorProfile.creator_id).distinct()).scalars())
            if S.COUNTRY not in creators.columns:
                creators = creators.with_columns(pl.lit(None, pl.String).alias(S.COUNTRY))
            todo = creators.filter(~pl.col(S.CREATOR_ID).is_in(list(known)))
            set_profiles(s, todo.select(
                S.CREATOR_ID, (pl.col(S.CREATOR_ID) + "@example.com").alias("payout_method"),
                S.COUNTRY, pl.lit("accepted").alias("tax_form")))
            held = current_states(s).filter((pl.col("state") == M.HELD)
                                             & pl.col(S.CREATOR_ID).is_in(todo[S.CREATOR_ID]))
            for cid in held[S.CREATOR_ID].unique().sort():  # only after a one-period run
                release_or_hold(s, cid, source="profile")
    finally:
        engine.dispose()
    return todo.height


def hold_for_tax_form(db: str, creator_id: str) -> None:
    """The creator's tax form goes missing: their pending payouts are held."""
    from ledger.store.engine import open_store, write_session
    from ledger.store.payout_states import release_or_hold
    from ledger.store.profiles import current_profile, set_profile

    engine = open_store(db)
    try:
        with write_session(engine) as s, s.begin():
            if current_profile(s, creator_id).tax_form != "missing":
                set_profile(s, creator_id, tax_form="missing")
                release_or_hold(s, creator_id, source="demo")
    finally:
        engine.dispose()


def provider_report(export_file: Path, failed_creator: str, path: Path) -> None:
    """A provider status report for an exported CSV: every payout paid but the one of
    ``failed_creator``, which failed (account closed)."""
    from contract.io import atomic_output

    rows = pl.read_csv(export_file, schema_overrides={S.AMOUNT_MINOR: pl.Int64})
    failed = pl.col(S.CREATOR_ID) == failed_creator
    report = rows.select(
        "payout_id", pl.when(failed).then(pl.lit("failed")).otherwise(pl.lit("paid"))
        .alias("status"), pl.concat_str(pl.lit("demo-"), pl.col("payout_id").str.slice(0, 12))
        .alias("provider_reference"), pl.when(failed).then(pl.lit("account_closed"))
        .alias("failure_code"), S.AMOUNT_MINOR, S.CURRENCY,
        pl.lit(f"{next_label(rows[S.PERIOD][0])}-05T12:00:00Z").alias("occurred_at"))
    with atomic_output(path) as tmp:
        report.write_csv(tmp)


def demo_claim(db: str, work: Path, period: str, creator_id: str, currency: str) -> int:
    """Open a claim of ``creator_id`` ("this generation copied my clip": their clip with
    the largest weight) and uphold it, paid from the next batch's pool; returns its id.
    An earlier run's claim of the creator is kept (and upheld if still open)."""
    from ledger.money import exponent
    from ledger.store.claims import OPEN, STATE

    earlier = list_claims(db, creator_id=creator_id)
    if earlier.height and earlier[STATE][0] != OPEN:
        return int(earlier["claim_id"][0])
    if earlier.height:
        claim_id = int(earlier["claim_id"][0])
    else:
        top = (pl.scan_parquet(work / S.ATTRIBUTIONS.filename)
               .filter(pl.col(S.CREATOR_ID) == creator_id)
               .sort([S.WEIGHT, S.GENERATION_ID], descending=[True, False]).head(1).collect())
        if top.height == 0:
            raise ResidualsError(f"creator {creator_id!r} has no attributions in {work}")
        claim_id = open_claim(db, NewClaim(
            creator_id=creator_id, kind="copied_clip", period=period, opened_by=creator_id,
            generation_id=top[S.GENERATION_ID][0], clip_id=top[S.CLIP_ID][0]))
    amount = str(Decimal(CLAIM_AMOUNT_MINOR).scaleb(-exponent(currency)))
    resolve_claim(db, claim_id, uphold=True, amount=amount, funding="pool", actor="admin")
    return claim_id


def payout_cycle(run: DemoRun, work: Path, first: BatchSummary) -> Cycle:
    """Hold the second-largest earner (tax form missing), export the period's pending
    payouts, import a report in which the largest earner's payout failed, and uphold a
    claim of theirs; each step only once across runs."""
    period, cur = first.batch[S.PERIOD], first.batch[S.CURRENCY]
    paid = first.top.filter(pl.col(S.PAID_MINOR) > 0)[S.CREATOR_ID]
    if paid.len() < 2:
        raise ResidualsError(f"period {period}: fewer than two creators paid; the demo's "
                             "payout cycle needs two")
    failing, held = paid[0], paid[1]
    hold_for_tax_form(run.db, held)
    export_file = work / f"export-{period}.{EXPORT_FORMAT}"
    exported = None
    if not export_file.exists():
        exported = export_payouts(run.db, period, EXPORT_FORMAT, export_file)
    report_file = work / f"provider-report-{period}.csv"
    if not report_file.exists():
        provider_report(export_file, failing, report_file)
    reconciliation = import_report(run.db, report_file)
    claim_id = demo_claim(run.db, work, period, failing, cur)
    return Cycle(period, next_label(period), cur, held, exported, export_file, report_file,
                 reconciliation, failing, claim_id, failing, CLAIM_AMOUNT_MINOR)


def _attributed(run: DemoRun, workdir: Path, report: DemoReport) -> None:
    path = workdir / S.ATTRIBUTIONS.filename
    done = None
    if not path.exists():
        clips = workdir / S.CLIPS.filename
        k, depth = capped(DEFAULT_K, DEFAULT_DEPTH, catalogue_size(clips))
        done = attribute(clips, workdir / S.GENERATIONS.filename, path, method=run.method,
                         k=k, depth=depth, scheduler=run.scheduler)
    report.attributed(path, done)


def _post(run: DemoRun, period: str, workdir: Path, report: DemoReport) -> BatchSummary:
    report.posted(run_batch(BatchRun(period=period, policy_path=run.policy, data=workdir,
                                     out=workdir, db=run.db, method=run.method)))
    summary = batch_summary(run.db, period)
    b = summary.batch
    if summary.allocated + b[S.WITHHELD_MINOR] != b[S.POOL_MINOR]:
        raise ResidualsError(f"batch {b[S.BATCH_ID][:12]}: allocated + withheld != pool")
    return summary


def next_sample(run: DemoRun, period: str) -> Path:
    """The next period's sample (same catalogue as ``run.data``), beside the work
    directories; written again on every run (same bytes)."""
    from residuals.samples import next_period

    out = run.work / f"samples-{period}"
    next_period(run.data, out, seed=run.seed)
    return out


def demo(run: DemoRun, report: DemoReport) -> BatchSummary:
    """Profiles, the first period, the payout cycle, the next period, verify, summary,
    logins (see the module rule); ``run.periods == 1`` stops after the first period.

    Returns the last period's summary; raises when a batch breaks conservation (before
    any login is created).
    """
    first = prepare_workdir(run.data, run.work / run.period)
    n = iter(range(1, run.stages))
    report.stage(next(n), f"attribution: generations of {run.data} against its clips")
    _attributed(run, first, report)
    report.stage(next(n), f"payout batch for {run.period} under {run.policy}")
    if run.periods == 2:
        set_demo_profiles(run.db, pl.read_parquet(first / S.CREATORS.filename))
    summary = _post(run, run.period, first, report)
    if run.periods == 2:
        report.stage(next(n), "payout cycle: a hold, export, provider report, a claim")
        cycle = payout_cycle(run, first, summary)
        report.cycled(cycle)
        second = prepare_workdir(next_sample(run, cycle.next_period),
                                 run.work / cycle.next_period)
        report.stage(next(n), f"attribution: the next period's generations ({second})")
        _attributed(run, second, report)
        report.stage(next(n), f"payout batch for {cycle.next_period} under {run.policy}")
        summary = _post(run, cycle.next_period, second, report)
    report.stage(next(n), "ledger verify")
    report.verified(verify_ledger(run.db, recompute=True))
    report.stage(next(n), "summary")
    report.summarised(summary)
    report.stage(next(n), "dashboard logins")
    report.logins(demo_logins(run.db, summary.top[S.CREATOR_ID].head(2).to_list()))
    return summary
