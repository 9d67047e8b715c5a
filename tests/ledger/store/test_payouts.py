"""Payout lifecycle in the ledger: states, transitions, holds, money, supersede, verify.

Each test runs on SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import polars as pl
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from contract.errors import ResidualsError
from ledger.store import models as M
from ledger.store import open_store, read_session, write_session
from ledger.store.payout_states import TRANSITIONS, check_transition, payout_id
from tests.ledger.store.payout_kit import (balance, complete, move, payable, payout_of, post,
                                          states, violations)

CREATORS = ["alice", "bob", "carol"]


@pytest.fixture
def engine(db_url: str) -> Engine:
    return open_store(db_url)


def test_holds_at_post_and_release(engine: Engine) -> None:
    complete(engine, "alice")
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000, "carol": 500})
    assert states(engine, b1) == {"alice": "pending", "bob": "held"}  # carol under minimum
    with read_session(engine) as s:
        reason = s.execute(text("SELECT reason FROM payout_events WHERE payout_id = :p"),
                           {"p": payout_id(b1, "bob")}).scalar_one()
    assert reason == "no_payout_method,tax_form_missing"
    assert balance(engine, "transit") == 9000  # held money stays in transit
    complete(engine, "bob")
    assert states(engine, b1) == {"alice": "pending", "bob": "pending"}
    assert violations(engine) == set()


def test_profile_change_holds_pending_payouts(engine: Engine) -> None:
    from ledger.store.payout_states import release_or_hold
    from ledger.store.profiles import set_profile

    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000, "bob": 5000})
    with write_session(engine) as s, s.begin():
        set_profile(s, "bob", tax_form="submitted")
        assert release_or_hold(s, "bob", source="profile") == (0, 1)
    assert states(engine, b1) == {"alice": "pending", "bob": "held"}
    assert violations(engine) == set()


ALL_STATES = list(M.PAYOUT_STATES)


@pytest.mark.parametrize("old", [None, *ALL_STATES])
@pytest.mark.parametrize("new", ALL_STATES)
def test_transition_table(old: str | None, new: str) -> None:
    ok = new in ("pending", "held") if old is None else new in TRANSITIONS.get(old, ())
    if ok:
        check_transition("po_x", old, new)
    else:
        with pytest.raises(ResidualsError, match=f"po_x.*{new}"):
            check_transition("po_x", old, new)


PATHS = {  # a path from pending to each state, and the money that ends where
    "submitted": ["submitted"],
    "held": ["held"],
    "canceled": ["canceled"],
    "paid": ["submitted", "paid"],
    "failed": ["submitted", "failed"],
    "returned": ["submitted", "paid", "returned"],
    "held-canceled": ["held", "canceled"],
    "held-pending": ["held", "pending"],
    "submitted-canceled": ["submitted", "canceled"],
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_allowed_path_moves_the_right_money(engine: Engine, path: str) -> None:
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000})
    pid = payout_of(engine, b1, "alice")
    for state in PATHS[path]:
        move(engine, pid, state)
    last = PATHS[path][-1]
    back = 5000 if last in ("failed", "returned", "canceled") else 0
    assert payable(engine, "alice") == back
    assert balance(engine, "disbursed") == (5000 if last == "paid" else 0)
    assert balance(engine, "transit") == 4000 + (5000 if last in ("pending", "submitted", "held")
                                                 else 0)
    assert violations(engine) == set()


@pytest.mark.parametrize("path,bad", [
    (["submitted", "paid"], "paid"), (["submitted", "paid"], "failed"),
    ([], "paid"), ([], "returned"), (["held"], "submitted"), (["submitted"], "pending"),
    (["canceled"], "pending"), (["submitted", "failed"], "paid"),
    (["submitted", "paid", "returned"], "paid"),
])
def test_refused_transitions_change_nothing(engine: Engine, path: list[str], bad: str) -> None:
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000})
    pid = payout_of(engine, b1, "alice")
    for state in path:
        move(engine, pid, state)
    before = (payable(engine, "alice"), balance(engine, "transit"))
    with pytest.raises(ResidualsError, match=f"payout {pid}: .* -> {bad} is out of order"):
        move(engine, pid, bad)
    assert (payable(engine, "alice"), balance(engine, "transit")) == before
    assert violations(engine) == set()


@pytest.mark.parametrize("table", ["payouts", "payout_events", "creator_profiles"])
@pytest.mark.parametrize("sql", ["UPDATE {t} SET {c} = {c}", "DELETE FROM {t}"])
def test_raw_sql_cannot_change_payout_tables(engine: Engine, table: str, sql: str) -> None:
    complete(engine, *CREATORS)
    post(engine, "P1", {"alice": 5000})
    col = {"payouts": "amount_minor", "payout_events": "state", "creator_profiles": "tax_form"}
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text(sql.format(t=table, c=col[table])))


def test_database_refuses_a_second_paid_event(engine: Engine) -> None:
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000})
    pid = payout_of(engine, b1, "alice")
    move(engine, pid, "submitted")
    move(engine, pid, "paid")
    with pytest.raises(DBAPIError):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO payout_events (payout_id, seq, state, source) "
                              "VALUES (:p, 9, 'paid', 'forged')"), {"p": pid})


def test_recredit_is_carried_exactly_once(engine: Engine) -> None:
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000, "carol": 500})
    move(engine, payout_of(engine, b1, "alice"), "submitted")
    move(engine, payout_of(engine, b1, "alice"), "failed")
    move(engine, payout_of(engine, b1, "bob"), "submitted")
    move(engine, payout_of(engine, b1, "bob"), "paid")
    move(engine, payout_of(engine, b1, "bob"), "returned")
    b2 = post(engine, "P2", {"alice": 1000, "bob": 1000, "carol": 1000})
    with read_session(engine) as s:
        rows = dict(s.execute(text("SELECT creator_id, carried_in_minor FROM statements "
                                   "WHERE batch_id = :b"), {"b": b2}).all())
    assert rows == {"alice": 5000, "bob": 4000, "carol": 500}
    with read_session(engine) as s:
        paid = dict(s.execute(text("SELECT creator_id, amount_minor FROM payouts "
                                   "WHERE batch_id = :b"), {"b": b2}).all())
    assert paid == {"alice": 6000, "bob": 5000, "carol": 1500}
    assert all(payable(engine, c) == 0 for c in CREATORS)
    b3 = post(engine, "P3", {"alice": 10, "bob": 10, "carol": 10})
    with read_session(engine) as s:
        carried = s.execute(text("SELECT sum(carried_in_minor) FROM statements "
                                 "WHERE batch_id = :b"), {"b": b3}).scalar_one()
    assert carried == 0  # carried once, into P2 only
    assert violations(engine) == set()


def test_held_payout_is_not_carried_until_canceled(engine: Engine) -> None:
    b1 = post(engine, "P1", {"alice": 5000})
    assert states(engine, b1) == {"alice": "held"}
    b2 = post(engine, "P2", {"alice": 100})
    with read_session(engine) as s:
        carried = s.execute(text("SELECT carried_in_minor FROM statements WHERE batch_id = :b"),
                            {"b": b2}).scalar_one()
    assert carried == 0
    move(engine, payout_of(engine, b1, "alice"), "canceled")
    b3 = post(engine, "P3", {"alice": 100})
    with read_session(engine) as s:
        carried = s.execute(text("SELECT carried_in_minor FROM statements WHERE batch_id = :b"),
                            {"b": b3}).scalar_one()
    assert carried == 5100  # the canceled 5000 and P2's 100 under the minimum
    assert violations(engine) == set()


def test_supersede_cancels_open_payouts_without_double_credit(engine: Engine) -> None:
    complete(engine, "alice")
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000})
    assert states(engine, b1) == {"alice": "pending", "bob": "held"}
    b2 = post(engine, "P1", {"alice": 3000, "bob": 6000}, supersede=True, tag="inputs-b")
    assert states(engine, b1) == {"alice": "canceled", "bob": "canceled"}
    assert states(engine, b2) == {"alice": "pending", "bob": "held"}
    assert payable(engine, "alice") == payable(engine, "bob") == 0
    assert balance(engine, "transit") == 9000
    assert violations(engine) == set()


def test_supersede_refused_once_a_payout_was_exported(engine: Engine) -> None:
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000})
    move(engine, payout_of(engine, b1, "bob"), "submitted")
    with pytest.raises(ResidualsError, match="cannot be superseded"):
        post(engine, "P1", {"alice": 3000, "bob": 6000}, supersede=True, tag="inputs-b")
    assert states(engine, b1) == {"alice": "pending", "bob": "submitted"}
    assert violations(engine) == set()


def _forge(engine: Engine, sql: list[str], **params: object) -> None:
    with engine.begin() as conn:
        for stmt in sql:
            conn.execute(text(stmt), params)


def test_verify_catches_a_forged_event(engine: Engine) -> None:
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000})
    pid = payout_of(engine, b1, "alice")
    _forge(engine, ["INSERT INTO payout_events (payout_id, seq, state, source) "
                    "VALUES (:p, 2, 'paid', 'forged')"], p=pid)
    found = violations(engine)
    assert any("pending -> paid is out of order" in v for v in found)
    assert any("moves money but names no transaction" in v for v in found)


def test_verify_catches_a_forged_recredit(engine: Engine) -> None:
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000})
    with engine.connect() as conn:
        transit = conn.execute(text("SELECT id FROM accounts WHERE code = 'transit'")).scalar_one()
        pay = conn.execute(text("SELECT id FROM accounts WHERE code = 'payable/alice'")
                           ).scalar_one()
    _forge(engine, [
        "INSERT INTO transactions (id, kind, batch_id, memo) VALUES (9001, 'recredit', :b, 'x')",
        "INSERT INTO entries (transaction_id, account_id, amount_minor, currency) "
        "VALUES (9001, :t, -5000, 'USD'), (9001, :a, 5000, 'USD')",
        "INSERT INTO transaction_seals (transaction_id) VALUES (9001)",
        "UPDATE balances SET balance_minor = balance_minor - 5000 WHERE account_id = :t",
        "UPDATE balances SET balance_minor = balance_minor + 5000 WHERE account_id = :a",
    ], b=b1, t=transit, a=pay)
    found = violations(engine)
    assert any("transaction 9001 (recredit) is explained by no payout event" in v for v in found)
    # the forged money would be carried: the next batch's carry-in is checked against it
    assert payable(engine, "alice") == 5000


def test_verify_catches_a_forged_recredit_with_event(engine: Engine) -> None:
    """A forger adds a canceled event and its transaction for a payout already paid."""
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000})
    pid = payout_of(engine, b1, "alice")
    move(engine, pid, "submitted")
    move(engine, pid, "paid")
    with engine.connect() as conn:
        transit = conn.execute(text("SELECT id FROM accounts WHERE code = 'transit'")).scalar_one()
        pay = conn.execute(text("SELECT id FROM accounts WHERE code = 'payable/alice'")
                           ).scalar_one()
    _forge(engine, [
        "INSERT INTO transactions (id, kind, batch_id, memo) VALUES (9002, 'recredit', :b, 'x')",
        "INSERT INTO entries (transaction_id, account_id, amount_minor, currency) "
        "VALUES (9002, :t, -5000, 'USD'), (9002, :a, 5000, 'USD')",
        "INSERT INTO transaction_seals (transaction_id) VALUES (9002)",
        "INSERT INTO payout_events (payout_id, seq, state, source, transaction_id) "
        "VALUES (:p, 4, 'failed', 'forged', 9002)",
    ], b=b1, t=transit, a=pay, p=pid)
    found = violations(engine)
    assert any("paid -> failed is out of order" in v for v in found)


def test_migration_gives_existing_batches_their_payouts(db_url: str) -> None:
    """Down to 0007 (payout tables gone), up again: the backfill recreates the payouts of
    a standing batch (submitted) and of a superseded one (canceled), and verify is OK."""
    from alembic import command

    from ledger.store.engine import _alembic_config, head_revision, upgrade

    engine = open_store(db_url)
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000})
    b2 = post(engine, "P1", {"alice": 3000, "bob": 6000}, supersede=True, tag="inputs-b")
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0007")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM batches")).scalar_one() == 2
    assert upgrade(engine) == ("0007", head_revision())
    assert states(engine, b1) == {"alice": "canceled", "bob": "canceled"}
    assert states(engine, b2) == {"alice": "submitted", "bob": "submitted"}
    assert violations(engine) == set()


def test_latest_states_equal_the_current_states_query(engine: Engine) -> None:
    """The import's one-scan reading of every payout's state (:func:`latest_states` over
    :func:`payout_history`) equals :func:`current_states`' query, after holds, releases,
    a supersede, settled and re-credited payouts."""
    from ledger.store.payout_states import current_states, latest_states, payout_history

    complete(engine, "alice", "bob")
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000, "carol": 3000})
    post(engine, "P1", {"alice": 3000, "bob": 6000, "carol": 2000}, supersede=True,
         tag="inputs-b")
    b3 = post(engine, "P2", {"alice": 5000, "bob": 4000, "carol": 3000})
    for who, path in (("alice", ["submitted", "paid", "returned"]),
                      ("bob", ["submitted", "failed"])):
        for state in path:
            move(engine, payout_of(engine, b3, who), state)
    complete(engine, "carol")
    with read_session(engine) as s:
        want = current_states(s)
        got = latest_states(*payout_history(s))
    assert want.height == 9 and set(want["state"]) >= {"canceled", "returned", "failed"}
    assert got.to_dicts() == want.to_dicts()
    assert states(engine, b1) == {"alice": "canceled", "bob": "canceled", "carol": "canceled"}


def test_import_rounds_keep_the_states_they_pass_on_exact(engine: Engine) -> None:
    """An import reads the states once and advances them itself between rounds
    (``reports._advanced``); after each round they equal a fresh :func:`current_states`."""
    from ledger.store.payout_states import apply_events, current_states, event_frame
    from ledger.store.reports import _advanced

    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000, "carol": 3000})
    ids = {c: payout_of(engine, b1, c) for c in CREATORS}
    rounds = [[("alice", "submitted"), ("bob", "submitted"), ("carol", "held")],
              [("alice", "paid"), ("bob", "failed"), ("carol", "pending")],
              [("alice", "returned")]]
    with write_session(engine) as s, s.begin():
        states_ = current_states(s)
        for step in rounds:
            events = pl.concat([event_frame([ids[c]], st, source="test", reason=f"r-{st}")
                                for c, st in step])
            apply_events(s, events, known=states_)
            states_ = _advanced(states_, events)
            assert states_.to_dicts() == current_states(s).to_dicts()
    assert violations(engine) == set()


def _settlements(engine: Engine) -> list[tuple[str, str, list[tuple[str, int]]]]:
    """Each disbursement or re-credit transaction: kind, memo, (account code, amount)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT t.id, t.kind, t.memo, a.code, e.amount_minor FROM transactions t "
            "JOIN entries e ON e.transaction_id = t.id JOIN accounts a ON a.id = e.account_id "
            "WHERE t.kind IN ('disbursement', 'recredit') ORDER BY t.id, a.code")).all()
    out: dict[int, tuple[str, str, list[tuple[str, int]]]] = {}
    for tx, kind, memo, code, amount in rows:
        out.setdefault(tx, (kind, memo, []))[2].append((code, int(amount)))
    return list(out.values())


