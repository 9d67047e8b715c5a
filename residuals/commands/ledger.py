"""``residuals ledger verify``, ``residuals db upgrade`` and ``residuals statement``.

Rule: ``verify`` only reads and exits 1 when any invariant fails, printing
each violation on its own line; ``db upgrade`` applies the Alembic
migrations; ``statement`` writes a creator's statement as CSV (lines and
clips) and HTML, atomically. Recomputing a batch's payouts from its manifest
uses the same code path as ``batch run`` (the data directory and policy text
recorded in the manifest), and is skipped, with a note, when those inputs are
gone or changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from contract.errors import ResidualsError
from residuals.commands._files import DbOpt, check_output_dir, ledger_inputs, refuse_overwrite
from residuals.workflows.store import require_ledger

ledger_app = typer.Typer(help="Check the ledger of record.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the ledger database schema.", no_args_is_help=True)


@ledger_app.command("verify")
def verify_cmd(
    db: DbOpt = None,
    recompute: Annotated[bool, typer.Option(
        "--recompute/--no-recompute",
        help="Recompute each batch's payouts from its manifest's inputs where present.")] = True,
    expect_head: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--expect-head", help="A chain head published earlier (batch hash, or its first 12+ "
        "hex digits): fail unless it is still in the chain.")] = None,
) -> None:
    """Recompute balances, transaction sums, the hash chain and payouts; OK or each violation."""
    import re

    from residuals.workflows.payout import verify_ledger

    if expect_head is not None and not re.fullmatch(r"[0-9a-fA-F]{12,64}", expect_head):
        raise ResidualsError(f"--expect-head {expect_head!r}: expected a batch hash (12 to 64 "
                             "hexadecimal digits)")
    print_verified(verify_ledger(db, recompute=recompute, expect_head=expect_head))


def print_verified(result: Any) -> None:
    """Print ``ledger verify``'s notes, chain head and verdict; exit 1 on any violation."""
    report, head = result.report, result.head
    counts = ", ".join(f"{k} {v:,}" for k, v in report.counts.items())
    for note in report.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"chain head {head.batch_hash} (period {head.period}, batch {head.seq})"
               if head else "chain head: none (no batches)")
    if report.ok:
        typer.echo(f"OK: {counts}")
        return
    for v in report.violations:
        typer.echo(f"VIOLATION {v}")
    typer.echo(f"FAILED: {len(report.violations)} violation(s) in {counts}")
    raise typer.Exit(1)


@db_app.command("upgrade")
def upgrade_cmd(
    db: DbOpt = None,
) -> None:
    """Create the ledger schema or apply pending migrations."""
    from ledger.store.engine import make_engine, safe_url, upgrade

    engine = make_engine(db)
    before, after = upgrade(engine)
    url = safe_url(engine.url)
    engine.dispose()
    if before == after:
        typer.echo(f"{url}: schema already at revision {after}")
    else:
        typer.echo(f"{url}: schema upgraded from {before or 'empty'} to revision {after}")


STATEMENT_FORMATS = ("csv", "pdf")


def statement(
    creator: Annotated[str, typer.Option("--creator", help="creator_id.")],
    period: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--period", help="Only this period [default: every period].")] = None,
    db: DbOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Directory to write into.")] = Path("."),
    fmt: Annotated[str, typer.Option(
        "--format", help="csv: lines and clips CSV and a readable HTML page; pdf: one PDF.")
    ] = "csv",
    lang: Annotated[str, typer.Option("--lang", help="Language of the PDF or HTML: en or es.")
                    ] = "en",
) -> None:
    """Write a creator's statement: CSV (lines, clips) and HTML, or a PDF (--format pdf)."""
    from contract.io import atomic_output, spreadsheet_safe
    from ledger.i18n import LANGUAGES
    from ledger.store.statements import clip_table, statement_csv_table

    if fmt not in STATEMENT_FORMATS:
        raise ResidualsError(f"--format {fmt!r}: expected one of {', '.join(STATEMENT_FORMATS)}")
    if lang not in LANGUAGES:
        raise ResidualsError(f"--lang {lang!r}: expected one of {', '.join(LANGUAGES)}")
    check_output_dir("--out", out)
    paths = _statement_paths(out, creator, period, fmt)
    refuse_overwrite([("--out", p) for p in paths], ledger_inputs(db))
    name, lines, clips, adjusted = _statement_rows(db, creator, period)
    if fmt == "pdf":
        from ledger.store.statement_pdf import statement_pdf

        with atomic_output(paths[0]) as tmp:
            tmp.write_bytes(statement_pdf(creator, name, lines, clips, lang, adjusted))
    else:
        from ledger.store.statements import statement_html

        with atomic_output(paths[0]) as t0, atomic_output(paths[1]) as t1, \
                atomic_output(paths[2]) as t2:
            spreadsheet_safe(statement_csv_table(creator, name, lines, adjusted)).write_csv(t0)
            spreadsheet_safe(clip_table(clips)).write_csv(t1)
            t2.write_text(statement_html(creator, name, lines, clips, lang, adjusted),
                          encoding="utf-8")
    for p in paths:
        typer.echo(f"wrote {p}")


def _statement_paths(out: Path, creator: str, period: str | None, fmt: str) -> list[Path]:
    from ledger.store.statements import statement_file_names, statement_stem

    if fmt == "pdf":
        return [out / f"{statement_stem(creator, period)}.pdf"]
    return [out / name for name in statement_file_names(creator, period)]


def _statement_rows(db: str | None, creator: str, period: str | None):  # type: ignore[no-untyped-def]
    """(display name, statement lines, clip rows, applied claim adjustments) of a creator
    (of one period), refusing an unknown one."""
    import polars as pl
    from sqlalchemy import select

    from contract import schema as S
    from ledger.store import models as M
    from ledger.store.claims import creator_adjustments
    from ledger.store.engine import read_session
    from ledger.store.read import creator_clip_earnings, creator_statement

    engine = require_ledger(db)
    with read_session(engine) as s:
        name = s.execute(select(M.Creator.display_name)
                         .where(M.Creator.creator_id == creator)).scalar_one_or_none()
        if name is None:
            raise ResidualsError(f"--creator {creator!r}: no such creator in the ledger")
        lines = creator_statement(s, creator, period)
        clips = creator_clip_earnings(s, creator, period)
        adjusted = creator_adjustments(s, creator)
    engine.dispose()
    if period is not None:
        adjusted = adjusted.filter(pl.col(S.PERIOD) == period)
    if lines.height == 0:
        raise ResidualsError(f"--creator {creator!r}: no statement lines"
                             + (f" for period {period!r}" if period else ""))
    return name, lines, clips, adjusted


def register(app: typer.Typer) -> None:
    """Add ``ledger``, ``db`` and ``statement`` to the main app."""
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(db_app, name="db")
    app.command("statement")(statement)
