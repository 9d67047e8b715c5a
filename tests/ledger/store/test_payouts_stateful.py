"""Stateful properties of the payout cycle (hypothesis ``RuleBasedStateMachine``).

Any sequence of batches, supersessions, profile changes (holds), exports, status
reports (with failures, returns, duplicates, unknown ids, wrong amounts and
reorderings), cancels and claims (opened as ``copied_clip`` or ``wrong_amount``,
upheld with a pool-funded or platform-funded amount, rejected, or left to expire
on an injected clock) keeps, after every step:

- the entries of every transaction, hence the ledger, summing to zero;
- every creator's payable balance equal to earned - paid + failed + returned +
  canceled + adjustments, computed from the statement lines, the payout events and
  the claim events (not from entries);
- no payout paid twice;
- money out within money in: the net amount paid (paid - returned events) never
  exceeds what the creators were credited, i.e. the pools of the standing batches
  as requested (before pool-funded adjustments were taken from them) less what
  they withheld, plus the platform-funded adjustments. The gross sum of ``paid``
  events has no such bound: returned money is carried and paid again. Stronger,
  net paid + payouts still in flight (pending, held, submitted) + payables equals
  that credited amount exactly;
- every claim in the state the model expects (decided once; expired at its
  deadline when a claims flow ran after it);
- ``verify`` OK;
- on PostgreSQL, the same ledger as SQLite given the same steps (claim events
  included, except the wall-clock time of ``applied`` events).

The clock of the claims starts in 2100, so that the real clock a batch run uses to
expire claims never reaches a deadline: expiry happens only when the test moves
its own clock, and every run is deterministic.

SQLite runs the profile's examples (1,000 under ``HYPOTHESIS_PROFILE=ci``);
PostgreSQL a tenth of them (100 in CI), each against SQLite. Each example starts
from a copy of a migrated empty ledger holding one posted period (a file copy, a
``CREATE DATABASE ... TEMPLATE``, then the ``initialize`` step), so examples are
independent and cheap, and runs up to :data:`STEPS` more steps: enough for a
claim to be opened, upheld and applied by a later batch, then superseded or paid.

The checks after a step that wrote nothing (an export with nothing pending, a
refused transition or decision) would recompute the same answers from the same
rows, so they are skipped: every table they read is append-only (triggers
refuse UPDATE and DELETE), and a step wrote nothing exactly when no table's row
count and no stored balance changed (:func:`_fingerprint`). About half the steps
write nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import Engine, text

from contract.errors import ResidualsError
from ledger.store import claims as C
from ledger.store import models as M
from ledger.store import open_store, read_session, write_session
from ledger.store.payout_states import apply_events, current_states, event_frame, release_or_hold
from ledger.store.profiles import set_profile
from ledger.store.reports import REPORT_COLUMNS, import_report
from ledger.store.verify import verify
from tests.conftest import need
from residuals.workflows import claims as W
from tests.ledger.store.payout_kit import post

CREATORS = ["a", "b", "c"]
STEPS = 8
T0 = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_names = itertools.count()


def _dump(engine: Engine) -> tuple[list, ...]:  # type: ignore[type-arg]
    """The ledger in a backend-neutral form: entries, payout events, statement lines,
    claims with their decisions, claim events (without the time of ``applied`` ones,
    which is the wall clock of the batch run)."""
    with engine.connect() as conn:
        entries = conn.execute(text(
            "SELECT t.kind, t.batch_id, a.code, e.amount_minor FROM entries e "
            "JOIN transactions t ON t.id = e.transaction_id JOIN accounts a ON a.id = e.account_id "
            "ORDER BY t.batch_id, t.kind, a.code, e.amount_minor")).all()
        events = conn.execute(text(
            "SELECT payout_id, seq, state, reason, provider_reference, failure_code, "
            "transaction_id IS NULL FROM payout_events ORDER BY payout_id, seq")).all()
        lines = conn.execute(text(
            "SELECT batch_id, creator_id, allocated_minor, carried_in_minor, paid_minor, "
            "carried_out_minor FROM statements ORDER BY batch_id, creator_id")).all()
    with read_session(engine) as s:
        claims = C.claims(s).rows()
        claim_events = C.claim_events(s).with_columns(
            pl.when(pl.col("outcome") == M.APPLIED).then(None).otherwise(pl.col("at"))
            .alias("at")).rows()
    return ([tuple(r) for r in entries], [tuple(r) for r in events], [tuple(r) for r in lines],
            claims, claim_events)


_APPLIED_UPHELD = (
    "FROM claim_events u JOIN claims c ON c.claim_id = u.claim_id WHERE u.outcome = 'upheld' "
    "AND EXISTS (SELECT 1 FROM claim_events a WHERE a.claim_id = u.claim_id AND "
    "a.outcome = 'applied' AND a.batch_id NOT IN (SELECT supersedes_id FROM batches "
    "WHERE supersedes_id IS NOT NULL))")
"""The upheld claims a standing batch applied (from the claim events, not entries)."""


def _expected_payables(engine: Engine) -> dict[str, int]:
    """earned - paid (standing batches' lines) + failed + returned + canceled (payout
    events) + adjustments (upheld claims a standing batch applied)."""
    with engine.connect() as conn:
        lines = conn.execute(text(
            "SELECT s.creator_id, sum(s.allocated_minor - s.paid_minor) FROM statements s "
            "WHERE s.batch_id NOT IN (SELECT supersedes_id FROM batches "
            "WHERE supersedes_id IS NOT NULL) GROUP BY s.creator_id")).all()
        back = conn.execute(text(
            "SELECT p.creator_id, sum(p.amount_minor) FROM payout_events e JOIN payouts p "
            "ON p.payout_id = e.payout_id WHERE e.state IN ('failed', 'returned', 'canceled') "
            "AND coalesce(e.reason, '') <> 'superseded' GROUP BY p.creator_id")).all()
        adjusted = conn.execute(text(
            f"SELECT c.creator_id, sum(u.amount_minor) {_APPLIED_UPHELD} GROUP BY c.creator_id"
        )).all()
    out: dict[str, int] = {}
    for c, v in [*lines, *back, *adjusted]:
        out[c] = out.get(c, 0) + int(v)
    return {c: v for c, v in out.items() if v}


def _payables(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT a.creator_id, sum(e.amount_minor) FROM entries e JOIN accounts a "
            "ON a.id = e.account_id WHERE a.kind = 'creator_payable' GROUP BY a.creator_id")).all()
    return {c: int(v) for c, v in rows if v}


class PayoutCycle(RuleBasedStateMachine):
    """The same steps on every engine of :attr:`make` (one, or SQLite and PostgreSQL)."""

    make: list = []  # type: ignore[type-arg]  # zero-argument functions returning an engine
    workdir: Path = Path(".")

    def __init__(self) -> None:
        super().__init__()
        self.engines = [m() for m in self.make]
        self.periods = 0
        self.tag = 0
        self.now = T0
        self.claims: dict[int, list] = {}  # type: ignore[type-arg]  # id -> [deadline, state]
        self.checked: list[tuple] = []  # type: ignore[type-arg]  # fingerprints last verified

    def teardown(self) -> None:
        for e in self.engines:
            e.dispose()
            if e.url.get_backend_name() == "sqlite":  # each example's own directory
                shutil.rmtree(Path(str(e.url.database)).parent, ignore_errors=True)

    def each(self, fn):  # type: ignore[no-untyped-def]
        """Run ``fn(engine)`` on every engine; all raise alike or none does."""
        outcomes = []
        for e in self.engines:
            try:
                outcomes.append(("ok", fn(e)))
            except ResidualsError as exc:
                outcomes.append(("error", type(exc).__name__))
        assert len({repr(o) for o in outcomes}) == 1, outcomes
        return outcomes[0]

    @initialize(amounts=st.lists(st.integers(0, 3000), min_size=3, max_size=3))
    def first_batch(self, amounts: list[int]) -> None:
        """Every run starts from a posted period (an empty ledger is tested elsewhere), so
        its steps go to the cycle: claims need a period, adjustments a next batch."""
        self.post_batch(amounts, supersede=False)

    @rule(amounts=st.lists(st.integers(0, 3000), min_size=3, max_size=3),
          supersede=st.booleans())
    def post_batch(self, amounts: list[int], supersede: bool) -> None:
        if sum(amounts) == 0:
            amounts = [1, 0, 0]
        supersede = supersede and self.periods > 0
        if not supersede:
            self.periods += 1
        self.tag += 1
        period = f"P{self.periods}"
        self.each(lambda e: post(e, period, dict(zip(CREATORS, amounts)), supersede=supersede,
                                 tag=f"t{self.tag}"))

    @rule(creator=st.sampled_from(CREATORS), complete=st.booleans())
    def profile(self, creator: str, complete: bool) -> None:
        def run(e: Engine) -> None:
            with write_session(e) as s, s.begin():
                set_profile(s, creator, payout_method=f"{creator}@x.org",
                            tax_form="accepted" if complete else "submitted")
                release_or_hold(s, creator, source="profile")
        self.each(run)

    @rule()
    def export(self) -> None:
        def run(e: Engine) -> None:
            with write_session(e) as s, s.begin():
                pending = current_states(s).filter(pl.col("state") == "pending")
                apply_events(s, event_frame(pending["payout_id"].to_list(), "submitted",
                                            source="export"))
        self.each(run)

    @rule(data=st.data())
    def report(self, data: st.DataObject) -> None:
        with read_session(self.engines[0]) as s:
            known = current_states(s).sort("payout_id")
        if known.height == 0:
            return
        rows = data.draw(st.lists(st.tuples(
            st.integers(0, known.height), st.sampled_from(["paid", "failed", "returned",
                                                             "canceled"]),
            st.integers(1, 5), st.sampled_from([0, 0, 0, 1])), max_size=6))
        lines = []
        for i, status, day, off in rows:  # a handful of report lines
            pid = known["payout_id"][i] if i < known.height else "po_unknown"
            amount = (known["amount_minor"][i] if i < known.height else 1) + off
            lines.append((pid, status, f"ref{i}", "", amount, "USD", f"2026-11-0{day}"))
        path = self.workdir / f"report-{next(_names)}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(REPORT_COLUMNS)
            w.writerows(lines)

        def run(e: Engine) -> dict[str, int]:
            with write_session(e) as s, s.begin():
                return import_report(s, path).counts
        self.each(run)
        again = self.each(run)[1]  # the same report again: nothing new
        assert again["matched"] == 0

    @rule(data=st.data(), state=st.sampled_from(["canceled", "held", "pending"]))
    def change(self, data: st.DataObject, state: str) -> None:
        with read_session(self.engines[0]) as s:
            known = current_states(s).sort("payout_id")
        if known.height == 0:
            return
        pid = known["payout_id"][data.draw(st.integers(0, known.height - 1))]

        def run(e: Engine) -> None:
            with write_session(e) as s, s.begin():
                apply_events(s, event_frame([pid], state, source="test", reason="test"))
        self.each(run)

    # ---- claims: opened, decided, expired on the test's clock -------------------------

    def _expire_model(self) -> None:
        """What every claims flow records first: open claims past their deadline expire."""
        for claim in self.claims.values():
            if claim[1] == C.OPEN and claim[0] <= self.now:
                claim[1] = M.EXPIRED

    @rule(creator=st.sampled_from(CREATORS), copied=st.booleans(), period=st.integers(0, 3),
          days=st.integers(1, 20))
    def open_claim(self, creator: str, copied: bool, period: int, days: int) -> None:
        period = min(period, self.periods)  # P0 was never posted
        claim = W.NewClaim(
            creator_id=creator, kind=M.COPIED_CLIP if copied else M.WRONG_AMOUNT,
            period=f"P{period}", opened_by=creator, expiry_days=days,
            generation_id="g1" if copied else None, clip_id=f"{creator}-clip1" if copied else None,
            text=None if copied else "my share of 'P' looks <b>wrong</b>")
        outcome = self.each(lambda e: W.open_claim(e, claim, now=self.now))
        self._expire_model()
        # refused exactly when the period has no batch (P0, or nothing posted yet)
        assert (outcome[0] == "ok") == (period >= 1), outcome
        if outcome[0] == "ok":
            assert outcome[1] not in self.claims
            self.claims[outcome[1]] = [self.now + dt.timedelta(days=days), C.OPEN]

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data(), how=st.sampled_from([M.FUNDING_POOL, M.FUNDING_PLATFORM, "reject"]),
          amount=st.integers(1, 4000))
    def resolve(self, data: st.DataObject, how: str, amount: int) -> None:
        cid = data.draw(st.sampled_from(sorted(self.claims)))
        outcome = self.each(lambda e: W.resolve_claim(
            e, cid, uphold=how != "reject", amount=f"{amount // 100}.{amount % 100:02d}",
            funding=how if how != "reject" else M.FUNDING_POOL, reason="no copy found",
            actor="staff", now=self.now))
        self._expire_model()
        if self.claims[cid][1] != C.OPEN:  # decided or expired: refused
            assert outcome[0] == "error", outcome
            return
        want = M.REJECTED if how == "reject" else M.UPHELD
        assert outcome == ("ok", want)
        self.claims[cid][1] = want

    @precondition(lambda self: bool(self.claims))
    @rule(days=st.integers(1, 25))
    def tick(self, days: int) -> None:
        """Move the clock; listing the claims records the ones that expired."""
        self.now += dt.timedelta(days=days)
        self.each(lambda e: W.list_claims(e, now=self.now).height)
        self._expire_model()

    # ---- after every step -----------------------------------------------------------

    @invariant()
    def ledger_holds(self) -> None:
        prints = [_fingerprint(e) for e in self.engines]
        if prints != self.checked:  # a step that wrote nothing leaves verify's answer as it was
            dumps = []
            for e in self.engines:
                _money_holds(e)
                with read_session(e) as s:
                    report = verify(s)
                assert report.ok, [str(v) for v in report.violations]
                dumps.append(_dump(e))
            assert all(d == dumps[0] for d in dumps)
            self.checked = prints
        if self.claims:  # the engines agree (dumps), so one of them is asked
            with read_session(self.engines[0]) as s:
                got = dict(C.claims(s).select(C.CLAIM_ID, C.STATE).iter_rows())
            assert got == {cid: c[1] for cid, c in self.claims.items()}


_VERIFIED_TABLES = ("accounts", "batches", "transactions", "transaction_seals", "entries",
                    "statements", "batch_clip_credits", "payouts", "payout_events", "claims",
                    "claim_events")
"""Every table verify and the checks here read; each is append-only (triggers refuse
UPDATE and DELETE), so its row count tells whether a step changed it."""


def _fingerprint(engine: Engine) -> tuple:  # type: ignore[type-arg]
    """The row count of each of :data:`_VERIFIED_TABLES` and every stored balance (the one
    table a posting updates): equal fingerprints, equal ledgers, equal verify reports."""
    counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in _VERIFIED_TABLES)
    with engine.connect() as conn:
        return (tuple(conn.execute(text(counts)).all()), tuple(conn.execute(text(
            "SELECT account_id, currency, balance_minor FROM balances ORDER BY account_id, "
            "currency")).all()))


def _money_holds(e: Engine) -> None:
    """Entries sum to zero, no payout paid twice, payables as the lines and events say,
    money out within (and exactly accounted for by) money in."""
    with e.connect() as conn:
        one = lambda sql: int(conn.execute(text(sql)).scalar_one() or 0)  # noqa: E731
        assert one("SELECT sum(amount_minor) FROM entries") == 0
        assert one("SELECT count(*) FROM (SELECT payout_id FROM payout_events WHERE "
                   "state = 'paid' GROUP BY payout_id HAVING count(*) > 1) x") == 0
        net_paid = one("SELECT sum(CASE e.state WHEN 'paid' THEN p.amount_minor ELSE "
                       "-p.amount_minor END) FROM payout_events e JOIN payouts p ON "
                       "p.payout_id = e.payout_id WHERE e.state IN ('paid', 'returned')")
        standing = ("FROM batches WHERE batch_id NOT IN (SELECT supersedes_id FROM batches "
                    "WHERE supersedes_id IS NOT NULL)")
        credited = (one(f"SELECT sum(pool_minor - withheld_minor) {standing}")
                    + one(f"SELECT sum(u.amount_minor) {_APPLIED_UPHELD}"))
        in_flight = one(
            "SELECT sum(p.amount_minor) FROM payouts p JOIN payout_events e ON "
            "e.payout_id = p.payout_id WHERE e.seq = (SELECT max(seq) FROM payout_events l "
            "WHERE l.payout_id = p.payout_id) AND e.state IN ('pending', 'held', 'submitted')")
    payables = _expected_payables(e)
    assert _payables(e) == payables
    assert net_paid <= credited
    assert net_paid + in_flight + sum(payables.values()) == credited


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "ledger.db"
    open_store(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """Where the examples' SQLite ledgers live: the memory-backed ``/dev/shm`` when there
    is one (every step commits, and a disk's fsync per commit would be most of the wall
    time), else ``tmp_path``; removed after the test."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    root = Path(tempfile.mkdtemp(dir=shm, prefix="residuals-stateful-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _sqlite_maker(template: Path, root: Path):  # type: ignore[no-untyped-def]
    """A fresh copy of the migrated ledger per example, in its own directory under ``root``
    (removed when the example ends)."""
    def make() -> Engine:
        path = Path(tempfile.mkdtemp(dir=root)) / "ledger.db"
        shutil.copyfile(template, path)
        return open_store(f"sqlite:///{path}")
    return make