def _move_all(engine: Engine, moves: dict[str, str]) -> None:
    """One :func:`apply_events` call moving each payout to its state."""
    from ledger.store.payout_states import apply_events, event_frame

    with write_session(engine) as s, s.begin():
        apply_events(s, pl.concat([event_frame([p], st, source="test")
                                   for p, st in moves.items()]))


def test_one_settlement_transaction_per_batch_and_state(engine: Engine) -> None:
    """One call settling many payouts posts one transaction per (batch, state): the
    fixed account's leg summed once, each creator's payable once; every event names it."""
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000, "carol": 3000})
    ids = {c: payout_of(engine, b1, c) for c in CREATORS}
    _move_all(engine, {p: "submitted" for p in ids.values()})
    _move_all(engine, {ids["alice"]: "paid", ids["bob"]: "paid", ids["carol"]: "failed"})
    assert _settlements(engine) == [  # in (batch, state) order
        ("recredit", "1 payout(s) failed", [("payable/carol", 3000), ("transit", -3000)]),
        ("disbursement", "2 payout(s) paid", [("disbursed", 9000), ("transit", -9000)])]
    with engine.connect() as conn:
        named = conn.execute(text("SELECT state, count(DISTINCT transaction_id), count(*) "
                                  "FROM payout_events WHERE transaction_id IS NOT NULL "
                                  "GROUP BY state ORDER BY state")).all()
    assert [tuple(r) for r in named] == [("failed", 1, 1), ("paid", 1, 2)]
    assert payable(engine, "carol") == 3000 and balance(engine, "disbursed") == 9000
    assert violations(engine) == set()


