"""The database itself refuses what would break the ledger: raw SQL tries, and fails.

Each test goes around the Python code with plain SQL on a connection from the
project's engine (SQLite with its foreign keys on, as every engine is opened).
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ledger.store.engine import open_store, read_session, write_session
from ledger.store.posting import post_batch
from ledger.store.verify import verify
from tests.ledger.store.kit import allocator, request, split

CREATORS = ["alice", "bob"]


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = open_store(db_url)
    with write_session(eng) as s, s.begin():
        post_batch(s, request(CREATORS), allocator(split(CREATORS, 10_000), min_payout=4000))
    return eng


def refused(engine: Engine, *sql: str) -> str:
    """Run ``sql`` in one transaction; assert the database refuses it; return the message."""
    with pytest.raises(DBAPIError) as info:
        with engine.begin() as conn:
            for stmt in sql:
                conn.execute(text(stmt))
    return str(info.value.orig)


def new_tx(kind: str = "allocation") -> str:
    return ("INSERT INTO transactions (id, kind, batch_id, memo) "
            f"SELECT 9001, '{kind}', batch_id, 'raw' FROM batches")


def accounts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        fund = conn.execute(text("SELECT id FROM accounts WHERE code = 'fund'")).scalar_one()
        alice = conn.execute(text("SELECT id FROM accounts WHERE code = 'payable/alice'")).scalar_one()
    return int(fund), int(alice)


def entry(acc: int, amount: int, tx: int = 9001, cur: str = "USD") -> str:
    return ("INSERT INTO entries (transaction_id, account_id, amount_minor, currency) "
            f"VALUES ({tx}, {acc}, {amount}, '{cur}')")


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.mark.parametrize("table", ["entries", "transactions", "transaction_seals", "batches",
                                   "statements", "batch_clip_credits", "accounts"])
def test_update_and_delete_refused(engine: Engine, table: str) -> None:
    col = {"entries": "currency", "transactions": "memo", "transaction_seals": "sealed_at",
           "batches": "period", "statements": "reason", "batch_clip_credits": "clip_id",
           "accounts": "code"}[table]
    before = count(engine, table)
    assert "append-only" in refused(engine, f"UPDATE {table} SET {col} = {col}")
    assert "append-only" in refused(engine, f"DELETE FROM {table}")
    assert count(engine, table) == before


def test_amount_cannot_be_changed(engine: Engine) -> None:
    assert "append-only" in refused(engine, "UPDATE entries SET amount_minor = amount_minor * 2")


def test_unbalanced_transaction_cannot_be_sealed(engine: Engine) -> None:
    fund, alice = accounts(engine)
    msg = refused(engine, new_tx(), entry(fund, -100), entry(alice, 99),
                  "INSERT INTO transaction_seals (transaction_id) VALUES (9001)")
    assert "sum to zero" in msg
    assert count(engine, "transactions") == 2


def test_balance_is_per_currency(engine: Engine) -> None:
    fund, alice = accounts(engine)
    msg = refused(engine, new_tx(), entry(fund, -100, cur="USD"), entry(alice, 100, cur="EUR"),
                  "INSERT INTO transaction_seals (transaction_id) VALUES (9001)")
    assert "sum to zero" in msg


def test_single_entry_transaction_refused(engine: Engine) -> None:
    fund, _ = accounts(engine)
    assert "sum to zero" in refused(engine, new_tx(), entry(fund, 0 + 5),
                                    "INSERT INTO transaction_seals (transaction_id) VALUES (9001)")


def two_tx(engine: Engine, second: int) -> list[str]:
    """Transactions 9001 (balanced) and 9002 (its entries summing to ``second``)."""
    fund, alice = accounts(engine)
    return [new_tx(), new_tx().replace("9001", "9002"), entry(fund, -100), entry(alice, 100),
            entry(fund, -100, tx=9002), entry(alice, 100 + second, tx=9002)]


@pytest.mark.parametrize("second", [1, -100])
def test_one_bad_seal_among_many_refuses_them_all(engine: Engine, second: int) -> None:
    """Seals inserted by one statement are checked together: one unbalanced
    transaction (or one left with a single entry) refuses the statement."""
    sql = two_tx(engine, second)
    if second == -100:  # 9002: one entry of -100 only
        sql = sql[:-1]
    msg = refused(engine, *sql, "INSERT INTO transaction_seals (transaction_id) "
                  "VALUES (9001), (9002)")
    assert "sum to zero" in msg
    assert count(engine, "transaction_seals") == 2


def test_many_balanced_seals_in_one_statement(engine: Engine) -> None:
    with engine.begin() as conn:
        for stmt in two_tx(engine, 0):
            conn.execute(text(stmt))
        conn.execute(text("INSERT INTO transaction_seals (transaction_id) "
                          "VALUES (9001), (9002)"))
    assert count(engine, "transaction_seals") == 4


@pytest.mark.parametrize("tx", [
    "INSERT INTO transactions (id, kind, batch_id, memo) VALUES (9001, 'allocation', "
    "'nobatch', 'raw')",
    "INSERT INTO transactions (id, kind, batch_id, reverses_id, memo) SELECT 9001, "
    "'reversal', batch_id, 424242, 'raw' FROM batches"])
def test_transaction_references_are_enforced(engine: Engine, tx: str) -> None:
    """A balanced, sealed transaction naming a missing batch or reversing a missing
    transaction is refused (nothing else is wrong with it)."""
    fund, alice = accounts(engine)
    refused(engine, tx, entry(fund, -100), entry(alice, 100),
            "INSERT INTO transaction_seals (transaction_id) VALUES (9001)")
    assert count(engine, "transactions") == 2


def test_seal_of_a_transaction_without_entries_refused(engine: Engine) -> None:
    assert "sum to zero" in refused(engine, new_tx(), "INSERT INTO transaction_seals "
                                    "(transaction_id) VALUES (9001)")


def test_unsealed_transaction_cannot_commit(engine: Engine) -> None:
    fund, alice = accounts(engine)
    # balanced, but never sealed: the deferred key fails at COMMIT
    refused(engine, new_tx(), entry(fund, -100), entry(alice, 100))
    assert count(engine, "transactions") == 2
    assert count(engine, "entries") == 6


def test_entries_cannot_join_a_sealed_transaction(engine: Engine) -> None:
    fund, alice = accounts(engine)
    with engine.connect() as conn:
        tx = conn.execute(text("SELECT min(id) FROM transactions")).scalar_one()
    msg = refused(engine, entry(fund, -100, tx=tx), entry(alice, 100, tx=tx))
    assert "sealed" in msg


def test_entry_needs_an_existing_account_and_transaction(engine: Engine) -> None:
    fund, _ = accounts(engine)
    refused(engine, new_tx(), entry(fund, -100), entry(987654, 100))
    refused(engine, entry(fund, -100, tx=424242), entry(fund, 100, tx=424242))
    assert count(engine, "entries") == 6


@pytest.mark.parametrize("sql", [
    "INSERT INTO statements (batch_id, creator_id, share, exact_minor, allocated_minor, "
    "carried_in_minor, paid_minor, carried_out_minor, eligible) SELECT batch_id, 'ghost', 0, 0, "
    "0, 0, 0, 0, true FROM batches",
    "INSERT INTO statements (batch_id, creator_id, share, exact_minor, allocated_minor, "
    "carried_in_minor, paid_minor, carried_out_minor, eligible) VALUES ('nobatch', 'alice', 0, "
    "0, 0, 0, 0, 0, true)",
    "INSERT INTO batch_clip_credits (batch_id, clip_id, creator_id, weight) "
    "SELECT batch_id, 'k9', 'ghost', 1.0 FROM batches",
    "INSERT INTO accounts (code, kind, creator_id) VALUES ('payable/ghost', 'creator_payable', "
    "'ghost')",
    "INSERT INTO balances (account_id, currency, balance_minor) VALUES (987654, 'USD', 1)",
    "INSERT INTO payouts (payout_id, batch_id, creator_id, amount_minor, currency) "
    "SELECT 'po_ghost', batch_id, 'ghost', 1, 'USD' FROM batches",
    "INSERT INTO payouts (payout_id, batch_id, creator_id, amount_minor, currency) "
    "VALUES ('po_nobatch', 'nobatch', 'alice', 1, 'USD')",
    "INSERT INTO payout_events (payout_id, seq, state, source) VALUES ('po_none', 1, "
    "'pending', 'raw')",
    "INSERT INTO payout_events (payout_id, seq, state, source, transaction_id) "
    "SELECT payout_id, 9, 'canceled', 'raw', 424242 FROM payouts",
    "DELETE FROM creators WHERE creator_id = 'alice'",
    "UPDATE creators SET creator_id = 'alicia' WHERE creator_id = 'alice'",
])
def test_references_are_enforced(engine: Engine, sql: str) -> None:
    refused(engine, sql)


def test_creator_display_name_can_change(engine: Engine) -> None:
    """Display names are not money: the append-only triggers let them change."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE creators SET display_name = 'Alice B.' "
                          "WHERE creator_id = 'alice'"))
    with engine.connect() as conn:
        name = conn.execute(text("SELECT display_name FROM creators "
                                 "WHERE creator_id = 'alice'")).scalar_one()
    assert name == "Alice B."


