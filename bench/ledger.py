"""Ledger posting speed and memory, against a plain bulk write and a row-by-row ORM insert.

Rule: each case runs in its own child process (so peak RSS is its own): a
fresh database; one batch of N creators posted with
:func:`ledger.store.posting.post_batch` in one transaction (creators, payable
accounts, ~2N entries, N statement lines, N clip credits, balances) and
committed; then ``verify`` over the whole ledger; then the same number of
entries written the plainest bulk way into the same ``entries`` table
(PostgreSQL: one ``COPY`` of CSV rendered beforehand, the table's triggers
firing as for posting; SQLite: one ``executemany``), rolled back: the ratio of
the whole batch's entries/s to that rate is what to compare across runs on a
shared machine. The ORM baseline, in the same
child and on the same database, inserts entries the plain way: one
``Entry`` ORM object per row, ``session.add`` each, one commit; it runs on a
subset (``--orm-rows``, default 100,000 entries) and its rate is
extrapolated, which the output says. Prints entries/s, the ratio, peak RSS
(``resource.getrusage``: the whole child, Python and imports included) and
the verify time. Nothing is asserted.

    .venv/bin/python bench/ledger.py [--sizes 100000 1000000] [--report-sizes 100000 1000000]
        [--backends sqlite postgresql]

A second table times the import of a provider status report (see
:func:`report_child`) against a plain ``COPY`` of as many payout events, in the same
child.

PostgreSQL runs on a throwaway cluster started like the test fixture's
(``initdb`` into a temporary directory, ``fsync=off`` as in the tests, so the
figures measure the write path, not this machine's disk).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(url: str, n: int, orm_rows: int) -> dict[str, float]:
    """Post one batch of ``n`` creators, verify, then time the ORM baseline."""
    import polars as pl
    from sqlalchemy.orm import Session

    from contract import schema as S
    from ledger.store import models as M
    from ledger.store.engine import open_store, read_session, write_session
    from ledger.store.posting import BatchLines, BatchRequest, post_batch
    from ledger.store.verify import verify

    engine = open_store(url)
    ids = ("c" + pl.Series(S.CREATOR_ID, range(n)).cast(pl.String).str.zfill(8))
    creators = pl.DataFrame({S.CREATOR_ID: ids, S.DISPLAY_NAME: "Creator " + ids})
    credits = creators.select(S.CREATOR_ID, ("k" + pl.col(S.CREATOR_ID)).alias(S.CLIP_ID),
                              pl.lit(1.0).alias(S.WEIGHT))
    pool = 100 * n
    req = BatchRequest(period="bench", currency="USD", pool_minor=pool, policy_name="bench",
                       policy_text="bench", input_hashes={"n": str(n)}, creators=creators,
                       clip_credits=credits)

    def allocator(carried: pl.DataFrame, pool_minor: int | None = None) -> BatchLines:
        # every creator gets 100; those with an even index are paid, the rest carry
        i = pl.int_range(pl.len())
        lines = creators.select(
            S.CREATOR_ID, pl.lit(1.0 / n).alias(S.SHARE), pl.lit(100.0).alias(S.EXACT_MINOR),
            pl.lit(100, pl.Int64).alias(S.ALLOCATED_MINOR),
            pl.lit(0, pl.Int64).alias(S.CARRIED_IN_MINOR),
            pl.when(i % 2 == 0).then(100).otherwise(0).cast(pl.Int64).alias(S.PAID_MINOR),
            pl.when(i % 2 == 0).then(0).otherwise(100).cast(pl.Int64).alias(S.CARRIED_OUT_MINOR),
            pl.lit(True).alias(S.ELIGIBLE), pl.lit(None, pl.String).alias(S.REASON))
        return BatchLines(lines, 0)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    with write_session(engine) as s, s.begin():
        out = post_batch(s, req, allocator)
    post_s = time.perf_counter() - t0
    rss_post = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0 = time.perf_counter()
    with read_session(engine) as s:
        report = verify(s)
    verify_s = time.perf_counter() - t0
    assert report.ok, report.violations[:3]
    entries_total = report.counts["entries"]

    copy_s = plain_copy(engine, out.batch_id, out.entries)
    floor_s = (floor_write(engine, {t: "true" for t in BATCH_TABLES})
               if engine.dialect.name == "postgresql" else float("nan"))

    # Baseline: the plain ORM way, one Entry object per row, on a subset.
    with Session(engine) as s, s.begin():
        fund = s.query(M.Account.id).filter(M.Account.code == "fund").scalar()
        pay = s.query(M.Account.id).filter(M.Account.kind == M.CREATOR_PAYABLE).limit(
            orm_rows // 2).all()
        tx = M.Transaction(kind=M.ALLOCATION, batch_id=out.batch_id, memo="orm baseline")
        s.add(tx)
        s.flush()
        t0 = time.perf_counter()
        for (acc,) in pay:  # deliberately row by row: this is the baseline
            s.add(M.Entry(transaction_id=tx.id, account_id=acc, amount_minor=1, currency="USD"))
            s.add(M.Entry(transaction_id=tx.id, account_id=fund, amount_minor=-1,
                          currency="USD"))
        s.flush()
        s.add(M.TransactionSeal(transaction_id=tx.id))
        s.flush()
        orm_s = time.perf_counter() - t0
    orm_n = 2 * len(pay)
    engine.dispose()
    return {"creators": n, "entries": out.entries, "post_s": post_s,
            "rate": out.entries / post_s, "entries_rate": out.entries / out.entries_seconds,
            "copy_rate": out.entries / copy_s, "floor_s": floor_s, "orm_rate": orm_n / orm_s,
            "orm_rows": orm_n,
            "rss_start_mb": rss0, "rss_peak_mb": rss_post, "verify_s": verify_s,
            "verify_entries": entries_total}


def plain_copy(engine, batch_id: str, n: int) -> float:  # noqa: ANN001
    """Seconds to bulk-write ``n`` entries into ``entries`` the plainest way, rolled back.

    PostgreSQL: one ``COPY entries ... FROM STDIN`` of CSV rendered beforehand (the
    table's triggers fire as for posting). SQLite: one ``executemany`` of rows built
    beforehand. The rows are balanced pairs on the fund and the first payable account of
    a new transaction; only the write is timed.
    """
    import polars as pl
    from sqlalchemy.orm import Session

    from ledger.store import models as M

    with Session(engine) as s:
        s.begin()
        fund = s.query(M.Account.id).filter(M.Account.code == "fund").scalar()
        pay = s.query(M.Account.id).filter(M.Account.kind == M.CREATOR_PAYABLE).limit(1).scalar()
        tx = M.Transaction(kind=M.ALLOCATION, batch_id=batch_id, memo="copy baseline")
        s.add(tx)
        s.flush()
        even = pl.int_range(pl.len()) % 2 == 0
        rows = pl.DataFrame({"i": pl.int_range(n, eager=True)}).select(
            pl.lit(tx.id, pl.Int64).alias("transaction_id"),
            pl.when(even).then(fund).otherwise(pay).cast(pl.Int64).alias("account_id"),
            pl.when(even).then(-1).otherwise(1).cast(pl.Int64).alias("amount_minor"),
            pl.lit("USD").alias("currency"))
        elapsed = _timed_write(s.connection(), "entries", rows)
        s.rollback()
    return elapsed


BATCH_TABLES = ("creators", "accounts", "transactions", "transaction_seals", "entries",
                "statements", "batch_clip_credits", "payouts", "payout_events", "balances")
"""The tables a batch posted into a fresh ledger writes (all their rows are the batch's)."""


def floor_write(engine, where: dict[str, str]) -> float:  # noqa: ANN001
    """Seconds to write the rows a step wrote once more, into bare tables: PostgreSQL only.

    For each table ``t`` of ``where`` (table -> SQL condition picking the step's rows),
    the rows are read back beforehand (``COPY (SELECT ...) TO STDOUT``, not timed) and
    written with one ``COPY ... FROM STDIN`` into a new logged table with the same
    columns and the same primary key, and nothing else: no other index, no unique or
    check constraint, no trigger. The sum of those writes, rolled back, is the floor of
    what any code writing these rows on this server can do; nothing the ledger checks
    is in it.
    """
    from sqlalchemy.orm import Session

    total = 0.0
    with Session(engine) as s:
        s.begin()
        dbapi = s.connection().connection.driver_connection
        with dbapi.cursor() as cur:
            for table, cond in where.items():
                data = bytearray()
                with cur.copy(f"COPY (SELECT * FROM {table} WHERE {cond}) TO STDOUT") as out:
                    for block in out:
                        data += block
                cur.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                    "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass "
                    "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)", (table,))
                keys = ", ".join(r[0] for r in cur.fetchall())
                cur.execute(f"CREATE TABLE floor_{table} (LIKE {table})")
                cur.execute(f"ALTER TABLE floor_{table} ADD PRIMARY KEY ({keys})")
                t0 = time.perf_counter()
                with cur.copy(f"COPY floor_{table} FROM STDIN") as copy:
                    copy.write(bytes(data))
                total += time.perf_counter() - t0
        s.rollback()
    return total


def _timed_write(conn, table: str, rows) -> float:  # noqa: ANN001
    """Seconds to write ``rows`` into ``table`` the plainest bulk way, inside the caller's
    transaction: PostgreSQL one ``COPY ... FROM STDIN`` of CSV rendered beforehand, SQLite
    one ``executemany`` of tuples built beforehand. Only the write is timed."""
    import io

    dbapi = conn.connection.driver_connection
    cols = ", ".join(rows.columns)
    if conn.dialect.name == "postgresql":
        buf = io.BytesIO()
        rows.write_csv(buf, include_header=False)
        data = buf.getvalue()
        t0 = time.perf_counter()
        with dbapi.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN "
                                             "WITH (FORMAT csv)") as copy:
            copy.write(data)
        return time.perf_counter() - t0
    tuples = rows.rows()
    marks = ", ".join("?" for _ in rows.columns)
    t0 = time.perf_counter()
    cur = dbapi.cursor()
    cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuples)
    cur.close()
    return time.perf_counter() - t0