def test_payout_cycle_sqlite(sqlite_template: Path, scratch: Path, tmp_path: Path) -> None:
    PayoutCycle.make = [_sqlite_maker(sqlite_template, scratch)]
    PayoutCycle.workdir = tmp_path
    run = PayoutCycle.TestCase
    run.settings = settings(settings.default, stateful_step_count=STEPS)
    run().runTest()


def test_payout_cycle_postgresql_equals_sqlite(  # type: ignore[no-untyped-def]
        sqlite_template: Path, scratch: Path, tmp_path: Path, pg_server) -> None:
    need(pg_server is not None, "PostgreSQL server binaries (initdb, pg_ctl) not installed")
    tmpl = f"tmpl_{next(_names)}_{id(tmp_path) % 100000}"
    pg_server.admin(f"CREATE DATABASE {tmpl}")
    open_store(pg_server.url(tmpl)).dispose()

    def make_pg() -> Engine:
        name = f"sm_{next(_names)}_{id(tmp_path) % 100000}"
        pg_server.admin(f"CREATE DATABASE {name} TEMPLATE {tmpl}")
        return open_store(pg_server.url(name))

    PayoutCycle.make = [_sqlite_maker(sqlite_template, scratch), make_pg]
    PayoutCycle.workdir = tmp_path
    run = PayoutCycle.TestCase
    run.settings = settings(settings.default, stateful_step_count=STEPS,
                            max_examples=max(10, settings.default.max_examples // 10))
    run().runTest()