def test_verify_catches_an_event_riding_on_a_shared_settlement(engine: Engine) -> None:
    """A forger marks a third payout paid, naming the settlement of two real ones, so
    that no money seems to be missing: the transaction's legs no longer add up."""
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000, "carol": 3000})
    ids = {c: payout_of(engine, b1, c) for c in CREATORS}
    _move_all(engine, {p: "submitted" for p in ids.values()})
    _move_all(engine, {ids["alice"]: "paid", ids["bob"]: "paid"})
    with engine.connect() as conn:
        tx = conn.execute(text("SELECT transaction_id FROM payout_events WHERE payout_id = :p "
                               "AND state = 'paid'"), {"p": ids["alice"]}).scalar_one()
    _forge(engine, ["INSERT INTO payout_events (payout_id, seq, state, source, transaction_id) "
                    "VALUES (:p, 3, 'paid', 'forged', :t)"], p=ids["carol"], t=tx)
    found = violations(engine)
    assert any(f"transaction {tx}: account" in v and "entries sum to -9000" in v
               and "call for -12000" in v for v in found), found


def test_downgrade_refuses_to_unshare_settlements(db_url: str) -> None:
    """Revision 0011 allowed one event per transaction: going back to it with shared
    settlements is refused, naming the transaction, and the ledger is left at head."""
    from alembic import command

    from ledger.store.engine import _alembic_config, current_revision, head_revision

    engine = open_store(db_url)
    complete(engine, *CREATORS)
    b1 = post(engine, "P1", {"alice": 5000, "bob": 4000})
    ids = {c: payout_of(engine, b1, c) for c in ("alice", "bob")}
    _move_all(engine, {p: "canceled" for p in ids.values()})
    with pytest.raises(RuntimeError, match="settles more than one payout event"):
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0011")
    assert current_revision(engine) == head_revision()
    assert violations(engine) == set()