def report_child(url: str, n: int) -> dict[str, float]:
    """Import a provider status report of ``n`` lines, against a plain COPY of as many events.

    Setup (not timed): ``n`` creators with a payout method and an accepted tax form,
    one batch paying each of them (``n`` payouts), every payout marked ``submitted``
    (as an export does). The report (90% ``paid``, 10% ``failed``, in shuffled
    order) is written to a CSV file; its import is timed from reading the file to
    the commit (:func:`ledger.store.reports.import_report`: reconciliation, one
    event per line, one sealed transaction per batch and status). The baseline,
    measured before the import in the same child, is one ``COPY`` of ``n``
    ``payout_events`` rows rendered beforehand, rolled back.
    """
    import polars as pl

    from contract import schema as S
    from ledger.store import models as M
    from ledger.store.bulk import insert_frame
    from ledger.store.engine import open_store, write_session
    from ledger.store.payout_states import apply_events, current_states, event_frame
    from ledger.store.posting import BatchLines, BatchRequest, post_batch
    from ledger.store.reports import import_report

    engine = open_store(url)
    ids = ("c" + pl.Series(S.CREATOR_ID, range(n)).cast(pl.String).str.zfill(8))
    creators = pl.DataFrame({S.CREATOR_ID: ids, S.DISPLAY_NAME: "Creator " + ids})
    req = BatchRequest(period="bench", currency="USD", pool_minor=100 * n, policy_name="bench",
                       policy_text="bench", input_hashes={"n": str(n)}, creators=creators)

    def allocator(carried: pl.DataFrame, pool_minor: int | None = None) -> BatchLines:
        return BatchLines(creators.select(
            S.CREATOR_ID, pl.lit(1.0 / n).alias(S.SHARE), pl.lit(100.0).alias(S.EXACT_MINOR),
            pl.lit(100, pl.Int64).alias(S.ALLOCATED_MINOR),
            pl.lit(0, pl.Int64).alias(S.CARRIED_IN_MINOR),
            pl.lit(100, pl.Int64).alias(S.PAID_MINOR),
            pl.lit(0, pl.Int64).alias(S.CARRIED_OUT_MINOR),
            pl.lit(True).alias(S.ELIGIBLE), pl.lit(None, pl.String).alias(S.REASON)), 0)

    with write_session(engine) as s, s.begin():
        insert_frame(s, M.CreatorProfile.__tablename__, creators.select(
            S.CREATOR_ID, ("tok-" + pl.col(S.CREATOR_ID)).alias("payout_method"),
            pl.lit("US").alias("country"), pl.lit("accepted").alias("tax_form")))
        post_batch(s, req, allocator)
    with write_session(engine) as s, s.begin():
        ids_ = current_states(s)["payout_id"]
        apply_events(s, event_frame(ids_.to_list(), M.SUBMITTED, source="bench"))
    i = pl.int_range(pl.len())
    report = pl.DataFrame({"payout_id": ids_}).sample(fraction=1.0, shuffle=True, seed=7).select(
        "payout_id", pl.when(i % 10 == 9).then(pl.lit("failed")).otherwise(pl.lit("paid"))
        .alias("status"), ("ref-" + i.cast(pl.String)).alias("provider_reference"),
        pl.when(i % 10 == 9).then(pl.lit("account_closed")).otherwise(pl.lit(""))
        .alias("failure_code"), pl.lit(100, pl.Int64).alias("amount_minor"),
        pl.lit("USD").alias("currency"), pl.lit("2026-11-15T10:00:00Z").alias("occurred_at"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.csv"
        report.write_csv(path)
        copy_s = _copy_events(engine, report)
        before = _last_ids(engine)
        t0 = time.perf_counter()
        with write_session(engine) as s, s.begin():
            result = import_report(s, path)
        import_s = time.perf_counter() - t0
    assert result.counts["matched"] == n, result.counts
    floor_s = float("nan")
    if engine.dialect.name == "postgresql":  # the rows the import wrote, once more, bare
        floor_s = floor_write(engine, {
            "transactions": f"id > {before['transactions']}",
            "transaction_seals": f"transaction_id > {before['transactions']}",
            "entries": f"id > {before['entries']}",
            "payout_events": f"id > {before['payout_events']}"})
    engine.dispose()
    return {"lines": n, "import_s": import_s, "rate": n / import_s, "copy_rate": n / copy_s,
            "floor_s": floor_s}


def _last_ids(engine) -> dict[str, int]:  # noqa: ANN001
    """The largest id of ``transactions``, ``entries`` and ``payout_events`` (0 if empty)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {t}")).scalar_one())
                for t in ("transactions", "entries", "payout_events")}


def _copy_events(engine, report) -> float:  # noqa: ANN001
    """Seconds to COPY one ``payout_events`` row per report line (rendered beforehand),
    rolled back: the plainest bulk write of what an import records."""
    import polars as pl
    from sqlalchemy.orm import Session

    rows = report.select("payout_id", pl.lit(99, pl.Int64).alias("seq"),
                         pl.col("status").alias("state"), "provider_reference",
                         "failure_code", "occurred_at", pl.lit("copy baseline").alias("source"))
    with Session(engine) as s:
        s.begin()
        elapsed = _timed_write(s.connection(), "payout_events", rows)
        s.rollback()
    return elapsed


def start_pg(settings: list[str]):  # type: ignore[no-untyped-def]
    """A throwaway cluster as the tests start it, with ``name=value`` settings on top."""
    from tests.ledger.store.conftest import start_pg as _start

    return _start(dict(item.split("=", 1) for item in settings))


POSTING_HEADER = (
    "| backend | creators | entries posted | whole batch s | entries/s (whole batch) | "
    "entries/s (entry writes) | plain bulk write entries/s (same table, same run) | "
    "whole batch / plain | floor s (same rows, bare tables) | floor entries/s | "
    "ORM row-by-row entries/s (on N rows, extrapolated) | "
    "speed-up vs ORM (whole batch) | peak RSS MB (at start) | verify s (entries) |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
REPORT_HEADER = (
    "| backend | report lines | import s | lines/s (import) | plain COPY of as many "
    "payout events rows/s (same run) | import / plain | floor s (same rows, bare tables) | "
    "floor lines/s |\n|---|---:|---:|---:|---:|---:|---:|---:|")


def _posting_row(backend: str, n: int, r: dict) -> str:  # type: ignore[type-arg]
    return (f"| {backend} | {n:,} | {r['entries']:,} | {r['post_s']:.1f} | "
            f"{r['rate']:,.0f} | {r['entries_rate']:,.0f} | "
            f"{r['copy_rate']:,.0f} | {r['rate'] / r['copy_rate']:.2f} | "
            f"{_floor(r['floor_s'], r['entries'])} | "
            f"{r['orm_rate']:,.0f} (on {r['orm_rows']:,}) | "
            f"{r['rate'] / r['orm_rate']:.1f}x | {r['rss_peak_mb']:,.0f} "
            f"({r['rss_start_mb']:,.0f}) | {r['verify_s']:.1f} "
            f"({r['verify_entries']:,}) |")


def _report_row(backend: str, n: int, r: dict) -> str:  # type: ignore[type-arg]
    return (f"| {backend} | {n:,} | {r['import_s']:.1f} | {r['rate']:,.0f} | "
            f"{r['copy_rate']:,.0f} | {r['rate'] / r['copy_rate']:.2f} | "
            f"{_floor(r['floor_s'], n)} |")


def _floor(seconds: float, count: int) -> str:
    """``floor s | floor rate`` cells; a dash on SQLite, where no floor is measured."""
    if seconds != seconds:  # NaN: not measured
        return "- | -"
    return f"{seconds:.1f} | {count / seconds:,.0f}"


def _run_cases(kind: str, sizes: list[int], backends: list[str], server, orm: int) -> None:  # noqa: ANN001
    print(POSTING_HEADER if kind == "posting" else REPORT_HEADER, flush=True)
    for backend in backends:
        for n in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "sqlite":
                    url = f"sqlite:///{tmp}/bench.db"
                else:
                    name = f"bench_{kind}_{n}"
                    server.admin(f"DROP DATABASE IF EXISTS {name}")
                    server.admin(f"CREATE DATABASE {name}")
                    url = server.url(name)
                res = subprocess.run([sys.executable, __file__, "--child", kind, url, str(n),
                                      str(orm)], capture_output=True, text=True, cwd=ROOT)
                if res.returncode != 0:
                    print(f"| {backend} | {n:,} | failed: {res.stderr.strip()[-300:]} |")
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                row = _posting_row if kind == "posting" else _report_row
                print(row(backend, n, r), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--report-sizes", type=int, nargs="*", default=[100_000, 1_000_000],
                    help="lines of the status reports imported (none: skip the imports)")
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    ap.add_argument("--orm-rows", type=int, default=100_000)
    ap.add_argument("--pg-settings", nargs="*", default=[], metavar="NAME=VALUE",
                    help="PostgreSQL server settings on top of the tests' (e.g. "
                         "shared_buffers=2GB max_wal_size=16GB)")
    ap.add_argument("--child", nargs=4, metavar=("KIND", "URL", "N", "ORM_ROWS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, url, n, orm = args.child
        out = child(url, int(n), int(orm)) if kind == "posting" else report_child(url, int(n))
        print(json.dumps(out))
        return

    print(f"# bench/ledger.py — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    if any("=" not in item for item in args.pg_settings):
        ap.error("--pg-settings: expected NAME=VALUE items")
    if args.pg_settings:
        print(f"# PostgreSQL settings on top of the tests': {' '.join(args.pg_settings)}")
    server, stop = (start_pg(args.pg_settings) if "postgresql" in args.backends
                    else (None, None))
    try:
        if args.sizes:
            _run_cases("posting", args.sizes, args.backends, server, args.orm_rows)
        if args.report_sizes:
            print()
            _run_cases("report", args.report_sizes, args.backends, server, args.orm_rows)
    finally:
        if stop is not None:
            stop()


if __name__ == "__main__":
    main()
