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

    .venv/bin/python bench/ledger.py [--sizes 100000 1000000] [--backends sqlite postgresql]

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
            "copy_rate": out.entries / copy_s, "orm_rate": orm_n / orm_s, "orm_rows": orm_n,
            "rss_start_mb": rss0, "rss_peak_mb": rss_post, "verify_s": verify_s,
            "verify_entries": entries_total}


def plain_copy(engine, batch_id: str, n: int) -> float:  # noqa: ANN001
    """Seconds to bulk-write ``n`` entries into ``entries`` the plainest way, rolled back.

    PostgreSQL: one ``COPY entries ... FROM STDIN`` of CSV rendered beforehand (the
    table's triggers fire as for posting). SQLite: one ``executemany`` of rows built
    beforehand. The rows are balanced pairs on the fund and the first payable account of
    a new transaction; only the write is timed.
    """
    import io

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
        cols = "transaction_id, account_id, amount_minor, currency"
        conn = s.connection()
        dbapi = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            buf = io.BytesIO()
            rows.write_csv(buf, include_header=False)
            data = buf.getvalue()
            t0 = time.perf_counter()
            with dbapi.cursor() as cur, cur.copy(f"COPY entries ({cols}) FROM STDIN "
                                                 "WITH (FORMAT csv)") as copy:
                copy.write(data)
        else:
            tuples = rows.rows()
            t0 = time.perf_counter()
            cur = dbapi.cursor()
            cur.executemany(f"INSERT INTO entries ({cols}) VALUES (?, ?, ?, ?)", tuples)
            cur.close()
        elapsed = time.perf_counter() - t0
        s.rollback()
    return elapsed


def start_pg():  # type: ignore[no-untyped-def]
    from tests.ledger.store.conftest import start_pg as _start

    return _start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    ap.add_argument("--orm-rows", type=int, default=100_000)
    ap.add_argument("--child", nargs=3, metavar=("URL", "N", "ORM_ROWS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        url, n, orm = args.child
        print(json.dumps(child(url, int(n), int(orm))))
        return

    print(f"# bench/ledger.py — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print("| backend | creators | entries posted | whole batch s | entries/s (whole batch) | "
          "entries/s (entry writes) | plain bulk write entries/s (same table, same run) | "
          "whole batch / plain | ORM row-by-row entries/s (on N rows, extrapolated) | "
          "speed-up vs ORM (whole batch) | peak RSS MB (at start) | verify s (entries) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    server, stop = (start_pg() if "postgresql" in args.backends else (None, None))
    try:
        for backend in args.backends:
            for n in args.sizes:
                with tempfile.TemporaryDirectory() as tmp:
                    if backend == "sqlite":
                        url = f"sqlite:///{tmp}/bench.db"
                    else:
                        name = f"bench_{n}"
                        server.admin(f"DROP DATABASE IF EXISTS {name}")
                        server.admin(f"CREATE DATABASE {name}")
                        url = server.url(name)
                    res = subprocess.run([sys.executable, __file__, "--child", url, str(n),
                                          str(args.orm_rows)], capture_output=True, text=True,
                                         cwd=ROOT)
                    if res.returncode != 0:
                        print(f"| {backend} | {n:,} | failed: {res.stderr.strip()[-300:]} |")
                        continue
                    r = json.loads(res.stdout.strip().splitlines()[-1])
                    print(f"| {backend} | {n:,} | {r['entries']:,} | {r['post_s']:.1f} | "
                          f"{r['rate']:,.0f} | {r['entries_rate']:,.0f} | "
                          f"{r['copy_rate']:,.0f} | {r['rate'] / r['copy_rate']:.2f} | "
                          f"{r['orm_rate']:,.0f} (on {r['orm_rows']:,}) | "
                          f"{r['rate'] / r['orm_rate']:.1f}x | {r['rss_peak_mb']:,.0f} "
                          f"({r['rss_start_mb']:,.0f}) | {r['verify_s']:.1f} "
                          f"({r['verify_entries']:,}) |", flush=True)
    finally:
        if stop is not None:
            stop()


if __name__ == "__main__":
    main()