def test_zero_amount_refused(engine: Engine) -> None:
    fund, alice = accounts(engine)
    refused(engine, new_tx(), entry(fund, 0), entry(alice, 0),
            "INSERT INTO transaction_seals (transaction_id) VALUES (9001)")


def test_balanced_raw_transaction_is_accepted(engine: Engine) -> None:
    """The control: the same raw SQL, balanced and sealed, commits (so the refusals above
    are the triggers at work, not broken SQL)."""
    fund, alice = accounts(engine)
    with engine.begin() as conn:
        for stmt in (new_tx(), entry(fund, -100), entry(alice, 100),
                     "INSERT INTO transaction_seals (transaction_id) VALUES (9001)"):
            conn.execute(text(stmt))
    assert count(engine, "transactions") == 3


def test_verify_reports_tampered_balance(engine: Engine) -> None:
    with engine.begin() as conn:  # balances are a cache, not append-only: verify guards them
        conn.execute(text("UPDATE balances SET balance_minor = balance_minor + 1 "
                          "WHERE account_id = (SELECT id FROM accounts WHERE code = 'fund')"))
    with read_session(engine) as s:
        report = verify(s)
    assert [v.check for v in report.violations] == ["balances"]
    assert "account fund USD: stored balance -9999, entries sum to -10000" in str(
        report.violations[0])


