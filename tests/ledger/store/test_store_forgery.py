"""Well-formed forgeries that ``ledger verify`` must catch.

First with every trigger in place (plain INSERTs that the database accepts:
sealed, balanced transactions), then with the triggers dropped, as an insider
with DDL rights could: deleting the newest batch, rewriting clip credits,
statement lines, or the newest manifest and its hash. Each runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from ledger.store import open_store, read_session, write_session
from ledger.store.posting import manifest_hash, post_batch, sha256_text
from ledger.store.read import chain_head
from ledger.store.verify import verify
from tests.ledger.store.kit import allocator, request, write_dataset
from tests.ledger.store.test_store_cli import cli, run

CREATORS = ["alice", "bob", "carol"]


def post(engine: Engine, period: str, amounts: dict[str, int], *, supersede: bool = False,
         tag: str = "inputs-a") -> None:
    with write_session(engine) as s, s.begin():
        post_batch(s, request(list(amounts), period=period, pool=sum(amounts.values()),
                              tag=tag), allocator(amounts, min_payout=1000),
                   supersede=supersede)


@pytest.fixture
def ledger(db_url: str) -> Engine:
    """P1 and P2 posted; bob's P1 allocation is below the minimum and carried."""
    engine = open_store(db_url)
    post(engine, "P1", {"alice": 5000, "bob": 500, "carol": 4500})
    post(engine, "P2", {"alice": 3000, "bob": 3000, "carol": 4000})
    return engine


def checks(engine: Engine, **kw) -> set[str]:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        report = verify(s, **kw)
    return {v.check for v in report.violations}


def scalar(engine: Engine, sql: str, **params) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def payout_tx(engine: Engine, period: str) -> int:
    return int(scalar(engine, "SELECT t.id FROM transactions t JOIN batches b "
                      "ON b.batch_id = t.batch_id WHERE b.period = :p AND t.kind = 'payout'",
                      p=period))


def add_to_balances(conn, tx: int) -> None:  # type: ignore[no-untyped-def]
    """The balances upsert a forger does by hand (balances have no trigger)."""
    conn.execute(text(
        "UPDATE balances SET balance_minor = balance_minor + (SELECT sum(e.amount_minor) "
        "FROM entries e WHERE e.transaction_id = :tx AND e.account_id = balances.account_id "
        "AND e.currency = balances.currency) WHERE EXISTS (SELECT 1 FROM entries e WHERE "
        "e.transaction_id = :tx AND e.account_id = balances.account_id "
        "AND e.currency = balances.currency)"), {"tx": tx})


def forge_reversal(engine: Engine, of_period: str) -> None:
    """A sealed reversal of a *standing* batch's payout, entries negated, balances updated."""
    orig = payout_tx(engine, of_period)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO transactions (id, kind, batch_id, memo, reverses_id) "
                          "SELECT 9001, 'reversal', batch_id, 'forged', id FROM transactions "
                          "WHERE id = :o"), {"o": orig})
        conn.execute(text("INSERT INTO entries (transaction_id, account_id, amount_minor, "
                          "currency) SELECT 9001, account_id, -amount_minor, currency "
                          "FROM entries WHERE transaction_id = :o"), {"o": orig})
        conn.execute(text("INSERT INTO transaction_seals (transaction_id) VALUES (9001)"))
        add_to_balances(conn, 9001)


def test_clean_ledger_verifies(ledger: Engine) -> None:
    assert checks(ledger) == set()


def test_forged_reversal_of_a_standing_batch(ledger: Engine) -> None:
    forge_reversal(ledger, "P2")
    found = checks(ledger)
    assert "transactions vs manifests" in found
    post(ledger, "P3", {"alice": 1, "bob": 1, "carol": 1})  # would pay P2's payouts again
    assert {"transactions vs manifests", "carry"} <= checks(ledger)


def test_forged_sealed_transfer_fund_to_platform(ledger: Engine) -> None:
    with ledger.begin() as conn:
        conn.execute(text("INSERT INTO transactions (id, kind, batch_id, memo) SELECT 9002, "
                          "'allocation', batch_id, 'fee' FROM batches WHERE period = 'P2'"))
        for code, amount in (("fund", -1_000_000), ("platform", 1_000_000)):
            conn.execute(text("INSERT INTO entries (transaction_id, account_id, amount_minor, "
                              "currency) SELECT 9002, id, :a, 'USD' FROM accounts "
                              "WHERE code = :c"), {"a": amount, "c": code})
        conn.execute(text("INSERT INTO transaction_seals (transaction_id) VALUES (9002)"))
        add_to_balances(conn, 9002)
    assert "transactions vs manifests" in checks(ledger)


