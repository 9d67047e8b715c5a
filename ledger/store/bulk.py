"""Fast bulk writes for each backend, in bounded memory.

Rule: rows that scale with the data (entries, statements, accounts, clip
credits) never go through the ORM one object at a time. On PostgreSQL they are
streamed with ``COPY ... FROM STDIN`` (psycopg), on SQLite inserted with
``executemany`` on the raw DB-API cursor; either way in chunks of
:data:`CHUNK_ROWS`, inside the caller's transaction, so a failure part-way
leaves nothing once the transaction rolls back.
"""

from __future__ import annotations

import io

import polars as pl
from sqlalchemy.orm import Session

CHUNK_ROWS = 100_000
"""Rows per COPY write / executemany call: bounds the memory of a bulk write."""


def _chunks(df: pl.DataFrame, rows: int):  # type: ignore[no-untyped-def]
    for start in range(0, df.height, rows):
        yield df.slice(start, rows)


def insert_frame(session: Session, table: str, df: pl.DataFrame,
                 *, chunk_rows: int = CHUNK_ROWS) -> int:
    """Insert every row of ``df`` into ``table`` (columns named as ``df``'s); returns rows.

    ``table`` and the column names are trusted identifiers from
    :mod:`ledger.store.models`, never user input.
    """
    if df.height == 0:
        return 0
    conn = session.connection()
    cols = ", ".join(df.columns)
    dbapi = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                for part in _chunks(df, chunk_rows):
                    buf = io.BytesIO()
                    part.write_csv(buf, include_header=False, quote_style="non_numeric",
                                   null_value="")
                    copy.write(buf.getvalue())
    else:
        marks = ", ".join("?" for _ in df.columns)
        cur = dbapi.cursor()  # type: ignore[union-attr]
        try:
            for part in _chunks(df, chunk_rows):
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", part.rows())
        finally:
            cur.close()
    return df.height
