"""Stateful properties of the payout cycle (hypothesis ``RuleBasedStateMachine``).

Any sequence of batches, supersessions, profile changes (holds), exports, status
reports (with failures, returns, duplicates, unknown ids, wrong amounts and
reorderings) and cancels keeps, after every step:

- the entries of every transaction, hence the ledger, summing to zero;
- every creator's payable balance equal to earned - paid + failed + returned +
  canceled, computed from the statement lines and the payout events (not entries);
- no payout paid twice, and the paid amounts within the pools;
- ``verify`` OK;
- on PostgreSQL, the same ledger as SQLite given the same steps.

SQLite runs the profile's examples (1,000 under ``HYPOTHESIS_PROFILE=ci``);
PostgreSQL a tenth of them (100 in CI), each against SQLite. Each example starts
from a copy of a migrated empty ledger (a file copy, a ``CREATE DATABASE ...
TEMPLATE``), so examples are independent and cheap.
"""

from __future__ import annotations

import csv
import itertools
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import Engine, text

from contract.errors import ResidualsError
from ledger.store import open_store, read_session, write_session
from ledger.store.payout_states import apply_events, current_states, event_frame, release_or_hold
from ledger.store.profiles import set_profile
from ledger.store.reports import REPORT_COLUMNS, import_report
from ledger.store.verify import verify
from tests.conftest import need
from tests.ledger.store.payout_kit import post

CREATORS = ["a", "b", "c"]
STEPS = 5
_names = itertools.count()


def _dump(engine: Engine) -> tuple[list, list, list]:  # type: ignore[type-arg]
    """The ledger in a backend-neutral form: entries, payout events, statement lines."""
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
    return [tuple(r) for r in entries], [tuple(r) for r in events], [tuple(r) for r in lines]


def _expected_payables(engine: Engine) -> dict[str, int]:
    """earned - paid (standing batches' lines) + failed + returned + canceled (events)."""
    with engine.connect() as conn:
        lines = conn.execute(text(
            "SELECT s.creator_id, sum(s.allocated_minor - s.paid_minor) FROM statements s "
            "WHERE s.batch_id NOT IN (SELECT supersedes_id FROM batches "
            "WHERE supersedes_id IS NOT NULL) GROUP BY s.creator_id")).all()
        back = conn.execute(text(
            "SELECT p.creator_id, sum(p.amount_minor) FROM payout_events e JOIN payouts p "
            "ON p.payout_id = e.payout_id WHERE e.state IN ('failed', 'returned', 'canceled') "
            "AND coalesce(e.reason, '') <> 'superseded' GROUP BY p.creator_id")).all()
    out: dict[str, int] = {}
    for c, v in [*lines, *back]:
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

    def teardown(self) -> None:
        for e in self.engines:
            e.dispose()

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

    @invariant()
    def ledger_holds(self) -> None:
        dumps = []
        for e in self.engines:
            with e.connect() as conn:
                assert conn.execute(text("SELECT coalesce(sum(amount_minor), 0) FROM entries")
                                    ).scalar_one() == 0
                twice = conn.execute(text(
                    "SELECT count(*) FROM (SELECT payout_id FROM payout_events WHERE "
                    "state = 'paid' GROUP BY payout_id HAVING count(*) > 1) x")).scalar_one()
                assert twice == 0
                paid = conn.execute(text(
                    "SELECT coalesce(sum(p.amount_minor), 0) FROM payout_events e JOIN payouts p "
                    "ON p.payout_id = e.payout_id WHERE e.state = 'paid'")).scalar_one()
                pools = conn.execute(text("SELECT coalesce(sum(pool_minor), 0) FROM batches "
                                          "WHERE batch_id NOT IN (SELECT supersedes_id FROM "
                                          "batches WHERE supersedes_id IS NOT NULL)")
                                     ).scalar_one()
                assert paid <= pools
            assert _payables(e) == _expected_payables(e)
            with read_session(e) as s:
                report = verify(s)
            assert report.ok, [str(v) for v in report.violations]
            dumps.append(_dump(e))
        assert all(d == dumps[0] for d in dumps)


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "ledger.db"
    open_store(f"sqlite:///{path}").dispose()
    return path


def _sqlite_maker(template: Path, root: Path):  # type: ignore[no-untyped-def]
    def make() -> Engine:
        path = Path(tempfile.mkdtemp(dir=root)) / "ledger.db"
        shutil.copyfile(template, path)
        return open_store(f"sqlite:///{path}")
    return make


def test_payout_cycle_sqlite(sqlite_template: Path, tmp_path: Path) -> None:
    PayoutCycle.make = [_sqlite_maker(sqlite_template, tmp_path)]
    PayoutCycle.workdir = tmp_path
    run = PayoutCycle.TestCase
    run.settings = settings(settings.default, stateful_step_count=STEPS)
    run().runTest()


def test_payout_cycle_postgresql_equals_sqlite(sqlite_template: Path, tmp_path: Path,
                                               pg_server) -> None:  # type: ignore[no-untyped-def]
    need(pg_server is not None, "PostgreSQL server binaries (initdb, pg_ctl) not installed")
    tmpl = f"tmpl_{next(_names)}_{id(tmp_path) % 100000}"
    pg_server.admin(f"CREATE DATABASE {tmpl}")
    open_store(pg_server.url(tmpl)).dispose()

    def make_pg() -> Engine:
        name = f"sm_{next(_names)}_{id(tmp_path) % 100000}"
        pg_server.admin(f"CREATE DATABASE {name} TEMPLATE {tmpl}")
        return open_store(pg_server.url(name))

    PayoutCycle.make = [_sqlite_maker(sqlite_template, tmp_path), make_pg]
    PayoutCycle.workdir = tmp_path
    run = PayoutCycle.TestCase
    run.settings = settings(settings.default, stateful_step_count=STEPS,
                            max_examples=max(10, settings.default.max_examples // 10))
    run().runTest()