def test_verify_reports_broken_chain(engine: Engine) -> None:
    """Drop the append-only trigger (what an attacker with DDL rights could do) and
    rewrite a statement: verify still notices through the hash chain."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER statements_no_update"))
        else:
            conn.execute(text("DROP TRIGGER statements_append_only ON statements"))
        conn.execute(text("UPDATE statements SET paid_minor = paid_minor - 1, "
                          "carried_out_minor = carried_out_minor + 1 "
                          "WHERE creator_id = 'alice'"))
    with read_session(engine) as s:
        report = verify(s)
    checks = {v.check for v in report.violations}
    assert "hash chain" in checks and "entries vs statements" in checks


def test_migrations_match_the_models(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The Alembic head creates exactly the tables, columns and indexes the models declare,
    the ledger's and the dashboard's (SQLite, where the schema keeps every declared foreign
    key)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from dashboard.models import DashboardBase
    from ledger.store.models import Base

    eng = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn),
                                [Base.metadata, DashboardBase.metadata])
    assert diff == []


def test_downgrade_and_upgrade_again(db_url: str) -> None:
    from alembic import command

    from ledger.store.engine import _alembic_config, current_revision, head_revision

    eng = open_store(db_url)
    with eng.begin() as conn:
        command.downgrade(_alembic_config(conn), "base")
    assert current_revision(eng) is None
    open_store(db_url).dispose()
    assert current_revision(eng) == head_revision()