# ---- with the triggers dropped ---------------------------------------------------

def drop_triggers(engine: Engine) -> None:
    """What an insider with DDL rights can do: remove every append-only trigger."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                                 ).scalars().all()
            for name in names:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
        else:
            tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = "
                                       "current_schema()")).scalars().all()
            for table in tables:
                conn.execute(text(f'ALTER TABLE "{table}" DISABLE TRIGGER USER'))


def delete_newest_batch(engine: Engine) -> None:
    """Remove the newest batch and everything it wrote, balances adjusted to match."""
    with engine.begin() as conn:
        bid = conn.execute(text("SELECT batch_id FROM batches ORDER BY seq DESC LIMIT 1")
                           ).scalar_one()
        txs = conn.execute(text("SELECT id FROM transactions WHERE batch_id = :b"),
                           {"b": bid}).scalars().all()
        for tx in txs:
            conn.execute(text("UPDATE balances SET balance_minor = balance_minor - (SELECT "
                              "coalesce(sum(e.amount_minor), 0) FROM entries e WHERE "
                              "e.transaction_id = :tx AND e.account_id = balances.account_id)"),
                         {"tx": tx})
            conn.execute(text("DELETE FROM entries WHERE transaction_id = :tx"), {"tx": tx})
            conn.execute(text("DELETE FROM transaction_seals WHERE transaction_id = :tx"),
                         {"tx": tx})
            conn.execute(text("DELETE FROM transactions WHERE id = :tx"), {"tx": tx})
        conn.execute(text("DELETE FROM payout_events WHERE payout_id IN (SELECT payout_id "
                          "FROM payouts WHERE batch_id = :b)"), {"b": bid})
        for table in ("payouts", "statements", "batch_clip_credits", "batches"):
            conn.execute(text(f"DELETE FROM {table} WHERE batch_id = :b"), {"b": bid})


def head(engine: Engine) -> str:
    with read_session(engine) as s:
        got = chain_head(s)
    assert got is not None
    return got.batch_hash


def test_chain_head_is_the_newest_batch(ledger: Engine) -> None:
    with read_session(ledger) as s:
        got = chain_head(s)
    assert got is not None and got.period == "P2"
    assert got.batch_hash == scalar(ledger, "SELECT batch_hash FROM batches WHERE seq = 2")


def test_deleting_the_newest_batch_is_caught_by_the_published_head(ledger: Engine) -> None:
    published = head(ledger)
    older = scalar(ledger, "SELECT batch_hash FROM batches WHERE seq = 1")
    assert checks(ledger, expect_head=published) == set()
    assert checks(ledger, expect_head=older) == set()  # an earlier head is still in the chain
    drop_triggers(ledger)
    delete_newest_batch(ledger)
    assert checks(ledger) == set()  # consistent on its own: only the published head tells
    assert checks(ledger, expect_head=published) == {"chain head"}
    assert checks(ledger, expect_head=published[:12]) == {"chain head"}


def test_rewritten_clip_credits(ledger: Engine) -> None:
    drop_triggers(ledger)
    with ledger.begin() as conn:
        conn.execute(text("UPDATE batch_clip_credits SET creator_id = 'alice', weight = 9 "
                          "WHERE clip_id = 'bob-clip1'"))
    assert "hash chain" in checks(ledger)


@pytest.mark.parametrize("change", ["share = 0.99", "eligible = false",
                                    "reason = 'capped'", "exact_minor = 1"])
def test_rewritten_statement_lines(ledger: Engine, change: str) -> None:
    drop_triggers(ledger)
    with ledger.begin() as conn:
        conn.execute(text(f"UPDATE statements SET {change} WHERE creator_id = 'carol'"))
    assert "hash chain" in checks(ledger)


def test_rewritten_newest_manifest_and_hash(ledger: Engine) -> None:
    """Rewrite the newest batch's manifest (another policy) and its hash consistently:
    only the published head can tell, with or without recomputation."""
    import json

    published = head(ledger)
    drop_triggers(ledger)
    with ledger.begin() as conn:
        raw = conn.execute(text("SELECT manifest FROM batches WHERE seq = 2")).scalar_one()
        manifest = json.loads(raw) if isinstance(raw, str) else raw
        manifest["policy"]["text"] += "# rewritten\n"
        manifest["policy"]["hash"] = sha256_text(manifest["policy"]["text"])
        conn.execute(text("UPDATE batches SET manifest = :m, batch_hash = :h, policy_hash = :p "
                          "WHERE seq = 2"), {"m": json.dumps(manifest),
                                             "h": manifest_hash(manifest),
                                             "p": manifest["policy"]["hash"]})
    assert checks(ledger) == set()  # consistent on its own (no inputs here to recompute)
    assert checks(ledger, expect_head=published) == {"chain head"}


def test_rewritten_manifest_amounts_are_caught_without_the_head(ledger: Engine) -> None:
    """A manifest (and hash) that no longer matches the batch row and its entries."""
    import json

    drop_triggers(ledger)
    with ledger.begin() as conn:
        raw = conn.execute(text("SELECT manifest FROM batches WHERE seq = 2")).scalar_one()
        manifest = json.loads(raw) if isinstance(raw, str) else raw
        manifest["pool_minor"] += 100
        conn.execute(text("UPDATE batches SET manifest = :m, batch_hash = :h WHERE seq = 2"),
                     {"m": json.dumps(manifest), "h": manifest_hash(manifest)})
    assert "hash chain" in checks(ledger)


def test_superseded_batch_still_verifies(db_url: str) -> None:
    engine = open_store(db_url)
    post(engine, "P1", {"alice": 5000, "bob": 500, "carol": 4500})
    post(engine, "P2", {"alice": 3000, "bob": 3000, "carol": 4000})
    post(engine, "P2", {"alice": 2000, "bob": 4000, "carol": 4000}, supersede=True,
         tag="inputs-b")
    post(engine, "P3", {"alice": 300, "bob": 700, "carol": 9000})
    assert checks(engine) == set()


# ---- the command ----------------------------------------------------------------

def test_verify_prints_and_checks_the_chain_head(capsys, tmp_path: Path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    write_dataset(tmp_path / "data", 8)
    assert run(capsys, tmp_path / "data", db_url, tmp_path, "--pool", "100.00",
               period="2026-10")[0] == 0
    engine = open_store(db_url)
    published = head(engine)
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db_url, "--no-recompute")
    assert code == 0 and f"chain head {published} (period 2026-10" in out
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db_url, "--no-recompute",
                       "--expect-head", published)
    assert code == 0, out
    drop_triggers(engine)
    delete_newest_batch(engine)
    engine.dispose()
    code, out, _ = cli(capsys, "ledger", "verify", "--db", db_url, "--no-recompute",
                       "--expect-head", published)
    assert code == 1 and "VIOLATION chain head" in out and published[:12] in out
    code, _, err = cli(capsys, "ledger", "verify", "--db", db_url, "--expect-head", "xyz")
    assert code == 1 and "--expect-head" in err and len(err.strip().splitlines()) == 1


# ---- any balanced, sealed transaction that no batch explains ------------------------

@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["allocation", "payout", "reversal"]),
       period=st.sampled_from(["P1", "P2"]),
       legs=st.lists(st.tuples(st.sampled_from(["fund", "platform", "transit", "payable/alice",
                                                 "payable/bob", "payable/carol"]),
                               st.integers(1, 10**6)), min_size=1, max_size=4))
def test_any_unexplained_transaction_is_caught(tmp_path_factory, kind: str, period: str,
                                               legs: list[tuple[str, int]]) -> None:  # type: ignore[no-untyped-def]
    """A forger picks the kind, the batch and the legs; the entries balance (the last
    leg takes the opposite of the sum) and balances are updated to match."""
    engine = open_store(f"sqlite:///{tmp_path_factory.mktemp('forge') / 'l.db'}")
    post(engine, "P1", {"alice": 5000, "bob": 500, "carol": 4500})
    post(engine, "P2", {"alice": 3000, "bob": 3000, "carol": 4000})
    target = payout_tx(engine, period)
    legs = [*legs, ("fund", -sum(a for _, a in legs))]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO transactions (id, kind, batch_id, memo, reverses_id) "
                          "SELECT 9003, :k, batch_id, 'forged', :r FROM batches WHERE "
                          "period = :p"), {"k": kind, "p": period,
                                           "r": target if kind == "reversal" else None})
        for code, amount in legs:
            conn.execute(text("INSERT INTO entries (transaction_id, account_id, amount_minor, "
                              "currency) SELECT 9003, id, :a, 'USD' FROM accounts "
                              "WHERE code = :c"), {"a": amount, "c": code})
        conn.execute(text("INSERT INTO transaction_seals (transaction_id) VALUES (9003)"))
        add_to_balances(conn, 9003)
    found = checks(engine)
    engine.dispose()
    assert "transactions vs manifests" in found
